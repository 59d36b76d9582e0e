"""The ``abfp_input_unit`` bench: clock, reset, driver, monitors, cycle model and scoreboard.

Settings from the environment: ``ABFP_TILE_CONFIG`` (JSON keyword arguments of
``TileConfig``), ``ABFP_P`` (elements per beat), ``ABFP_TXNS`` (vectors per test),
``ABFP_SEED`` and ``ABFP_INJECT_MISMATCH`` (1: the model flips one expected code bit, so the
run must fail).
"""

from __future__ import annotations

import cocotb
import numpy as np
from bench_common import (
    CLOCK_PERIOD_NS,
    Scoreboard,
    ValidReadySink,
    ValidReadySource,
    check_parameters,
    current_cycle,
    env_int,
    pack_lanes,
    pulse_reset,
    tile_config,
    unpack_lanes,
)
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from input_cycle_model import InputUnitCycleModel
from input_model import ExpectedVector, InputUnitModel, is_nonfinite
from input_stimulus import VectorMaker

from simulator import TileConfig


class HandshakeChecker:
    """Every clock: in_ready_o, out_valid_o and nonfinite_o are resolved and equal the model's."""

    def __init__(self, dut, cfg: TileConfig, beats: int):
        self.dut, self.cfg = dut, cfg
        self.model = InputUnitCycleModel(beats)
        self.errors: list[str] = []
        self.closing_cycles: list[int] = []

    async def run(self) -> None:
        dut, fmt, p = self.dut, self.cfg.in_fmt, self.cfg.n // self.model.beats
        while True:
            await FallingEdge(dut.clk_i)
            await ReadOnly()
            cycle = current_cycle()
            if not dut.rst_ni.value.is_resolvable or int(dut.rst_ni.value) == 0:
                self.model.reset()
                continue
            signals = {
                n: getattr(dut, n).value
                for n in ("in_valid_i", "in_ready_o", "out_valid_o", "out_ready_i", "nonfinite_o")
            }
            bad = [n for n, v in signals.items() if not v.is_resolvable]
            if bad:
                self.errors.append(f"cycle {cycle}: unresolved {bad}")
                continue
            in_valid = int(signals["in_valid_i"]) == 1
            beat_nonfinite = False
            if in_valid:
                data = dut.in_data_i.value
                if not data.is_resolvable:
                    self.errors.append(f"cycle {cycle}: in_data_i unresolved while valid")
                    continue
                lanes = unpack_lanes(int(data), fmt.width, p)
                beat_nonfinite = bool(is_nonfinite(lanes, fmt).any())
            closing = self.model.closing
            want = self.model.step(in_valid, int(signals["out_ready_i"]) == 1, beat_nonfinite)
            got = tuple(
                int(signals[n]) == 1 for n in ("in_ready_o", "out_valid_o", "nonfinite_o")
            )
            if got != want:
                self.errors.append(
                    f"cycle {cycle}: (in_ready, out_valid, nonfinite) = {got}, cycle model {want}"
                )
            if in_valid and got[0] and closing:
                self.closing_cycles.append(cycle)


class InputUnitBench:
    """Clock, reset, driver, monitor, cycle model, golden model and scoreboard."""

    def __init__(self, dut, idle_prob: float, stall_prob: float, seed_offset: int):
        self.dut = dut
        self.cfg = tile_config()
        self.p = env_int("ABFP_P", self.cfg.n)
        self.beats = self.cfg.n // self.p
        seed = env_int("ABFP_SEED", 1)
        self.rng = np.random.default_rng([seed, seed_offset])
        self.maker = VectorMaker(self.cfg, self.rng)
        self.model = InputUnitModel(self.cfg, bool(env_int("ABFP_INJECT_MISMATCH", 0)))
        self.source = ValidReadySource(
            dut.clk_i, dut.in_valid_i, dut.in_ready_o, {"in_data_i": dut.in_data_i},
            self.rng, idle_prob,
        )  # fmt: skip
        self.sink = ValidReadySink(
            dut.clk_i, dut.out_valid_o, dut.out_ready_i,
            {"out_scale_o": dut.out_scale_o, "out_codes_o": dut.out_codes_o},
            self.rng, stall_prob,
        )  # fmt: skip
        self.handshakes = HandshakeChecker(dut, self.cfg, self.beats)

    async def start(self) -> None:
        dut = self.dut
        check_parameters(
            dut, self.cfg.hdl_parameters("input", P=self.p), f"{self.cfg!r} with P={self.p}"
        )
        dut.rst_ni.value = 0
        dut.in_valid_i.value = 0
        dut.in_data_i.value = 0
        dut.out_ready_i.value = 0
        cocotb.start_soon(Clock(dut.clk_i, CLOCK_PERIOD_NS, unit="ns").start())
        await self.reset()
        cocotb.start_soon(self.sink.run())
        cocotb.start_soon(self.handshakes.run())

    async def reset(self, cycles: int = 3) -> None:
        await pulse_reset(self.dut.clk_i, self.dut.rst_ni, [self.dut.in_valid_i], cycles)

    def beats_of(self, vectors: list[np.ndarray]) -> list[dict[str, int]]:
        width = self.cfg.in_fmt.width
        return [
            {"in_data_i": pack_lanes(vec[b * self.p : (b + 1) * self.p], width)}
            for vec in vectors
            for b in range(self.beats)
        ]

    def scoreboard(self, vectors: list[np.ndarray], name: str) -> tuple[Scoreboard, list]:
        """A scoreboard expecting ``vectors``' outputs, and the golden ``ExpectedVector``s."""
        golden = self.model.expected(vectors)
        board = Scoreboard(name)
        for exp in golden:
            board.expect(self.model.transaction(exp))
        return board, golden

    async def drain(self, count: int) -> None:
        """Wait for ``count`` outputs, then long enough to see any extra one."""
        for _ in range(50 * (self.beats + 2) + 20 * count):
            if len(self.sink.beats) >= count:
                break
            await FallingEdge(self.dut.clk_i)
        await ClockCycles(self.dut.clk_i, 4 * (self.beats + 2))

    def check(self, board: Scoreboard) -> None:
        assert not self.sink.errors, "\n".join(self.sink.errors)
        assert not self.handshakes.errors, "\n".join(self.handshakes.errors[:20])
        for beat, cycle in zip(self.sink.beats, self.sink.cycles, strict=True):
            codes = unpack_lanes(beat["out_codes_o"], self.cfg.bx, self.cfg.n)
            board.receive(np.concatenate([[beat["out_scale_o"]], codes]), cycle)
        board.check()

    async def run_stream(self, vectors: list[np.ndarray], name: str) -> list[ExpectedVector]:
        """Send ``vectors``, check every output; returns their golden ``ExpectedVector``s."""
        board, golden = self.scoreboard(vectors, name)
        await self.source.send(self.beats_of(vectors))
        await self.drain(len(vectors))
        self.check(board)
        return golden


def txns(default: int = 40) -> int:
    return max(4, env_int("ABFP_TXNS", default))
