"""End-to-end tile cosimulation: RTL input unit -> golden analog array -> RTL output unit.

The RTL input unit turns each batch row's tiles into DAC codes and scales; the golden model's
analog stages (docs/arithmetic.md steps 4-7, with noise) turn those codes into ADC codes; the
RTL output unit rescales and accumulates them. Every output must equal ``abfp_linear`` on the
same data and seed, bit for bit; the input unit's codes and scales are also checked against the
golden trace.

Environment: ``ABFP_TILE_CASES`` (JSON list of TileConfig keyword dicts sharing the HDL
parameters of the build), ``ABFP_LANES``, ``ABFP_P``, ``ABFP_ROWS`` (batch rows per case),
``ABFP_OUT_ROWS`` (output rows, a multiple of LANES), ``ABFP_TILES`` (K = TILES*n - n/2, so the
last tile is ragged), ``ABFP_SEED``, ``ABFP_STALL`` (probability of idling a valid or ready),
``ABFP_INJECT_MISMATCH`` (flip one expected bit: the bench must then fail),
``ABFP_SUMMARY`` (path of a JSON summary).
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from bench_common import (
    CLOCK_PERIOD_NS,
    Expected,
    Scoreboard,
    ValidReadySink,
    ValidReadySource,
    check_parameters,
    env_int,
    pack_lanes,
    pulse_reset,
    unpack_lanes,
)
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge
from output_model import OutputUnitModel, TileGroup

from simulator import TileConfig, abfp_linear, adc_codes, quantize_weights
from simulator.formats import from_bits, to_bits


def _cases() -> list[dict]:
    return json.loads(os.environ.get("ABFP_TILE_CASES", "[{}]"))


def _signed(codes: np.ndarray, bits: int) -> np.ndarray:
    codes = codes.astype(np.int64)
    return np.where(codes >= 1 << (bits - 1), codes - (1 << bits), codes)


class TileBench:
    """Drivers and monitors of both units of ``abfp_tile_top``."""

    def __init__(self, dut, rng: np.random.Generator, stall: float):
        self.dut = dut
        self.iu_source = ValidReadySource(
            dut.clk_i, dut.iu_in_valid_i, dut.iu_in_ready_o, {"data": dut.iu_in_data_i}, rng,
            idle_prob=stall,
        )  # fmt: skip
        self.iu_sink = ValidReadySink(
            dut.clk_i, dut.iu_out_valid_o, dut.iu_out_ready_i,
            {"scale": dut.iu_out_scale_o, "codes": dut.iu_out_codes_o}, rng, stall_prob=stall,
        )  # fmt: skip
        self.ou_source = ValidReadySource(
            dut.clk_i, dut.ou_in_valid_i, dut.ou_in_ready_o,
            {"qy_i": dut.ou_qy_i, "sw_i": dut.ou_sw_i, "sx_i": dut.ou_sx_i,
             "first_i": dut.ou_first_i, "last_i": dut.ou_last_i}, rng, idle_prob=stall,
        )  # fmt: skip
        self.ou_sink = ValidReadySink(
            dut.clk_i, dut.ou_out_valid_o, dut.ou_out_ready_i, {"y": dut.ou_y_o}, rng,
            stall_prob=stall,
        )  # fmt: skip

    async def start(self) -> None:
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk_i, CLOCK_PERIOD_NS, unit="ns").start())
        for handle in (dut.iu_in_valid_i, dut.ou_in_valid_i, dut.iu_out_ready_i,
                       dut.ou_out_ready_i, dut.iu_in_data_i, dut.ou_qy_i, dut.ou_sw_i,
                       dut.ou_sx_i, dut.ou_first_i, dut.ou_last_i, dut.ou_k_i):  # fmt: skip
            handle.value = 0
        await pulse_reset(dut.clk_i, dut.rst_ni, [dut.iu_in_valid_i, dut.ou_in_valid_i])
        cocotb.start_soon(self.iu_sink.run())
        cocotb.start_soon(self.ou_sink.run())

    async def wait_for(self, sink: ValidReadySink, count: int, budget: int) -> None:
        for _ in range(budget):
            if len(sink.beats) >= count:
                return
            await FallingEdge(self.dut.clk_i)
        raise AssertionError(f"timeout: {len(sink.beats)} of {count} output beats after {budget}")


async def run_case(bench: TileBench, kwargs: dict, rng, lanes, per_beat, rows, out_rows, tiles,
                   seed, inject) -> tuple[int, int, str]:  # fmt: skip
    """One configuration: returns (outputs checked, mismatching outputs, report)."""
    cfg = TileConfig(**kwargs)
    check_parameters(
        bench.dut,
        cfg.hdl_parameters("input", P=per_beat) | cfg.hdl_parameters("output", LANES=lanes),
        f"{cfg!r} with P={per_beat}, LANES={lanes}",
    )
    n = cfg.n
    k = tiles * n - n // 2 if n > 1 else tiles
    x = rng.standard_normal((rows, k)) * np.exp(rng.uniform(-3, 3, (rows, 1)))
    x[0, : min(n, k)] = 0.0  # an all-zero block
    x[1 % rows, 0] = 1e4  # a single huge element
    w = rng.laplace(size=(out_rows, k))
    w[:, -1] = -0.0
    qw = quantize_weights(w, cfg)
    y_golden, trace = abfp_linear(x, qw, cfg, seed=seed, trace=True)

    # --- RTL input unit: one vector per (row, tile), P elements per beat -----------------
    in_w = cfg.in_fmt.width
    padded = np.zeros((rows, tiles * n), np.float32)
    padded[:, :k] = trace.x_fmt
    x_bits = to_bits(padded, cfg.in_fmt).reshape(rows * tiles, n)
    beats = [
        {"data": pack_lanes(vec[s : s + per_beat], in_w)}
        for vec in x_bits
        for s in range(0, n, per_beat)
    ]
    bench.iu_sink.clear()
    await bench.iu_source.send(beats)
    await bench.wait_for(bench.iu_sink, rows * tiles, budget=20 * len(beats) + 1000)
    scale_bits = np.array([b["scale"] for b in bench.iu_sink.beats], np.uint32)
    x_scale = from_bits(scale_bits, cfg.scale_fmt).reshape(rows, tiles)
    x_code = np.stack(
        [_signed(unpack_lanes(b["codes"], cfg.bx, n), cfg.bx) for b in bench.iu_sink.beats]
    ).reshape(rows, tiles, n)
    iu_cycles = np.array(bench.iu_sink.cycles).reshape(rows, tiles)
    lines = []
    bad_codes = np.argwhere(x_code != trace.x_code)
    scale_fmt = cfg.scale_fmt
    bad_scales = np.argwhere(to_bits(x_scale, scale_fmt) != to_bits(trace.x_scale, scale_fmt))
    for b, j in bad_scales[:5]:
        lines.append(
            f"input unit row {b} tile {j}: scale {float(x_scale[b, j])!r} != "
            f"{float(trace.x_scale[b, j])!r} at cycle {iu_cycles[b, j]}"
        )
    for b, j, e in bad_codes[:5]:
        lines.append(
            f"input unit row {b} tile {j} element {e}: code {x_code[b, j, e]} != "
            f"{trace.x_code[b, j, e]} (x = {float(trace.x_fmt[b, j * n + e])!r}, "
            f"sx = {float(trace.x_scale[b, j])!r}) at cycle {iu_cycles[b, j]}"
        )

    # --- golden analog array on the RTL's codes ---------------------------------------
    adc = adc_codes(x_code.astype(np.int32), qw.code, cfg, seed=seed)

    # --- RTL output unit ----------------------------------------------------------------
    model = OutputUnitModel(cfg)
    board = Scoreboard(f"tile {kwargs}")
    out_beats = []
    for b in range(rows):
        for g in range(0, out_rows, lanes):
            sel = slice(g, g + lanes)
            group = TileGroup(adc[b, sel], qw.scale[sel], x_scale[b])
            out_beats += model.beats(group)
            bits = to_bits(y_golden[b, sel], cfg.out_fmt)
            if inject and b == 0 and g == 0:
                bits[0] ^= 1

            def context(lane, b=b, i0=g):
                i = i0 + lane
                return "; ".join(
                    f"tile {j}: mac={trace.mac[b, i, j]} analog={float(trace.analog[b, i, j])!r} "
                    f"noise={float(trace.noise[b, i, j])!r} qy={trace.adc_code[b, i, j]} "
                    f"sx={float(trace.x_scale[b, j])!r} sw={float(trace.w_scale[i, j])!r} "
                    f"p={float(trace.partial[b, i, j])!r} acc={float(trace.acc[b, i, j])!r}"
                    for j in range(tiles)
                ) + f" (batch row {b}, output row {i})"

            board.expect(Expected(bits=bits, fmt=cfg.out_fmt, context=context))
    bench.dut.ou_k_i.value = cfg.rescale_constant_bits
    bench.ou_sink.clear()
    await bench.ou_source.send(out_beats)
    await bench.wait_for(bench.ou_sink, len(board.expected), budget=20 * len(out_beats) + 1000)
    for beat, cycle in zip(bench.ou_sink.beats, bench.ou_sink.cycles, strict=True):
        board.receive(unpack_lanes(beat["y"], cfg.out_fmt.width, lanes), cycle)
    report = board.report()
    mismatches = board.mismatches() + len(bad_codes) + len(bad_scales)
    errors = bench.iu_sink.errors + bench.ou_sink.errors
    text = "\n".join(lines + ([report] if report else []) + errors[:5])
    if errors:
        mismatches += len(errors)
    return rows * out_rows, mismatches, text


@cocotb.test()
async def tile_end_to_end(dut):
    """Every configuration of ABFP_TILE_CASES end to end, bit for bit against abfp_linear."""
    seed = env_int("ABFP_SEED", 1)
    rng = np.random.default_rng(seed)
    lanes, per_beat = env_int("ABFP_LANES", 8), env_int("ABFP_P", 16)
    rows, out_rows = env_int("ABFP_ROWS", 4), env_int("ABFP_OUT_ROWS", 16)
    tiles = env_int("ABFP_TILES", 3)
    stall = float(os.environ.get("ABFP_STALL", "0.2"))
    inject = os.environ.get("ABFP_INJECT_MISMATCH", "") == "1"
    bench = TileBench(dut, rng, stall)
    await bench.start()
    start = time.perf_counter()
    checked = mismatched = 0
    reports = []
    for index, kwargs in enumerate(_cases()):
        c, m, text = await run_case(
            bench, kwargs, rng, lanes, per_beat, rows, out_rows, tiles, seed + index,
            inject and index == 0,
        )  # fmt: skip
        checked += c
        mismatched += m
        if text:
            reports.append(text)
    elapsed = time.perf_counter() - start
    summary = {
        "simulator": cocotb.SIM_NAME,
        "configurations": len(_cases()),
        "outputs_checked": checked,
        "mismatches": mismatched,
        "seconds": round(elapsed, 3),
        "outputs_per_second": round(checked / elapsed, 1) if elapsed else None,
    }
    path = os.environ.get("ABFP_SUMMARY")
    if path:
        with open(path, "w") as f:
            json.dump(summary | {"report": "\n".join(reports)}, f, indent=1)
    dut._log.info("summary: %s", summary)
    assert mismatched == 0, "\n".join(reports)
