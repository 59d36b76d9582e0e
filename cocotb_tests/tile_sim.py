"""Run the end-to-end tile cosimulation and print its summary (``make sim``).

The RTL input unit and output unit run in one simulator, driven from stimulus memories with the
golden model's analog stages between them (``tb_tile``); every output is checked bit for bit
against ``abfp_linear``. The HDL top generates its own clock, so Verilator builds it with
``--timing``, and with only its ports and clock public. ``--rows`` sizes the run, for measuring
throughput.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import SIMULATORS, VERILATOR_TIMING_ARGS, run_cocotb, unit_sources  # noqa: E402

from simulator import TileConfig  # noqa: E402

# The test-only top that holds both units and generates its clock.
SOURCES = unit_sources(
    "input", "output", extra=[Path(__file__).resolve().parent / "hdl" / "abfp_tile_top.v"]
)
# cocotb builds Verilator with --public-flat-rw: every variable could then be written through
# VPI between two evaluations, so Verilator re-evaluates all combinational logic at every step,
# most of the simulation's time. The top marks public only what the bench touches.
VERILATOR_ARGS = (*VERILATOR_TIMING_ARGS, "--no-public-flat-rw", "--public-params")


def tile_parameters(cfg: TileConfig, lanes: int, per_beat: int, depth: int) -> dict:
    """HDL parameters of ``abfp_tile_top`` for a configuration and memory depth."""
    return (
        cfg.hdl_parameters("input", P=per_beat)
        | cfg.hdl_parameters("output", LANES=lanes)
        | {"DEPTH": depth}
    )


def memory_depth(cfg: TileConfig, lanes, per_beat, rows, out_rows, tiles) -> int:
    """Words the bench's memories need for one configuration, rounded up to a power of two
    (at least 1024) so that nearby run sizes share a build."""
    words = max(rows * tiles * cfg.n // per_beat, rows * (out_rows // lanes) * tiles)
    return max(1024, 1 << (words - 1).bit_length())


def run_tile(sim, cases, *, lanes=8, per_beat=16, rows=4, out_rows=16, tiles=3, seed=1,
             stall=0.2, waves=False, inject=False) -> dict:  # fmt: skip
    """Build and run the tile bench for ``cases`` (TileConfig kwargs sharing HDL parameters).

    Returns the bench's summary; raises ``AssertionError`` (with the mismatch report) when any
    output differs.
    """
    cfgs = [TileConfig(**c) for c in cases]
    if out_rows % lanes or cfgs[0].n % per_beat:
        raise ValueError(
            f"out_rows ({out_rows}) must be a multiple of lanes ({lanes}) and n ({cfgs[0].n}) "
            f"of per_beat ({per_beat})"
        )
    depth = max(memory_depth(c, lanes, per_beat, rows, out_rows, tiles) for c in cfgs)
    params = {tuple(sorted(tile_parameters(c, lanes, per_beat, depth).items())) for c in cfgs}
    if len(params) != 1:
        raise ValueError("the cases of one run must share their HDL parameters")
    with tempfile.TemporaryDirectory() as tmp:
        summary_path = Path(tmp) / "summary.json"
        env = {
            "ABFP_TILE_CASES": json.dumps(cases), "ABFP_LANES": str(lanes),
            "ABFP_P": str(per_beat), "ABFP_ROWS": str(rows), "ABFP_OUT_ROWS": str(out_rows),
            "ABFP_TILES": str(tiles), "ABFP_SEED": str(seed), "ABFP_STALL": str(stall),
            "ABFP_INJECT_MISMATCH": "1" if inject else "", "ABFP_SUMMARY": str(summary_path),
            "ABFP_WORK_DIR": tmp,
        }  # fmt: skip
        failure = None
        try:
            run_cocotb(
                sim=sim, toplevel="abfp_tile_top", sources=SOURCES, test_module="tb_tile",
                parameters=tile_parameters(cfgs[0], lanes, per_beat, depth), extra_env=env,
                waves=waves, verilator_args=VERILATOR_ARGS,
            )  # fmt: skip
        except AssertionError as exc:
            failure = exc
        if not summary_path.exists():
            raise AssertionError(f"the tile bench wrote no summary ({failure})")
        summary = json.loads(summary_path.read_text())
    if failure is not None or summary["mismatches"]:
        raise AssertionError(f"tile cosimulation failed on {sim}:\n{summary['report']}")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sim", choices=SIMULATORS, default="icarus")
    parser.add_argument(
        "--waves", action="store_true", help="write a waveform into sim_build/ (path printed)"
    )
    parser.add_argument("--rows", type=int, default=32, help="batch rows per configuration")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    cases = [{"gain": 8.0, "noise": "uniform"}, {"gain": 1.0, "noise": "gaussian"},
             {"gain": 1.86, "noise": "none"}]  # fmt: skip
    try:
        summary = run_tile(args.sim, cases, rows=args.rows, seed=args.seed, waves=args.waves)
        status = 0
    except AssertionError as exc:
        print(exc)
        summary, status = None, 1
    if summary is not None:
        print(
            f"\nsim summary: {summary['outputs_checked']} outputs checked in "
            f"{summary['configurations']} configurations, {summary['mismatches']} mismatches, "
            f"simulator {summary['simulator']}, {summary['outputs_per_second']} outputs/s "
            f"({summary['seconds']} s)"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
