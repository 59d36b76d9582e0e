"""Cocotb bench of ``abfp_tile``: whole matrix products, bits and cycles exact.

The golden model plays the analog array: the bench's reference array (``simulator.timing``'s,
docs/rtl_tile.md) takes the DAC beats with the case's conversion latency, checks each against
the golden trace (codes, sx, tile and group, bit for bit) and answers with the trace's ADC codes
over ``ADC_SHARE`` ADC beats. Every output must equal ``abfp_linear`` bit for bit, and the cycle
of every handshake on the tile's ports (command, x, DAC, ADC, output) must equal
``simulator.timing.schedule`` under the same x idle and y back-pressure patterns.

Environment: ``ABFP_TILE_HDL`` (JSON of the build's non-tile parameters: P, LANES, ADC_SHARE,
TILE_BITS, GROUP_BITS, ROW_BITS), ``ABFP_TILE_CASES`` (JSON list of cases: ``cfg`` TileConfig
keyword arguments, ``rows``, ``k``, ``n_out``, ``latency``, ``stall`` (probability of idling x
and of holding y_ready low in a cycle), ``seed``), ``ABFP_INJECT`` (``value`` flips one expected
output bit, ``cycle`` moves one expected output cycle: the bench must then fail),
``ABFP_SUMMARY`` (path of a JSON summary).
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from bench_common import (
    CLOCK_PERIOD_NS,
    Expected,
    Scoreboard,
    check_parameters,
    pack_lanes,
    pulse_reset,
)
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from simulator import TileConfig, abfp_linear, quantize_weights
from simulator.formats import to_bits
from simulator.timing import ArrayTiming, schedule

PORTS = ("command", "x", "dac", "adc", "output")  # the handshakes visible on the tile's ports
DRAIN = 20  # cycles watched after the last output for beats that should not come


class Golden:
    """One case's data, golden trace and expected timing."""

    def __init__(self, case: dict, hdl: dict):
        self.cfg = cfg = TileConfig(**case["cfg"])
        self.rows, self.k, self.n_out = case["rows"], case["k"], case["n_out"]
        self.lanes, self.share, self.per_beat = hdl["LANES"], hdl["ADC_SHARE"], hdl["P"]
        self.tiles, self.groups = cfg.tiles(self.k), self.n_out // self.lanes
        if self.tiles > 1 << hdl["TILE_BITS"] or self.groups > 1 << hdl["GROUP_BITS"]:
            raise ValueError(
                f"case {case}: T = {self.tiles}, G = {self.groups} exceed the build's "
                f"2^TILE_BITS = {1 << hdl['TILE_BITS']}, 2^GROUP_BITS = {1 << hdl['GROUP_BITS']}"
            )
        rng = np.random.default_rng(case["seed"])
        x = rng.standard_normal((self.rows, self.k)) * np.exp2(rng.integers(-6, 7, (self.rows, 1)))
        x[0, : cfg.n] = 0.0  # an all-zero block
        w = rng.laplace(size=(self.n_out, self.k))
        w[-1] = 0.0  # an all-zero weight row
        qw = quantize_weights(w, cfg)
        self.y, self.trace = abfp_linear(x, qw, cfg, seed=case["seed"], trace=True)
        n, tiles = cfg.n, self.tiles
        padded = np.zeros((self.rows, tiles * n), np.float32)
        padded[:, : self.k] = self.trace.x_fmt
        vectors = to_bits(padded, cfg.in_fmt).reshape(self.rows * tiles, n)
        self.x_beats = [pack_lanes(v[s : s + self.per_beat], cfg.in_fmt.width)
                        for v in vectors for s in range(0, n, self.per_beat)]  # fmt: skip
        # Back-pressure patterns: long enough for the stalled run, ready/valid after their end.
        calm = schedule(cfg, ArrayTiming(case["latency"], self.share), self.rows, self.k,
                        self.n_out, lanes=self.lanes, per_beat=self.per_beat)  # fmt: skip
        length = 4 * calm.total_cycles + 64
        self.x_valid = (rng.random(length) >= case["stall"]).astype(np.int64)
        self.y_ready = (rng.random(length) >= case["stall"]).astype(np.int64)
        self.array = ArrayTiming(case["latency"], self.share)
        self.schedule = schedule(
            cfg, self.array, self.rows, self.k, self.n_out, self.y_ready, x_valid=self.x_valid,
            lanes=self.lanes, per_beat=self.per_beat, handshakes=True,
        )  # fmt: skip

    def conversion(self, index: int) -> tuple[int, int, int]:
        """(row, group, tile) of the index-th conversion: rows, then groups, then tiles."""
        per_row = self.groups * self.tiles
        return index // per_row, index % per_row // self.tiles, index % self.tiles

    def store_words(self) -> list[tuple[int, int, int]]:
        """(group, tile, word) of every weight-scale store word the product reads."""
        sw = to_bits(self.trace.w_scale, self.cfg.scale_fmt)
        width = self.cfg.scale_fmt.width
        return [(g, j, pack_lanes(sw[g * self.lanes : (g + 1) * self.lanes, j], width))
                for g in range(self.groups) for j in range(self.tiles)]  # fmt: skip


class ReferenceArray:
    """The analog array of simulator.timing: one vector settling, one in the sample-and-hold."""

    def __init__(self, golden: Golden):
        self.golden = golden
        self.ana = None  # (conversion index, take cycle)
        self.sh = None  # conversion index in the sample-and-hold
        self.sub = 0
        self.taken = 0
        self.errors: list[str] = []

    @property
    def dac_ready(self) -> int:
        return int(self.ana is None)

    @property
    def adc_valid(self) -> int:
        return int(self.sh is not None)

    def adc_word(self) -> int:
        g = self.golden
        m, grp, j = g.conversion(self.sh)
        codes = g.trace.adc_code[m, grp * g.lanes : (grp + 1) * g.lanes, j]
        return pack_lanes(codes[self.sub :: g.share], g.cfg.by)

    def check_dac(self, cycle: int, codes: int, sx: int, tile: int, group: int) -> None:
        g = self.golden
        m, grp, j = g.conversion(self.taken)
        sx_bits = int(to_bits(g.trace.x_scale[m, j : j + 1], g.cfg.scale_fmt)[0])
        want = (pack_lanes(g.trace.x_code[m, j], g.cfg.bx), sx_bits, j, grp)
        got = (codes, sx, tile, group)
        for name, w, v in zip(("codes", "sx", "tile", "group"), want, got, strict=True):
            if w != v:
                self.errors.append(
                    f"DAC beat {self.taken} (row {m}, group {grp}, tile {j}) at cycle {cycle}: "
                    f"{name} 0x{v:x}, golden 0x{w:x}"
                )

    def edge(self, cycle: int, dac_fire: bool, adc_fire: bool) -> None:
        """The rising edge that ends ``cycle``, in the order of simulator.timing."""
        if adc_fire:
            self.sub += 1
            if self.sub == self.golden.share:
                self.sh, self.sub = None, 0
        if self.ana is not None and self.sh is None:
            index, taken_at = self.ana
            if cycle - taken_at >= self.golden.array.conversion_latency - 1:
                self.sh, self.ana = index, None
        if dac_fire:
            self.ana = (self.taken, cycle)
            self.taken += 1


def _resolved(handle) -> int | None:
    value = handle.value
    return int(value) if value.is_resolvable else None


async def run_case(dut, golden: Golden, inject: str, rng) -> tuple[int, str]:
    """Reset, load the store, run one product; returns (mismatches, report)."""
    cfg = golden.cfg
    await pulse_reset(dut.clk_i, dut.rst_ni, [dut.cmd_valid_i, dut.ws_valid_i, dut.x_valid_i])
    dut.k_i.value = cfg.rescale_constant_bits
    for group, tile, word in golden.store_words():
        await FallingEdge(dut.clk_i)
        dut.ws_valid_i.value, dut.ws_group_i.value = 1, group
        dut.ws_tile_i.value, dut.ws_data_i.value = tile, word
        await ReadOnly()
        assert int(dut.ws_ready_o.value) == 1, "ws_ready_o low while the tile is idle"
    await FallingEdge(dut.clk_i)
    dut.ws_valid_i.value = 0

    board = Scoreboard(f"abfp_tile {golden.cfg!r}")
    for m in range(golden.rows):
        for grp in range(golden.groups):
            bits = to_bits(golden.y[m, grp * golden.lanes : (grp + 1) * golden.lanes], cfg.out_fmt)
            if inject == "value" and m == 0 and grp == 0:
                bits[0] ^= 1

            def context(lane, m=m, i=grp * golden.lanes):
                tr = golden.trace
                return f"row {m}, output row {i + lane}: " + "; ".join(
                    f"tile {j}: qy={tr.adc_code[m, i + lane, j]} "
                    f"sw={float(tr.w_scale[i + lane, j])!r} sx={float(tr.x_scale[m, j])!r} "
                    f"p={float(tr.partial[m, i + lane, j])!r} acc={float(tr.acc[m, i + lane, j])!r}"
                    for j in range(golden.tiles)
                )

            board.expect(Expected(bits=bits, fmt=cfg.out_fmt, context=context))
    expected_cycles = {name: golden.schedule.handshakes[name].tolist() for name in PORTS}
    if inject == "cycle":
        expected_cycles["output"][0] += 1

    array = ReferenceArray(golden)
    seen = {name: [] for name in PORTS}
    errors: list[str] = []
    out_w = cfg.out_fmt.width
    n_x, n_y = len(golden.x_beats), golden.rows * golden.groups
    cmd_taken, extra, cycle = False, 0, 0
    budget = golden.schedule.total_cycles + 200
    done_at = None
    while cycle < budget and (done_at is None or cycle < done_at + DRAIN):
        await FallingEdge(dut.clk_i)
        x_offer = len(seen["x"]) < n_x and (
            cycle >= len(golden.x_valid) or golden.x_valid[cycle] == 1
        )
        y_ready = cycle >= len(golden.y_ready) or golden.y_ready[cycle] == 1
        dut.cmd_valid_i.value = int(not cmd_taken)
        dut.cmd_rows_i.value = golden.rows - 1
        dut.cmd_tiles_i.value = golden.tiles - 1
        dut.cmd_groups_i.value = golden.groups - 1
        dut.x_valid_i.value = int(x_offer)
        noise_x = int(rng.integers(0, 1 << 62)) & ((1 << len(dut.x_data_i)) - 1)
        dut.x_data_i.value = golden.x_beats[len(seen["x"])] if x_offer else noise_x
        dut.y_ready_i.value = int(y_ready)
        dut.dac_ready_i.value = array.dac_ready
        dut.adc_valid_i.value = array.adc_valid
        dut.adc_codes_i.value = array.adc_word() if array.adc_valid else 0
        await ReadOnly()
        cmd_fire = not cmd_taken and _resolved(dut.cmd_ready_o) == 1
        x_fire = x_offer and _resolved(dut.x_ready_o) == 1
        dac_valid, adc_ready = _resolved(dut.dac_valid_o), _resolved(dut.adc_ready_o)
        y_valid = _resolved(dut.y_valid_o)
        if None in (dac_valid, adc_ready, y_valid):
            errors.append(f"cycle {cycle}: X/Z on dac_valid_o, adc_ready_o or y_valid_o")
        dac_fire = bool(dac_valid) and bool(array.dac_ready)
        adc_fire = bool(array.adc_valid) and bool(adc_ready)
        if dac_fire:
            fields = [_resolved(h) for h in (dut.dac_codes_o, dut.dac_sx_o, dut.dac_tile_o,
                                             dut.dac_group_o)]  # fmt: skip
            if None in fields:
                errors.append(f"cycle {cycle}: X/Z on the DAC beat")
            else:
                array.check_dac(cycle, *fields)
        if y_valid and y_ready:
            bus = _resolved(dut.y_o)
            if bus is None or len(board.received) >= n_y:
                extra += 1
                errors.append(f"cycle {cycle}: " + ("X/Z on y_o" if bus is None else
                                                    "an output beyond the product's"))  # fmt: skip
            else:
                lanes = [(bus >> (lane * out_w)) & ((1 << out_w) - 1)
                         for lane in range(golden.lanes)]  # fmt: skip
                board.receive(np.array(lanes, np.uint32), cycle)
                seen["output"].append(cycle)
                if len(board.received) == n_y:
                    done_at = cycle
        for name, fired in (("command", cmd_fire), ("x", x_fire), ("dac", dac_fire),
                            ("adc", adc_fire)):  # fmt: skip
            if fired:
                seen[name].append(cycle)
        cmd_taken = cmd_taken or cmd_fire
        array.edge(cycle, dac_fire, adc_fire)
        cycle += 1
    await FallingEdge(dut.clk_i)
    dut.x_valid_i.value, dut.cmd_valid_i.value = 0, 0

    lines = []
    report = board.report()
    if report:
        lines.append(report)
    timing_mismatches = 0
    for name in PORTS:
        want, got = expected_cycles[name], seen[name]
        if want != got:
            timing_mismatches += 1
            first = next((i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b),
                         min(len(want), len(got)))  # fmt: skip
            lines.append(
                f"{name} handshakes: {len(got)} seen, {len(want)} from simulator.timing; first "
                f"difference at handshake {first}: cycle "
                f"{got[first] if first < len(got) else None} seen, "
                f"{want[first] if first < len(want) else None} expected"
            )
    lines += (array.errors + errors)[:10]
    mismatches = board.mismatches() + timing_mismatches + len(array.errors) + len(errors)
    return mismatches, "\n".join(lines)


@cocotb.test()
async def abfp_tile_products(dut):
    """Every case of ABFP_TILE_CASES: outputs and handshake cycles exact."""
    hdl = json.loads(os.environ["ABFP_TILE_HDL"])
    cases = json.loads(os.environ["ABFP_TILE_CASES"])
    inject = os.environ.get("ABFP_INJECT", "")
    cocotb.start_soon(Clock(dut.clk_i, CLOCK_PERIOD_NS, unit="ns").start())
    for handle in (dut.cmd_valid_i, dut.ws_valid_i, dut.x_valid_i, dut.dac_ready_i,
                   dut.adc_valid_i, dut.y_ready_i):  # fmt: skip
        handle.value = 0
    summary = {"simulator": cocotb.SIM_NAME, "cases": len(cases), "outputs_checked": 0,
               "handshakes_checked": 0, "mismatches": 0, "report": ""}  # fmt: skip
    reports = []
    for index, case in enumerate(cases):
        golden = Golden(case, hdl)
        check_parameters(dut, golden.cfg.hdl_parameters("tile", **hdl),
                         f"{golden.cfg!r} with {hdl}")  # fmt: skip
        rng = np.random.default_rng(case["seed"] + 1)
        mismatches, text = await run_case(dut, golden, inject if index == 0 else "", rng)
        summary["outputs_checked"] += golden.rows * golden.n_out
        summary["handshakes_checked"] += sum(len(golden.schedule.handshakes[p]) for p in PORTS)
        summary["mismatches"] += mismatches
        if text:
            reports.append(f"case {index} {case}:\n{text}")
    summary["report"] = "\n".join(reports)
    path = os.environ.get("ABFP_SUMMARY")
    if path:
        with open(path, "w") as f:
            json.dump(summary, f, indent=1)
    dut._log.info("summary: %s", {k: v for k, v in summary.items() if k != "report"})
    assert summary["mismatches"] == 0, summary["report"]
