"""Shared testbench pieces: valid/ready driver and monitor, scoreboard, output-unit models.

The driver and the monitor act on the falling clock edge and sample the handshake after
``ReadOnly``, so Icarus and Verilator see identical behaviour. Cycle numbers are the index of
the falling edge at which a handshake was seen: a beat seen at cycle ``c`` is taken by the
design at the rising edge that follows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from cocotb.utils import get_sim_time

from simulator import FP32, FloatFormat, TileConfig, rescale_accumulate
from simulator.formats import from_bits, mul, to_bits

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


def summarize_report(name: str, what: str, mismatches: int, shown: int, lines: list[str],
                     expected: int, received: int) -> str:  # fmt: skip
    """A scoreboard report: a header counting ``mismatches`` of kind ``what`` (``shown`` of them
    detailed in ``lines``), then a line if the transaction counts differ."""
    lines = list(lines)
    if mismatches:
        lines.insert(0, f"{name}: {mismatches} {what} (first {shown} shown)")
    if received != expected:
        lines.append(f"{name}: expected {expected} transactions, received {received}")
    return "\n".join(lines)


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
    """One expected transaction: per-lane values and how to explain a lane.

    ``bits`` holds per-lane bit patterns of ``fmt``, or plain integers (codes, flags) when
    ``fmt`` is None. ``context(lane)`` returns a text with the model's intermediate values for
    that lane.
    """

    bits: np.ndarray
    fmt: FloatFormat | None = None
    context: Callable[[int], str] | None = None


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
    transaction index, the lane, the expected and received values and bit patterns, and the
    model's intermediate values for that lane; missing and extra transactions are reported too.
    """

    name: str
    max_report: int = 10
    expected: list[Expected] = field(default_factory=list)
    received: list[np.ndarray] = field(default_factory=list)

    def expect(self, item: Expected) -> None:
        self.expected.append(item)

    def receive(self, bits: np.ndarray) -> None:
        self.received.append(np.asarray(bits))

    def report(self) -> str:
        """The mismatch report; empty when everything matches."""
        lines = []
        mismatches = 0
        for index, (exp, got) in enumerate(zip(self.expected, self.received, strict=False)):
            for lane in np.flatnonzero(exp.bits != got):
                mismatches += 1
                if mismatches > self.max_report:
                    continue
                line = (
                    f"transaction {index} lane {lane}: expected "
                    f"{describe_bits(exp.bits[lane], exp.fmt)} got "
                    f"{describe_bits(got[lane], exp.fmt)}"
                )
                if exp.context is not None:
                    line += f"\n    model: {exp.context(int(lane))}"
                lines.append(line)
        return summarize_report(
            self.name, "lane mismatches", mismatches, min(mismatches, self.max_report), lines,
            len(self.expected), len(self.received),
        )  # fmt: skip

    def check(self) -> None:
        """Raise ``AssertionError`` with the report unless every transaction matched."""
        text = self.report()
        assert len(self.received) == len(self.expected), text
        if self.expected:
            np.testing.assert_array_equal(
                np.stack(self.received), np.stack([e.bits for e in self.expected]), err_msg=text
            )


# ---------------------------------------------------------------------------------------
# Output unit (SPEC steps 8-10)

OUTPUT_UNIT_LATENCY = 6  # cycles from taking a last beat to showing its output


def output_cycles(accept_cycles: Sequence[int], last: Sequence[bool]) -> list[int]:
    """Cycle of every output of the unstalled output unit, from its input beats' cycles.

    With ready held high the pipeline never stalls, so each output appears exactly
    ``OUTPUT_UNIT_LATENCY`` cycles after its last beat was taken.
    """
    return [c + OUTPUT_UNIT_LATENCY for c, end in zip(accept_cycles, last, strict=True) if end]


@dataclass
class TileGroup:
    """One output beat's worth of work: ``T`` tiles of ``LANES`` rows for one batch row.

    Attributes
    ----------
    codes : int32 (LANES, T)
        ADC codes.
    w_scale : float32 (LANES, T)
        Row scales (values of the scale format).
    x_scale : float32 (T,)
        Input scales.
    """

    codes: np.ndarray
    w_scale: np.ndarray
    x_scale: np.ndarray


class OutputUnitModel:
    """Golden expectations for ``abfp_output_unit`` from ``simulator.rescale_accumulate``.

    Parameters
    ----------
    cfg : TileConfig
        Tile configuration (ADC bits, formats, K).
    inject_mismatch : bool
        Flip the lowest bit of lane 0 of the first expected output (testbench self-check).
    """

    def __init__(self, cfg: TileConfig, inject_mismatch: bool = False):
        self.cfg = cfg
        self.inject_mismatch = inject_mismatch
        self._injected = False

    def beats(self, group: TileGroup) -> list[dict[str, int]]:
        """Input beats (signal name to bus value) of one group."""
        cfg = self.cfg
        sw_bits = to_bits(group.w_scale, cfg.scale_fmt)
        sx_bits = to_bits(group.x_scale, cfg.scale_fmt)
        ntiles = group.codes.shape[1]
        return [
            {
                "qy_i": pack_lanes(group.codes[:, j], cfg.by),
                "sw_i": pack_lanes(sw_bits[:, j], cfg.scale_fmt.width),
                "sx_i": int(sx_bits[j]),
                "first_i": int(j == 0),
                "last_i": int(j == ntiles - 1),
            }
            for j in range(ntiles)
        ]

    def expected(self, group: TileGroup) -> Expected:
        """The expected output beat of one group, with the golden stage values per lane."""
        cfg = self.cfg
        y, stages = rescale_accumulate(
            group.codes[None], group.x_scale[None], group.w_scale, cfg, trace=True
        )
        bits = to_bits(y[0], cfg.out_fmt)
        if self.inject_mismatch and not self._injected:
            bits[0] ^= 1
            self._injected = True
        sy = mul(group.w_scale, group.x_scale[None, :], FP32)
        t = mul(group.codes.astype(np.float64), sy, FP32)
        u = mul(t, cfg.rescale_constant, FP32)
        partial, acc = stages["partial"][0], stages["acc"][0]

        def context(lane: int) -> str:
            tiles = []
            for j in range(group.codes.shape[1]):
                tiles.append(
                    f"tile {j}: qy={int(group.codes[lane, j])} "
                    f"sw={float(group.w_scale[lane, j])!r} sx={float(group.x_scale[j])!r} "
                    f"sy={float(sy[lane, j])!r} t={float(t[lane, j])!r} "
                    f"u={float(u[lane, j])!r} p={float(partial[lane, j])!r} "
                    f"acc={float(acc[lane, j])!r}"
                )
            return "\n      ".join(tiles)

        return Expected(bits=bits, fmt=cfg.out_fmt, context=context)
