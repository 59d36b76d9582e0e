"""Run the whole-tile cosimulation of ``abfp_tile`` and print its summary (``make sim``).

The tile controller with its input and output units runs in the HDL simulator, the golden
model plays the analog array; every output is checked bit for bit against ``abfp_linear`` and
every port handshake's cycle against ``simulator.timing`` (cocotb_tests/tb_abfp_tile.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import SIMULATORS, run_cocotb  # noqa: E402

from simulator import TileConfig, hdl  # noqa: E402

# The build's non-tile parameters that the cases of one run share.
DEFAULT_HDL = {"P": 4, "LANES": 4, "ADC_SHARE": 2, "TILE_BITS": 2, "GROUP_BITS": 2,
               "ROW_BITS": 8}  # fmt: skip


def run_abfp_tile(sim: str, cases: list[dict], hdl_extra: dict | None = None, *,
                  inject: str = "", build_cfg: dict | None = None,
                  waves: bool = False) -> dict:  # fmt: skip
    """Build ``abfp_tile`` once and run every case of ``cases`` on it.

    Parameters
    ----------
    sim : str
        ``"icarus"`` or ``"verilator"``.
    cases : list of dict
        Each: ``cfg`` (TileConfig keyword arguments; all cases share their HDL parameters),
        ``rows``, ``k``, ``n_out``, ``latency`` (the array's conversion latency), ``stall``
        (probability of an idle x cycle and of a low y_ready) and ``seed``.
    hdl_extra : dict, optional
        The build's non-tile parameters (default :data:`DEFAULT_HDL`).
    inject : str
        ``"value"`` or ``"cycle"``: corrupt one expectation of the first case (self-check).
    build_cfg : dict, optional
        TileConfig fields that the build alone takes over the cases' (a build of another
        configuration, which the bench must refuse).
    waves : bool
        Write a waveform into the build directory (its path is printed).

    Returns
    -------
    dict
        The bench's summary.

    Raises
    ------
    AssertionError
        With the bench's report, when any output or cycle differs.
    ValueError
        When the cases do not share their HDL parameters.
    """
    hdl_extra = dict(DEFAULT_HDL if hdl_extra is None else hdl_extra)
    params = {tuple(sorted(TileConfig(**c["cfg"]).hdl_parameters("tile", **hdl_extra).items()))
              for c in cases}  # fmt: skip
    if len(params) != 1:
        raise ValueError("the cases of one run must share their HDL parameters")
    build = TileConfig(**(cases[0]["cfg"] | (build_cfg or {}))).hdl_parameters("tile", **hdl_extra)
    with tempfile.TemporaryDirectory() as tmp:
        summary_path = Path(tmp) / "summary.json"
        env = {"ABFP_TILE_HDL": json.dumps(hdl_extra), "ABFP_TILE_CASES": json.dumps(cases),
               "ABFP_INJECT": inject, "ABFP_SUMMARY": str(summary_path)}  # fmt: skip
        failure = None
        try:
            run_cocotb(
                sim=sim, toplevel="abfp_tile", sources=hdl.unit("tile").sources(),
                test_module="tb_abfp_tile", parameters=build, extra_env=env,
                waves=waves,
            )  # fmt: skip
        except AssertionError as exc:
            failure = exc
        if not summary_path.exists():
            # the bench stopped before its summary (e.g. a build of another configuration)
            raise failure or AssertionError("the abfp_tile bench wrote no summary")
        summary = json.loads(summary_path.read_text())
    if failure is not None or summary["mismatches"]:
        raise AssertionError(f"abfp_tile cosimulation failed on {sim}:\n{summary['report']}")
    return summary


def sim_cases(seed: int, rows: int) -> list[dict]:
    """The ``make sim`` cases: three gain/noise settings, no stalls and random stalls."""
    settings = [{"gain": 8.0, "noise": "uniform"}, {"gain": 1.0, "noise": "gaussian"},
                {"gain": 1.86, "noise": "none"}]  # fmt: skip
    return [
        {"cfg": {"n": 8, **s}, "rows": rows, "k": 30, "n_out": 16, "latency": latency,
         "stall": stall, "seed": seed + index}
        for index, (s, latency, stall) in enumerate(
            (s, latency, stall) for s in settings for latency, stall in ((2, 0.0), (5, 0.3))
        )
    ]  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sim", choices=SIMULATORS, default="icarus")
    parser.add_argument(
        "--waves", action="store_true", help="write a waveform into sim_build/ (path printed)"
    )
    parser.add_argument("--rows", type=int, default=8, help="input rows per product")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        summary = run_abfp_tile(args.sim, sim_cases(args.seed, args.rows), waves=args.waves)
    except AssertionError as exc:
        print(exc)
        return 1
    print(
        f"\nabfp_tile summary: {summary['outputs_checked']} outputs and "
        f"{summary['handshakes_checked']} handshake cycles checked in {summary['cases']} "
        f"products, {summary['mismatches']} mismatches, simulator {summary['simulator']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
