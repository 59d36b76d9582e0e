"""Command line: ``python -m simulator.search --model NAME --budget B [options]``
(docs/cost.md, "Per-layer search")."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulator.config import TileConfig
from simulator.cost import DEFAULT, CostError, CostModel
from simulator.nn.calibrate import CRITERIA
from simulator.nn.cli import Parser, known_errors, noise, positive_int, progress_bar
from simulator.nn.evaluate import load_model, write_json
from simulator.search import OBJECTIVES, search
from simulator.sweep.engine import SchedulerError, connect, disconnect, scheduler_address


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m simulator.search",
                     description="Per-layer (bx, bw, by, G) search for the least energy or "
                                 "latency within an accuracy budget, measured on the bit-exact "
                                 "tile and priced by simulator.cost.")  # fmt: skip
    parser.add_argument("--model", required=True,
                        help="a shipped model (python -m simulator.nn models) or module:function")
    parser.add_argument("--metric", help="metric to hold (default: the shipped model's own)")
    parser.add_argument("--budget", type=float, default=0.01,
                        help="largest drop of the metric below float32, in its units "
                             "(default 0.01: one point of top-1)")  # fmt: skip
    parser.add_argument("--z", type=float, default=2.0,
                        help="a move is accepted when its drop plus Z standard errors of the "
                             "drop (paired with float32, per sample) stays within the budget "
                             "(default 2; 0: the measured drop alone)")  # fmt: skip
    parser.add_argument("--objective", choices=OBJECTIVES, default="energy")
    parser.add_argument("--n", type=positive_int, default=128, help="tile width (default 128)")
    parser.add_argument("--noise", type=noise, default={"noise": "uniform"},
                        help="analog noise, e.g. uniform:1 (default), gaussian:0.5, none")
    parser.add_argument("--limit", type=positive_int,
                        help="measure on the first LIMIT evaluation samples")
    parser.add_argument("--validate", type=positive_int,
                        help="measure the result again on VALIDATE held-out samples after "
                             "the first LIMIT")  # fmt: skip
    parser.add_argument("--seeds", type=positive_int, default=1,
                        help="noise seeds 0..S-1; the metric is their mean")
    parser.add_argument("--batch", type=positive_int, default=1,
                        help="samples per forward pass the cost model prices (default 1)")
    parser.add_argument("--min-bits", type=int, default=2, help="fewest bits of a knob")
    parser.add_argument("--criterion", choices=CRITERIA, default="output",
                        help="gain calibration criterion")
    parser.add_argument("--scheduler", default="none",
                        help="none (serial, default), local (a LocalCluster of --workers "
                             "processes) or a Dask scheduler address tcp://HOST:PORT")
    parser.add_argument("--workers", type=positive_int,
                        help="workers of --scheduler local (default: the CPU count)")
    parser.add_argument("--constants", type=Path,
                        help="JSON file of every cost constant (default: docs/cost.md's)")
    parser.add_argument("--json", type=Path, help="write the result here (atomically)")
    parser.add_argument("--plot", type=Path,
                        help="write the Pareto plot as PLOT.png and PLOT.svg")
    return parser


def _constants(path: Path | None) -> CostModel:
    if path is None:
        return DEFAULT
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CostError(f"{path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise CostError(f"{path}: not valid JSON: {exc}") from None
    try:
        return CostModel.from_dict(data)
    except CostError as exc:
        raise CostError(f"{path}: {exc}") from None


def _check_out(path: Path | None, what: str) -> None:
    if path is not None and not path.parent.is_dir():
        raise ValueError(f"{what}: directory {path.parent} does not exist")


def _metric_of(spec: str, metric: str | None) -> str:
    if metric:
        return metric
    from simulator.nn import models

    if spec in models.MODELS:
        return models.MODELS[spec].metric
    raise ValueError(f"model {spec!r} is not a shipped model: give --metric")


def _report(result) -> str:
    saved = result.savings()
    lines = [f"{result.model}: {result.metric_name} float32 {result.float32:.4f}, target >= "
             f"{result.target:.4f} by {result.z:g} standard errors, {result.samples} samples, "
             f"{result.evaluations} tile evaluations in {result.seconds:.0f} s"]  # fmt: skip
    for p in (result.uniform8, result.uniform6, result.best):
        lines.append(f"  {p.label:<14} {result.metric_name} {p.metric:.4f} (se {p.stderr:.4f})"
                     f"  energy "
                     f"{p.energy_j * 1e6:.4g} uJ/sample  latency {p.latency_s * 1e6:.4g} us")
    for name, s in result.best.layers.items():
        lines.append(f"    {name:<20} bx {s['bx']:>2}  bw {s['bw']:>2}  by {s['by']:>2}  "
                     f"G {s['gain']:g}")  # fmt: skip
    if result.validation is not None:
        v = result.validation
        figures = ", ".join(f"{label} {v[label]:.4f}"
                            for label in ("uniform 8/8/8", "uniform 6/6/8", "searched"))
        lines.append(f"  held out ({v['samples']} samples): float32 {v['float32']:.4f}, {figures}")
        for label, d in v.get("searched minus", {}).items():
            lines.append(f"    searched - {label}: {d['difference']:+.4f} (se {d['stderr']:.4f}),"
                         f" {'within' if d['within_budget'] else 'outside'} the budget")
    lines.append(f"  savings against uniform 8/8/8: energy {saved['energy']:.2f}x, latency "
                 f"{saved['latency']:.2f}x")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        _check_out(args.json, "--json")
        _check_out(args.plot, "--plot")
        if not 2 <= args.min_bits <= 8:
            raise ValueError(f"--min-bits must be in [2, 8], got {args.min_bits}")
        cost_model = _constants(args.constants)
        model = load_model(args.model)
        metric = _metric_of(args.model, args.metric)
        config = TileConfig(n=args.n, **args.noise)
        address = scheduler_address(args.scheduler)
        client = None if address == "none" else connect(address, args.workers)
        bar = progress_bar("evaluation", desc="search")
        try:
            result = search(model, metric=metric, budget=args.budget, objective=args.objective,
                            config=config, cost_model=cost_model, limit=args.limit,
                            seeds=range(args.seeds), batch=args.batch, min_bits=args.min_bits,
                            criterion=args.criterion, z=args.z, validate=args.validate,
                            client=client, progress=bar, model_name=args.model)  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
            if client is not None:
                disconnect(client)
    except (*known_errors(), SchedulerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_report(result))
    if args.json is not None:
        write_json(args.json, result.to_dict())
        print(f"wrote {args.json}")
    if args.plot is not None:
        from simulator.search.plot import plot

        for path in plot(result, args.plot):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
