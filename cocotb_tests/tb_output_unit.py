"""cocotb tests of ``abfp_output_unit`` against ``simulator.rescale_accumulate``.

Settings from the environment: ``ABFP_TILE_CONFIG`` (JSON keyword arguments of
``TileConfig``), ``ABFP_LANES``, ``ABFP_TXNS`` (output beats per test), ``ABFP_SEED`` and
``ABFP_INJECT_MISMATCH`` (1: the model flips one expected bit, so the run must fail).
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
    env_int,
    pulse_reset,
    tile_config,
    unpack_lanes,
)
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge
from output_model import OUTPUT_UNIT_LATENCY, OutputUnitModel, TileGroup, output_cycles

from golden.directed import output_cases
from simulator import FloatFormat, TileConfig
from simulator.formats import from_bits

MAX_TILES = 4


def scale_values(rng: np.random.Generator, fmt: FloatFormat, shape) -> np.ndarray:
    """Non-negative scale values: mostly moderate, with zeros, subnormals, extremes and inf.

    Products of two extreme scales overflow fp32 or fall into its subnormal range.
    """
    exp_ones = (1 << fmt.exp_bits) - 1
    kind = rng.choice(5, size=shape, p=[0.55, 0.22, 0.08, 0.10, 0.05])
    moderate = np.clip(fmt.bias + rng.integers(-6, 7, size=shape), 1, exp_ones - 1)
    full_range = rng.integers(1, exp_ones, size=shape)
    exponent = np.select([kind == 0, kind == 1], [moderate, full_range], 0)
    exponent = np.where(kind == 4, exp_ones, exponent)
    mantissa = rng.integers(0, 1 << fmt.man_bits, size=shape)
    mantissa = np.where(kind == 2, 0, mantissa)  # zero (kind 2) or subnormal (kind 3)
    mantissa = np.where(kind == 4, 0, mantissa)  # infinity
    bits = (exponent.astype(np.uint32) << fmt.man_bits) | mantissa.astype(np.uint32)
    return from_bits(bits, fmt)


def random_group(rng: np.random.Generator, cfg: TileConfig, lanes: int, ntiles: int) -> TileGroup:
    """A group of ``ntiles`` beats with full-scale, zero and random codes."""
    shape = (lanes, ntiles)
    codes = rng.integers(-cfg.my, cfg.my + 1, size=shape)
    pick = rng.random(shape)
    codes = np.where(pick < 0.08, cfg.my, codes)
    codes = np.where((pick >= 0.08) & (pick < 0.16), -cfg.my, codes)
    codes = np.where((pick >= 0.16) & (pick < 0.24), 0, codes)
    return TileGroup(
        codes=codes.astype(np.int32),
        w_scale=scale_values(rng, cfg.scale_fmt, shape),
        x_scale=scale_values(rng, cfg.scale_fmt, (ntiles,)),
    )


def random_groups(rng, cfg, lanes, count) -> list[TileGroup]:
    """``count`` groups with T in 1..MAX_TILES, every third one a single tile."""
    return [
        random_group(rng, cfg, lanes, 1 if g % 3 == 0 else int(rng.integers(1, MAX_TILES + 1)))
        for g in range(count)
    ]


class OutputUnitBench:
    """Clock, reset, driver, monitor, model and scoreboard around one ``abfp_output_unit``."""

    def __init__(self, dut, idle_prob: float, stall_prob: float, seed_offset: int):
        self.dut = dut
        self.cfg = tile_config()
        self.lanes = env_int("ABFP_LANES", 4)
        seed = env_int("ABFP_SEED", 1)
        self.rng = np.random.default_rng([seed, seed_offset])
        self.model = OutputUnitModel(
            self.cfg, inject_mismatch=bool(env_int("ABFP_INJECT_MISMATCH", 0))
        )
        self.source = ValidReadySource(
            dut.clk_i, dut.in_valid_i, dut.in_ready_o,
            {n: getattr(dut, n) for n in ("qy_i", "sw_i", "sx_i", "first_i", "last_i")},
            self.rng, idle_prob,
        )  # fmt: skip
        self.sink = ValidReadySink(
            dut.clk_i, dut.out_valid_o, dut.out_ready_i, {"y_o": dut.y_o}, self.rng, stall_prob
        )

    async def start(self) -> None:
        dut = self.dut
        check_parameters(
            dut, self.cfg.hdl_parameters("output", LANES=self.lanes),
            f"{self.cfg!r} with LANES={self.lanes}",
        )  # fmt: skip
        dut.rst_ni.value = 0
        cocotb.start_soon(Clock(dut.clk_i, CLOCK_PERIOD_NS, unit="ns").start())
        dut.k_i.value = self.cfg.rescale_constant_bits
        dut.in_valid_i.value = 0
        dut.out_ready_i.value = 0
        await self.reset()
        cocotb.start_soon(self.sink.run())

    async def reset(self, cycles: int = 3) -> None:
        await pulse_reset(self.dut.clk_i, self.dut.rst_ni, [self.dut.in_valid_i], cycles)

    def scoreboard(self, groups: list[TileGroup], name: str) -> Scoreboard:
        board = Scoreboard(name)
        for group in groups:
            board.expect(self.model.expected(group))
        return board

    def received_bits(self) -> list[np.ndarray]:
        width = self.cfg.out_fmt.width
        return [unpack_lanes(b["y_o"], width, self.lanes) for b in self.sink.beats]

    def collect(self, board: Scoreboard) -> None:
        """Hand every output taken so far to ``board``, with its cycle."""
        for bits, cycle in zip(self.received_bits(), self.sink.cycles, strict=True):
            board.receive(bits, cycle)

    async def drain(self, count: int) -> None:
        """Wait for ``count`` outputs, then long enough to see any extra one."""
        limit = 50 * OUTPUT_UNIT_LATENCY + 20 * count
        for _ in range(limit):
            if len(self.sink.beats) >= count:
                break
            await FallingEdge(self.dut.clk_i)
        await ClockCycles(self.dut.clk_i, 4 * OUTPUT_UNIT_LATENCY)

    def check(self, board: Scoreboard) -> None:
        assert not self.sink.errors, "\n".join(self.sink.errors)
        self.collect(board)
        board.check()


async def send_groups(bench: OutputUnitBench, groups: list[TileGroup], name: str):
    """Send ``groups``, check every output; returns the beats sent and their accept cycles."""
    board = bench.scoreboard(groups, name)
    beats = [beat for group in groups for beat in bench.model.beats(group)]
    accept = await bench.source.send(beats)
    await bench.drain(len(groups))
    bench.check(board)
    return beats, accept


async def run_stream(dut, idle_prob: float, stall_prob: float, seed_offset: int):
    bench = OutputUnitBench(dut, idle_prob, stall_prob, seed_offset)
    await bench.start()
    groups = random_groups(bench.rng, bench.cfg, bench.lanes, env_int("ABFP_TXNS", 60))
    beats, accept = await send_groups(bench, groups, "abfp_output_unit")
    return bench, beats, accept


@cocotb.test()
async def unstalled_timing_test(dut):
    """Without stalls: one beat per clock, every output at its modelled cycle, exact values."""
    bench, beats, accept = await run_stream(dut, idle_prob=0.0, stall_prob=0.0, seed_offset=0)
    assert np.array_equal(np.diff(accept), np.ones(len(accept) - 1)), (
        f"input beats were not taken on consecutive cycles: {accept}"
    )
    expected_cycles = output_cycles(accept, [bool(b["last_i"]) for b in beats])
    assert bench.sink.cycles == expected_cycles, (
        f"output cycles {bench.sink.cycles} differ from the model's {expected_cycles}"
    )


@cocotb.test()
async def stalled_stream_test(dut):
    """Random idle cycles on the input and backpressure on the output lose or repeat nothing."""
    await run_stream(dut, idle_prob=0.3, stall_prob=0.45, seed_offset=1)


@cocotb.test()
async def heavy_backpressure_test(dut):
    """Output ready mostly low, input always offered: the pipe fills and stalls."""
    await run_stream(dut, idle_prob=0.0, stall_prob=0.8, seed_offset=2)


@cocotb.test()
async def reset_mid_stream_test(dut):
    """A reset in the middle of a stream: nothing stale comes out afterwards."""
    bench = OutputUnitBench(dut, idle_prob=0.2, stall_prob=0.3, seed_offset=3)
    await bench.start()
    count = max(4, env_int("ABFP_TXNS", 60) // 4)
    first = random_groups(bench.rng, bench.cfg, bench.lanes, count)
    first_board = bench.scoreboard(first, "before reset")
    first_beats = [beat for group in first for beat in bench.model.beats(group)]
    sender = cocotb.start_soon(bench.source.send(first_beats))
    await ClockCycles(dut.clk_i, len(first_beats) // 2 + OUTPUT_UNIT_LATENCY)
    sender.cancel()
    await bench.reset()
    # What came out before the reset is a correct prefix of the first stream.
    before = bench.received_bits()
    assert 0 < len(before) < count, f"reset should split the stream, saw {len(before)} outputs"
    first_board.expected = first_board.expected[: len(before)]
    bench.collect(first_board)
    first_board.check()
    bench.sink.clear()

    second = random_groups(bench.rng, bench.cfg, bench.lanes, count)
    board = bench.scoreboard(second, "after reset")
    await bench.source.send([beat for group in second for beat in bench.model.beats(group)])
    await bench.drain(len(second))
    bench.check(board)


@cocotb.test()
async def directed_test(dut):
    """Every directed case of golden.directed (zero and full-scale codes, corner scales, fp32
    subnormal and overflow products, signed zeros, rounding ties, non-finite accumulation)."""
    bench = OutputUnitBench(dut, idle_prob=0.1, stall_prob=0.2, seed_offset=4)
    await bench.start()
    groups = [
        TileGroup(codes, w_scale, x_scale)
        for _, rows in output_cases(bench.cfg, bench.rng, bench.lanes)
        for block in rows
        for codes, w_scale, x_scale in block.tiles()
    ]
    await send_groups(bench, groups, "directed")
