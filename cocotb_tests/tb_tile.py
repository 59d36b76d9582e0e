"""End-to-end tile cosimulation: RTL input unit and RTL output unit, driven from memories.

For each configuration the bench computes ``abfp_linear`` with its trace, loads the input
unit's beats (each batch row's tiles, P elements a beat) and the output unit's beats (the
golden analog array's ADC codes, docs/arithmetic.md steps 4-7, with the scales and first/last
marks) into the stimulus memories of ``abfp_tile_top``, starts one run with random stalls on
every valid and ready, waits for it to finish and reads back both capture memories. The HDL
top generates its own clock, so no Python runs during a run: the bench awaits clock edges only
to reset, load, start and dump, and otherwise ``done_o``. Every output must equal
``abfp_linear`` bit for bit; the input unit's codes and scales must equal the golden trace's
(the ADC codes fed to the output unit are computed from those).

Environment: ``ABFP_TILE_CASES`` (JSON list of TileConfig keyword dicts sharing the HDL
parameters of the build), ``ABFP_LANES``, ``ABFP_P``, ``ABFP_ROWS`` (batch rows per case),
``ABFP_OUT_ROWS`` (output rows, a multiple of LANES), ``ABFP_TILES`` (K = TILES*n - n/2, so the
last tile is ragged), ``ABFP_SEED``, ``ABFP_STALL`` (probability of idling a valid or ready),
``ABFP_INJECT_MISMATCH`` (flip one expected bit: the bench must then fail),
``ABFP_WORK_DIR`` (directory for the memory files), ``ABFP_SUMMARY`` (path of a JSON summary).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from bench_common import Expected, Scoreboard, check_parameters, env_int, pulse_reset
from cocotb.triggers import RisingEdge
from hexmem import pack_fields, read_hex, unpack_field, write_hex
from tile_sim import tile_parameters

from simulator import TileConfig, abfp_linear, quantize_weights
from simulator.formats import to_bits

# mem_sel_i of abfp_tile_top
_IU_BEATS, _OU_BEATS, _IU_CAPTURE, _OU_CAPTURE = range(4)


def _cases() -> list[dict]:
    return json.loads(os.environ.get("ABFP_TILE_CASES", "[{}]"))


def _signed(codes: np.ndarray, bits: int) -> np.ndarray:
    codes = codes.astype(np.int64)
    return np.where(codes >= 1 << (bits - 1), codes - (1 << bits), codes)


class TileBench:
    """Memory loading, run control and capture readback of ``abfp_tile_top``."""

    def __init__(self, dut, work_dir: Path):
        self.dut = dut
        self.work_dir = work_dir
        self.path_chars = int(dut.PATH_CHARS.value.to_signed())
        self.depth = int(dut.DEPTH.value.to_signed())

    async def start(self) -> None:
        dut = self.dut
        for handle in (dut.load_i, dut.dump_i, dut.start_i, dut.mem_sel_i, dut.path_i):
            handle.value = 0
        await pulse_reset(dut.clk, dut.rst_ni, [dut.start_i])

    async def _file_op(self, strobe, select: int, path: Path) -> None:
        text = str(path).encode()
        if len(text) > self.path_chars:
            raise ValueError(f"memory file path {path} is longer than {self.path_chars} bytes")
        self.dut.path_i.value = int.from_bytes(text, "big")
        self.dut.mem_sel_i.value = select
        strobe.value = 1
        await RisingEdge(self.dut.clk)
        strobe.value = 0

    async def load(self, iu_words: np.ndarray, ou_words: np.ndarray) -> None:
        """Load the input unit's and the output unit's beats into the stimulus memories."""
        self.dut.iu_beats_i.value, self.dut.ou_beats_i.value = len(iu_words), len(ou_words)
        for select, name, words in ((_IU_BEATS, "iu_beats", iu_words),
                                    (_OU_BEATS, "ou_beats", ou_words)):  # fmt: skip
            if len(words) > self.depth:
                raise ValueError(f"{name}: {len(words)} words exceed the memory depth {self.depth}")
            path = self.work_dir / f"{name}.hex"
            write_hex(path, words)
            await self._file_op(self.dut.load_i, select, path)

    async def dump(self, select: int, name: str, count: int, width: int) -> np.ndarray:
        """The first ``count`` words of a capture memory."""
        if count == 0:
            return np.zeros((0, width), bool)
        path = self.work_dir / f"{name}.hex"
        await self._file_op(self.dut.dump_i, select, path)
        await RisingEdge(self.dut.clk)
        return read_hex(path, width)

    async def run(self, *, iu_vectors, ou_outputs, budget, seed, stall, k) -> int:
        """One run over the loaded beats; returns the cycles it took."""
        dut = self.dut
        dut.iu_vectors_i.value, dut.ou_outputs_i.value = iu_vectors, ou_outputs
        dut.budget_i.value = budget
        dut.seed_i.value = seed
        dut.stall_i.value = min(round(stall * (1 << 16)), (1 << 16) - 1)
        dut.ou_k_i.value = k
        dut.start_i.value = 1
        await RisingEdge(dut.clk)
        dut.start_i.value = 0
        await RisingEdge(dut.done_o)
        return int(dut.cycles_o.value)


async def run_case(bench: TileBench, kwargs: dict, rng, lanes, per_beat, rows, out_rows, tiles,
                   seed, stall, inject) -> tuple[int, int, str]:  # fmt: skip
    """One configuration: returns (outputs checked, mismatching outputs, report)."""
    cfg = TileConfig(**kwargs)
    dut = bench.dut
    check_parameters(
        dut,
        tile_parameters(cfg, lanes, per_beat, bench.depth),
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
    sc_w, out_w, groups = cfg.scale_fmt.width, cfg.out_fmt.width, out_rows // lanes

    # --- input unit: one vector per (row, tile), P elements a beat -----------------------
    padded = np.zeros((rows, tiles * n), np.float32)
    padded[:, :k] = trace.x_fmt
    x_bits = to_bits(padded, cfg.in_fmt).reshape(-1, per_beat)
    iu_words = pack_fields([(x_bits, cfg.in_fmt.width)])
    # --- output unit: per (row, group) one beat per tile, ADC codes from the golden array --
    by_group = (rows, groups, tiles, lanes)
    qy = trace.adc_code.reshape(rows, groups, lanes, tiles).transpose(0, 1, 3, 2)
    sw = to_bits(qw.scale, cfg.scale_fmt).reshape(groups, lanes, tiles).transpose(0, 2, 1)
    sx = to_bits(trace.x_scale, cfg.scale_fmt)
    tile = np.arange(tiles)
    ou_words = pack_fields([
        (qy.reshape(-1, lanes), cfg.by),
        (np.broadcast_to(sw[None], by_group).reshape(-1, lanes), sc_w),
        (np.broadcast_to(sx[:, None, :], by_group[:3]).reshape(-1), sc_w),
        (np.broadcast_to(tile == 0, by_group[:3]).reshape(-1), 1),
        (np.broadcast_to(tile == tiles - 1, by_group[:3]).reshape(-1), 1),
    ])  # fmt: skip
    await bench.load(iu_words, ou_words)
    budget = 20 * (len(iu_words) + len(ou_words)) + 1000
    cycles = await bench.run(
        iu_vectors=rows * tiles, ou_outputs=rows * groups, budget=budget,
        seed=int(rng.integers(1, 1 << 32)), stall=stall, k=cfg.rescale_constant_bits,
    )  # fmt: skip
    iu_count, ou_count = int(dut.iu_count_o.value), int(dut.ou_count_o.value)
    codes_w = n * cfg.bx
    iu_cap = await bench.dump(_IU_CAPTURE, "iu_capture", iu_count, codes_w + sc_w + 32)
    ou_cap = await bench.dump(_OU_CAPTURE, "ou_capture", ou_count, lanes * out_w + 32)

    # --- input unit against the golden trace ---------------------------------------------
    lines = []
    want_vectors = rows * tiles
    if iu_count != want_vectors:
        lines.append(f"input unit: expected {want_vectors} vectors, received {iu_count}")
    got = min(iu_count, want_vectors)
    x_code = _signed(unpack_field(iu_cap, 0, cfg.bx, n), cfg.bx)[:got]
    x_scale_bits = unpack_field(iu_cap, codes_w, sc_w)[:got, 0]
    iu_cycles = unpack_field(iu_cap, codes_w + sc_w, 32)[:got, 0]
    want_code = trace.x_code.reshape(-1, n)[:got]
    want_scale = sx.reshape(-1)[:got]
    bad_scales = np.flatnonzero(x_scale_bits != want_scale)
    bad_codes = np.argwhere(x_code != want_code)
    for v in bad_scales[:5]:
        b, j = divmod(int(v), tiles)
        lines.append(
            f"input unit row {b} tile {j}: scale bits 0x{int(x_scale_bits[v]):x} != "
            f"0x{int(want_scale[v]):x} ({float(trace.x_scale[b, j])!r}) at cycle {iu_cycles[v]}"
        )
    for v, e in bad_codes[:5]:
        b, j = divmod(int(v), tiles)
        lines.append(
            f"input unit row {b} tile {j} element {e}: code {x_code[v, e]} != "
            f"{want_code[v, e]} (x = {float(trace.x_fmt[b, j * n + e])!r}, "
            f"sx = {float(trace.x_scale[b, j])!r}) at cycle {iu_cycles[v]}"
        )

    # --- output unit against abfp_linear ----------------------------------------------------
    want_y = to_bits(y_golden, cfg.out_fmt).reshape(rows * groups, lanes)
    if inject:
        want_y[0, 0] ^= 1
    got_y = unpack_field(ou_cap, 0, out_w, lanes)
    ou_cycles = unpack_field(ou_cap, lanes * out_w, 32)[:, 0]
    shared = min(len(got_y), len(want_y))
    y_mismatches = int(np.count_nonzero(got_y[:shared] != want_y[:shared]))
    mismatches = y_mismatches + lanes * abs(len(got_y) - len(want_y))
    report = ""
    if mismatches:
        report = _output_report(cfg, kwargs, trace, want_y, got_y, ou_cycles, lanes, tiles)
    errors = int(dut.xz_errors_o.value)
    if errors:
        lines.append(f"{errors} valid output beats held X/Z bits")
    if cycles >= budget:
        lines.append(f"timeout after {cycles} cycles")
    mismatches += len(bad_codes) + len(bad_scales) + errors + abs(iu_count - want_vectors)
    text = "\n".join(lines + ([report] if report else []))
    return rows * out_rows, mismatches, text


def _output_report(cfg, kwargs, trace, want_y, got_y, cycles, lanes, tiles) -> str:
    """The scoreboard's mismatch report: transaction, lane, values, bits, cycle, stage trace."""
    groups = want_y.shape[0] // trace.acc.shape[0]
    board = Scoreboard(f"tile {kwargs}")
    for index, bits in enumerate(want_y):
        b, i0 = divmod(index, groups)
        i0 *= lanes

        def context(lane, b=b, i0=i0):
            i = i0 + lane
            return "; ".join(
                f"tile {j}: mac={trace.mac[b, i, j]} analog={float(trace.analog[b, i, j])!r} "
                f"noise={float(trace.noise[b, i, j])!r} qy={trace.adc_code[b, i, j]} "
                f"sx={float(trace.x_scale[b, j])!r} sw={float(trace.w_scale[i, j])!r} "
                f"p={float(trace.partial[b, i, j])!r} acc={float(trace.acc[b, i, j])!r}"
                for j in range(tiles)
            ) + f" (batch row {b}, output row {i})"

        board.expect(Expected(bits=bits, fmt=cfg.out_fmt, context=context))
    for bits, cycle in zip(got_y, cycles, strict=True):
        board.receive(bits, int(cycle))
    return board.report()


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
    bench = TileBench(dut, Path(os.environ.get("ABFP_WORK_DIR", ".")).resolve())
    await bench.start()
    start = time.perf_counter()
    checked = mismatched = 0
    reports = []
    for index, kwargs in enumerate(_cases()):
        c, m, text = await run_case(
            bench, kwargs, rng, lanes, per_beat, rows, out_rows, tiles, seed + index, stall,
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
