"""Shared testbench pieces: settings, valid/ready driver and monitor, scoreboard, parameter check.

The driver and the monitor act on the falling clock edge and sample the handshake after
``ReadOnly``, so Icarus and Verilator see identical behaviour. Cycle numbers are the index of
the falling edge at which a handshake was seen: a beat seen at cycle ``c`` is taken by the
design at the rising edge that follows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from cocotb.utils import get_sim_time

from simulator import FloatFormat, TileConfig
from simulator.formats import from_bits

CLOCK_PERIOD_NS = 10


def env_int(name: str, default: int) -> int:
    """Integer setting from the environment (``ABFP_TXNS``, ``ABFP_SEED``, ...)."""
    text = os.environ.get(name, "")
    if not text:
        return default
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {text!r}") from None


def tile_config(variable: str = "ABFP_TILE_CONFIG") -> TileConfig:
    """The bench's ``TileConfig`` from JSON keyword arguments in the environment."""
    return TileConfig(**json.loads(os.environ.get(variable, "{}")))


def check_parameters(dut, expected: Mapping[str, int], source: str) -> None:
    """Assert that the built design's Verilog parameters equal ``expected``.

    The parameters are read back from the simulator (Icarus shows them; the cocotb runner
    builds Verilator with ``--public-flat-rw``, which makes them visible too, and the tile top,
    built without it, with ``--public-params``), so a bench can
    never check a design built for another configuration. ``source`` names where
    ``expected`` comes from, for the message.
    """
    problems = []
    for name, want in expected.items():
        handle = getattr(dut, name, None)
        if handle is None:
            problems.append(f"{name}: not visible in the built design")
            continue
        got = handle.value.to_signed()
        if got != int(want):
            problems.append(f"{name} = {got} in the build, {int(want)} from {source}")
    assert not problems, (
        f"{dut._name} was built with parameters that differ from the bench's: "
        + "; ".join(problems)
    )


def current_cycle(period_ns: float = CLOCK_PERIOD_NS) -> int:
    """Index of the clock cycle now running (rising edges at multiples of the period)."""
    return int(get_sim_time(unit="ns") // period_ns)


def pack_lanes(values: Sequence[int], width: int) -> int:
    """Pack lane values (two's complement allowed) into one bus, lane 0 in the low bits."""
    mask = (1 << width) - 1
    bus = 0
    for lane, value in enumerate(values):
        bus |= (int(value) & mask) << (lane * width)
    return bus


def unpack_lanes(bus: int, width: int, lanes: int) -> np.ndarray:
    """Split a bus into ``lanes`` unsigned fields of ``width`` bits, lane 0 from the low bits."""
    mask = (1 << width) - 1
    return np.array([(bus >> (lane * width)) & mask for lane in range(lanes)], np.uint32)


async def pulse_reset(clk, rst_n, idle_inputs: Sequence, cycles: int = 3) -> None:
    """From a falling edge, hold ``rst_n`` low for ``cycles`` clocks with ``idle_inputs`` at 0."""
    await FallingEdge(clk)
    for handle in idle_inputs:
        handle.value = 0
    rst_n.value = 0
    await ClockCycles(clk, cycles)
    await FallingEdge(clk)
    rst_n.value = 1


class ValidReadySource:
    """Drive beats onto a valid/ready input, idling a seeded random fraction of cycles.

    Every beat must set every data signal.

    Parameters
    ----------
    clk, valid, ready : cocotb handles
        Clock, the design's valid input and its ready output.
    data : mapping of str to handle
        Data inputs, keyed by the names used in the beats.
    rng : numpy.random.Generator
        Source of the idle pattern.
    idle_prob : float
        Probability of holding valid low in a cycle.
    """

    def __init__(self, clk, valid, ready, data: Mapping[str, object], rng, idle_prob=0.0):
        self.clk, self.valid, self.ready = clk, valid, ready
        self.data = dict(data)
        self.rng = rng
        self.idle_prob = float(idle_prob)
        self.accept_cycles: list[int] = []

    def _noise(self, width: int) -> int:
        return int.from_bytes(self.rng.bytes((width + 7) // 8), "little") & ((1 << width) - 1)

    async def send(self, beats: Sequence[Mapping[str, int]]) -> list[int]:
        """Send every beat in order; returns the cycle at which each one was taken."""
        index = 0
        while index < len(beats):
            await FallingEdge(self.clk)
            offer = self.rng.random() >= self.idle_prob
            self.valid.value = int(offer)
            for name, handle in self.data.items():
                # Idle cycles carry random data, which the design must ignore.
                handle.value = int(beats[index][name]) if offer else self._noise(len(handle))
            await ReadOnly()
            if offer and self.ready.value.is_resolvable and int(self.ready.value) == 1:
                self.accept_cycles.append(current_cycle())
                index += 1
        await FallingEdge(self.clk)
        self.valid.value = 0
        return self.accept_cycles[-len(beats) :] if beats else []


class ValidReadySink:
    """Take beats from a valid/ready output, applying seeded random backpressure.

    Every beat is recorded with its cycle; a valid output whose data holds X or Z bits, or a
    valid that is itself unresolved, is recorded as a protocol error.

    Parameters
    ----------
    clk, valid, ready : cocotb handles
        Clock, the design's valid output and its ready input.
    data : mapping of str to handle
        Data outputs to capture.
    rng : numpy.random.Generator
        Source of the backpressure pattern.
    stall_prob : float
        Probability of holding ready low in a cycle.
    """

    def __init__(self, clk, valid, ready, data: Mapping[str, object], rng, stall_prob=0.0):
        self.clk, self.valid, self.ready = clk, valid, ready
        self.data = dict(data)
        self.rng = rng
        self.stall_prob = float(stall_prob)
        self.beats: list[dict[str, int]] = []
        self.cycles: list[int] = []
        self.errors: list[str] = []

    def clear(self) -> None:
        """Forget everything received so far."""
        self.beats.clear()
        self.cycles.clear()

    async def run(self) -> None:
        """Monitor forever (start it with ``cocotb.start_soon``)."""
        while True:
            await FallingEdge(self.clk)
            take = self.rng.random() >= self.stall_prob
            self.ready.value = int(take)
            await ReadOnly()
            if not self.valid.value.is_resolvable:
                self.errors.append(f"cycle {current_cycle()}: valid is {self.valid.value}")
                continue
            if int(self.valid.value) != 1:
                continue
            unresolved = [n for n, h in self.data.items() if not h.value.is_resolvable]
            if unresolved:
                self.errors.append(
                    f"cycle {current_cycle()}: valid output with X/Z bits in {unresolved}: "
                    + ", ".join(f"{n}={self.data[n].value}" for n in unresolved)
                )
                continue
            if take:
                self.beats.append({n: int(h.value) for n, h in self.data.items()})
                self.cycles.append(current_cycle())


@dataclass
class Expected:
    """One expected transaction: per-lane bit patterns and how to show and explain a lane.

    Attributes
    ----------
    bits : numpy.ndarray
        Per-lane bit patterns (of ``fmt``; plain integers such as codes when ``fmt`` is None).
    fmt : FloatFormat, optional
        Format of every lane, for the default display of a value.
    context : callable, optional
        ``lane -> str``: the model's intermediate values for that lane.
    name : callable, optional
        ``lane -> str``: what the report calls a lane (default ``lane <k>``).
    show : callable, optional
        ``(lane, bits) -> str``: a lane's value as text (default :func:`describe_bits`).
    """

    bits: np.ndarray
    fmt: FloatFormat | None = None
    context: Callable[[int], str] | None = None
    name: Callable[[int], str] | None = None
    show: Callable[[int, int], str] | None = None

    def lane_name(self, lane: int) -> str:
        return self.name(lane) if self.name is not None else f"lane {lane}"

    def lane_text(self, lane: int, bits: int) -> str:
        return self.show(lane, bits) if self.show is not None else describe_bits(bits, self.fmt)


def describe_bits(bits: int, fmt: FloatFormat | None) -> str:
    """``value (0xBITS)`` of a ``fmt`` bit pattern, or the integer itself without a format."""
    if fmt is None:
        return str(int(bits))
    value = from_bits(np.array([bits], np.uint32), fmt)[0]
    digits = (fmt.width + 3) // 4
    return f"{float(value)!r} (0x{int(bits):0{digits}x})"


@dataclass
class Scoreboard:
    """Compare received transactions with expected ones, bit for bit, in order.

    ``check`` raises ``AssertionError`` with a report naming, for each mismatch, the
    transaction index, the lane, the expected and received values and bit patterns, the clock
    cycle the transaction was seen in (when given) and the model's intermediate values for
    that lane; missing and extra transactions are reported too.
    """

    name: str
    max_report: int = 10
    expected: list[Expected] = field(default_factory=list)
    received: list[np.ndarray] = field(default_factory=list)
    cycles: list[int | None] = field(default_factory=list)

    def expect(self, item: Expected) -> None:
        self.expected.append(item)

    def receive(self, bits: np.ndarray, cycle: int | None = None) -> None:
        """Record one received transaction (``cycle``: when the monitor took it)."""
        self.received.append(np.asarray(bits))
        self.cycles.append(cycle)

    def mismatches(self) -> int:
        """Lanes that differ, plus every lane of a missing or extra transaction."""
        pairs = zip(self.expected, self.received, strict=False)
        count = sum(int(np.count_nonzero(e.bits != got)) for e, got in pairs)
        missing = [e.bits for e in self.expected[len(self.received) :]]
        extra = self.received[len(self.expected) :]
        return count + sum(np.size(bits) for bits in missing + extra)

    def report(self) -> str:
        """The mismatch report; empty when everything matches."""
        lines = []
        mismatches = 0
        for index, (exp, got) in enumerate(zip(self.expected, self.received, strict=False)):
            cycle = self.cycles[index]
            for lane in np.flatnonzero(exp.bits != got):
                mismatches += 1
                if mismatches > self.max_report:
                    continue
                line = (
                    f"transaction {index} {exp.lane_name(int(lane))}: expected "
                    f"{exp.lane_text(int(lane), exp.bits[lane])} got "
                    f"{exp.lane_text(int(lane), got[lane])}"
                )
                if cycle is not None:
                    line += f" at cycle {cycle}"
                if exp.context is not None:
                    line += f"\n    model: {exp.context(int(lane))}"
                lines.append(line)
        if mismatches:
            shown = min(mismatches, self.max_report)
            lines.insert(0, f"{self.name}: {mismatches} lane mismatches (first {shown} shown)")
        if len(self.received) != len(self.expected):
            lines.append(
                f"{self.name}: expected {len(self.expected)} transactions, received "
                f"{len(self.received)}"
            )
        return "\n".join(lines)

    def check(self) -> None:
        """Raise ``AssertionError`` with the report unless every transaction matched."""
        text = self.report()
        assert len(self.received) == len(self.expected), text
        if self.expected:
            np.testing.assert_array_equal(
                np.stack(self.received), np.stack([e.bits for e in self.expected]), err_msg=text
            )
