"""Command line: ``python -m simulator.sweep run ...``, ``python -m simulator.sweep plot RESULTS``
and ``python -m simulator.sweep axes`` (docs/networks.md, docs/scale-out.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.nn.calibrate import CRITERIA
from simulator.nn.cli import Parser, positive_int
from simulator.nn.cli import known_errors as nn_known_errors
from simulator.nn.policy import LayerPolicy, PolicyError
from simulator.sweep.grid import AXES, GridError
from simulator.sweep.results import Results
from simulator.sweep.spec import SweepSpec, load_file

_RUN_KEYS = ("models", "seeds", "first_seed", "calibrate", "criterion", "limit", "batch_size")


def _values(name: str, tokens: list[str]) -> list[str]:
    """An axis's values: the tokens, each split on commas unless a value holds commas itself."""
    if name == "bits":
        return [t for t in tokens if t.strip()]
    return [v for t in tokens for v in t.split(",") if v.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m simulator.sweep",
                     description="Design-space sweeps of real networks on the ABFP tile.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    run = sub.add_parser("run", help="run a sweep, appending rows to --out as cells finish",
                         description="Run every cell (model x grid point x calibration x seed); "
                         "one row per cell in OUT/results.jsonl and OUT/results.csv.")
    run.add_argument("--file", metavar="SWEEP", help="sweep file (.toml, .yaml); flags override it")
    run.add_argument("--model", dest="models", nargs="+", metavar="NAME",
                     help="shipped models or module:function")
    grid = run.add_argument_group("grid axes (each takes values separated by spaces or commas)")
    for ax in AXES.values():
        grid.add_argument(ax.flag, dest=f"axis_{ax.name}", nargs="+", metavar="V",
                          help=f"TileConfig {ax.name}: {ax.help}")
    run.add_argument("--calibrate", nargs="+", metavar="on|off",
                     help="calibration states per grid point (default off)")
    run.add_argument("--criterion", choices=CRITERIA, help="calibration criterion (default output)")
    run.add_argument("--seeds", type=positive_int, metavar="S", help="noise seeds (default 1)")
    run.add_argument("--first-seed", type=int, metavar="FIRST", help="first seed (default 0)")
    run.add_argument("--limit", type=positive_int, metavar="SAMPLES",
                     help="evaluate the first SAMPLES samples only")
    run.add_argument("--batch-size", type=positive_int, metavar="B",
                     help="samples per forward pass (results do not depend on it)")
    run.add_argument("--policy", metavar="FILE", help="base layer policy (.toml or .json)")
    run.add_argument("--out", required=True, metavar="DIR", help="results directory")
    run.add_argument("--resume", action="store_true",
                     help="continue the sweep in --out, skipping the cells it holds")
    run.add_argument("--max-cells", type=positive_int, metavar="N",
                     help="refuse a sweep of more than N cells")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="none (serial), local (default: a LocalCluster sized to the machine) "
                          "or tcp://host:port; default $DASK_SCHEDULER_ADDRESS if set")
    run.add_argument("--workers", type=positive_int, metavar="W",
                     help="workers of the local cluster (default: one per CPU)")
    run.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                     help="seconds to wait for a scheduler (default 10)")
    run.add_argument("--quiet", action="store_true", help="no progress bar, one summary line")
    plot = sub.add_parser("plot", help="heat maps, curves and per-layer bars from a results file",
                          description="Write PNG and SVG figures from a sweep's results.")
    plot.add_argument("results", help="results.jsonl or its directory")
    plot.add_argument("--out", metavar="DIR", help="figure directory (default RESULTS_DIR/plots)")
    plot.add_argument("--metric", help="metric to plot (default: each model's primary metric)")
    sub.add_parser("axes", help="list the sweepable axes", description="List the sweep axes.")
    return parser


def spec_from(args) -> SweepSpec:
    """The sweep of a sweep file (if any) with the flags given applied over it."""
    data = load_file(args.file) if args.file else {}
    data.setdefault("grid", {})
    for name in AXES:
        tokens = getattr(args, f"axis_{name}")
        if tokens is not None:
            data["grid"] = {k: v for k, v in data["grid"].items()
                            if k.replace("-", "_") != name}  # fmt: skip
            data["grid"][name] = _values(name, tokens)
    for key in _RUN_KEYS:
        value = getattr(args, key)
        if value is not None:
            data[key] = _values("calibrate", value) if key == "calibrate" else value
    if args.policy:
        try:
            data["policy"] = LayerPolicy.load(args.policy).to_dict()
        except PolicyError as exc:
            raise GridError(str(exc)) from None
    if "models" not in data:
        raise GridError("no model: give --model NAME... or models in the sweep file")
    return SweepSpec(**data)


def _progress(total: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="cell", disable=quiet or None, dynamic_ncols=True)


def _run(args) -> int:
    import simulator
    from simulator.sweep import engine

    spec = spec_from(args)
    cells = spec.cells()
    if args.max_cells is not None and len(cells) > args.max_cells:
        raise GridError(f"the sweep has {len(cells)} cells ({spec.shape()}), more than "
                        f"--max-cells {args.max_cells}")  # fmt: skip
    address = engine.scheduler_address(args.scheduler)
    header = {"digest": spec.digest, "spec": spec.to_dict(), "version": simulator.__version__}
    Results.check(args.out, spec.digest, args.resume)  # before a cluster starts
    start = time.perf_counter()
    # Models load (and a bad one fails) before anything is written or a cluster starts.
    prepared = {name: engine.prepare(name, spec) for name in spec.models}
    seconds = time.perf_counter() - start
    client = None if address == "none" else engine.connect(address, args.workers,
                                                           args.connect_timeout)  # fmt: skip
    start = time.perf_counter()
    try:
        with Results(args.out, header, list(spec.grid), args.resume) as results:
            done = results.done
            todo = [c for c in cells if c.key not in done]
            bar = _progress(len(todo), args.quiet)

            def on_row(row):
                results.append(row)
                bar.update(1)

            try:
                if client is None:
                    engine.run_serial(prepared, todo, spec, on_row)
                else:
                    engine.run_dask(client, prepared, todo, spec, on_row)
            finally:
                bar.close()
    finally:
        if client is not None:
            engine.disconnect(client)
    seconds += time.perf_counter() - start  # the models' preparation and the cells
    where = "serially" if client is None else f"on {address}"
    print(f"{len(todo)} cell(s) run {where} in {seconds:.1f} s, {len(cells) - len(todo)} "
          f"already in {results.jsonl}; {len(cells)} rows in {results.jsonl} and {results.csv}")
    return 0


def _plot(args) -> int:
    from simulator.sweep import plots

    out = Path(args.out) if args.out else Path(args.results).resolve()
    if not args.out:
        out = (out if out.is_dir() else out.parent) / "plots"
    for figure in plots.plot_results(args.results, out, metric=args.metric):
        print(f"wrote {figure.path} (+ .svg){figure.note}")
    return 0


def _axes(args) -> int:
    for ax in AXES.values():
        print(f"{ax.flag:18s} {ax.help}")
    return 0


_COMMANDS = {"run": _run, "plot": _plot, "axes": _axes}


def _known_errors() -> tuple:
    """The network CLI's input errors (bad values, model files) and an unreachable scheduler."""
    from simulator.sweep.engine import SchedulerError

    return (*nn_known_errors(), SchedulerError)


def main(argv=None) -> int:
    """Entry point of ``python -m simulator.sweep`` (console script ``abfp-sweep``).

    Exit status 0 on success, 2 on bad input (one line on stderr; nothing in the results is
    lost), 130 after Ctrl-C (the rows already written stay; ``--resume`` continues).
    """
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except _known_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the finished cells are in the results (continue with --resume)",
              file=sys.stderr)  # fmt: skip
        return 130


if __name__ == "__main__":
    sys.exit(main())
