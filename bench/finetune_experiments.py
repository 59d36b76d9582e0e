"""The finetuning experiments of docs/finetuning.md: DNF and QAT on ``fmnist-cnn`` and ``minilm``.

For every configuration (tile width, bits, gain) where the sweep of docs/networks.md shows the
model losing accuracy on the tile, and for both methods, :func:`simulator.nn.finetune.finetune`
trains the float32 model and evaluates it on the bit-exact tile before finetuning and after
every epoch (noise seeds ``0 .. --eval-seeds - 1``, mean reported):

- ``fmnist-cnn``: the first ``--train-limit`` training images, cross-entropy on the labels;
  top-1 on the first ``--eval-limit`` test images;
- ``minilm``: distilled against its own float32 embeddings (loss ``1 - cosine``) on the first
  ``--train-limit`` documents of gensim's Lee background corpus; Spearman against the human
  ratings and embedding cosine against float32 on the 50 Lee documents.

Each run's figures go to ``OUT/<model>/<config>_<method>.json`` as soon as it ends (a run
already there is not repeated, so the methods can run in two processes: ``--methods dnf`` and
``--methods qat``); then the tables (Markdown, printed) and one plot per configuration
(``PLOTS/finetune_<model>_<config>.png``: the tile's metrics against epoch for both methods)
are made from all the JSON files of the model.

Usage: ``nice python bench/finetune_experiments.py --model fmnist-cnn|minilm [--epochs 3]
[--train-limit N] [--eval-limit N] [--eval-seeds S] [--out build/finetune] [--plots docs/img]``
(needs the ``torch`` and ``sweep`` extras, and ``dataset-fashion-mnist`` or the ``minilm``
packages).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.config import TileConfig  # noqa: E402
from simulator.nn.evaluate import write_json  # noqa: E402
from simulator.nn.finetune import METHODS, finetune  # noqa: E402
from simulator.nn.policy import LayerPolicy  # noqa: E402


@dataclass(frozen=True)
class Experiment:
    """One model's experiment: its configurations, the metrics it reports, what its training
    and evaluation sets are called, and the finetuning defaults."""

    configs: dict
    metrics: tuple
    percent: bool  # metrics in [0, 1], printed in percent
    train_set: str
    eval_set: str
    defaults: dict


EXPERIMENTS = {
    "fmnist-cnn": Experiment(
        configs={
            "n128_668_g1": dict(n=128, bx=6, bw=6, by=8, gain=1.0),
            "n128_668_g2": dict(n=128, bx=6, bw=6, by=8, gain=2.0),
            "n8_668_g8": dict(n=8, bx=6, bw=6, by=8, gain=8.0),
        },
        metrics=("top1",), percent=True, train_set="training images", eval_set="test images",
        defaults=dict(train_limit=60000, eval_limit=10000, eval_seeds=2, lr=3e-4,
                      batch_size=64, histogram_batch=256),
    ),
    "minilm": Experiment(
        configs={"n128_668_g2": dict(n=128, bx=6, bw=6, by=8, gain=2.0)},
        metrics=("cosine", "spearman"), percent=False, train_set="background documents",
        eval_set="Lee documents",
        defaults=dict(train_limit=128, eval_limit=50, eval_seeds=3, lr=1e-4, batch_size=8,
                      histogram_batch=16),
    ),
}  # fmt: skip


def _label(fields: dict) -> str:
    return f"n={fields['n']}, {fields['bx']}/{fields['bw']}/{fields['by']}, G={fields['gain']:g}"


def run(args, experiment: Experiment, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in args.configs or list(experiment.configs):
        for method in args.methods:
            path = out / f"{name}_{method}.json"
            if path.exists():
                continue
            print(f"== {args.model} {name} {method}", flush=True)

            def report(f):
                metrics = ", ".join(f"{k} {f['tile'][k]:.4f}" for k in experiment.metrics)
                print(f"  epoch {f['epoch']}: {metrics}, train {f.get('train_seconds', 0):.1f} s"
                      f", eval {f['eval_seconds']:.1f} s", flush=True)  # fmt: skip

            result = finetune(
                args.model, method, LayerPolicy(TileConfig(**experiment.configs[name])),
                epochs=args.epochs, seed=args.seed, lr=args.lr, batch_size=args.batch_size,
                train_limit=args.train_limit, histogram_batch=args.histogram_batch,
                eval_limit=args.eval_limit, eval_seeds=range(args.eval_seeds), progress=False,
                on_epoch=report,
            )  # fmt: skip
            write_json(path, {"config": name, **result.to_dict()})


def _runs(out: Path) -> dict:
    runs = {}
    for path in sorted(out.glob("*.json")):
        data = json.loads(path.read_text())
        runs[(data["config"], data["method"])] = data
    return runs


def _plateau(epochs: list, metric: str, tolerance: float) -> int:
    """First epoch whose tile metric is within ``tolerance`` of the run's best."""
    best = max(e["tile"][metric] for e in epochs)
    return next(e["epoch"] for e in epochs if e["tile"][metric] >= best - tolerance)


def tables(runs: dict, experiment: Experiment) -> str:
    scale, digits = (100, 2) if experiment.percent else (1, 4)
    tolerance = 0.005 if experiment.percent else 0.002  # half a point; 0.002 of a cosine

    def fmt(value):
        return f"{scale * value:.{digits}f}"

    lines = ["| configuration | metric | float32 | none | QAT (last / best) | DNF (last / best) "
             "| QAT recovered | DNF recovered | QAT s/epoch | DNF s/epoch | QAT plateau (s) | "
             "DNF plateau (s) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, fields in experiment.configs.items():
        got = {m: runs.get((name, m)) for m in ("qat", "dnf")}
        if not any(got.values()):
            continue
        first = next(r for r in got.values() if r)["epochs"][0]
        for metric in experiment.metrics:
            f32, none = first["float32"][metric], first["tile"][metric]
            row = [_label(fields), metric, fmt(f32), fmt(none)]
            for r in got.values():
                values = [e["tile"][metric] for e in r["epochs"][1:]] if r else []
                row.append(f"{fmt(values[-1])} / {fmt(max(values))}" if values else "-")
            for r in got.values():
                if r and len(r["epochs"]) > 1 and f32 != none:
                    recovered = (r["epochs"][-1]["tile"][metric] - none) / (f32 - none)
                    row.append(f"{100 * recovered:.0f}%")
                else:
                    row.append("-")
            for r in got.values():
                seconds = [e["train_seconds"] for e in r["epochs"][1:]] if r else []
                row.append(f"{sum(seconds) / len(seconds):.0f}" if seconds else "-")
            for r in got.values():
                if r:
                    epoch = _plateau(r["epochs"], metric, tolerance)
                    seconds = sum(e.get("train_seconds", 0) for e in r["epochs"][: epoch + 1])
                    row.append(f"{epoch} ({seconds:.0f})")
                else:
                    row.append("-")
            lines.append("| " + " | ".join(row) + " |")
    per_seed = experiment.metrics[0]
    lines += ["", "| configuration | method | epoch | "
              + " | ".join(f"tile {m} (mean)" for m in experiment.metrics)
              + f" | {per_seed} per seed | train loss | train s | eval s |",
              "|---|---|---|" + "---|" * len(experiment.metrics) + "---|---|---|---|"]
    for (name, method), r in sorted(runs.items()):
        if name not in experiment.configs:
            continue
        for e in r["epochs"]:
            seeds = " / ".join(fmt(t[per_seed]) for t in e["tile_runs"])
            loss = f"{e['train_loss']:.4f}" if "train_loss" in e else "-"
            lines.append(f"| {_label(experiment.configs[name])} | {method} | {e['epoch']} | "
                         + " | ".join(fmt(e["tile"][m]) for m in experiment.metrics)
                         + f" | {seeds} | {loss} | {e.get('train_seconds', 0):.0f} | "
                         f"{e['eval_seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def plots(runs: dict, experiment: Experiment, model: str, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    scale = 100 if experiment.percent else 1
    written = []
    for name, fields in experiment.configs.items():
        got = {m: runs[(name, m)] for m in METHODS if (name, m) in runs}
        if not got:
            continue
        metrics = experiment.metrics
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.0), dpi=110,
                                 squeeze=False)  # fmt: skip
        first = next(iter(got.values()))
        for ax, metric in zip(axes[0], metrics, strict=True):
            ax.axhline(scale * first["epochs"][0]["float32"][metric], color="grey",
                       linestyle="--", label="float32, before finetuning")  # fmt: skip
            for method, r in got.items():
                epochs = [e["epoch"] for e in r["epochs"]]
                ax.plot(epochs, [scale * e["tile"][metric] for e in r["epochs"]], marker="o",
                        label=f"{method.upper()} (on the tile)")  # fmt: skip
            ax.set_xlabel("epoch (0: before finetuning)")
            unit = " (%)" if experiment.percent else ""
            ax.set_ylabel(f"{metric} on the bit-exact tile{unit}, mean of seeds")
            ax.set_xticks(epochs)
            ax.grid(alpha=0.3)
        axes[0][0].legend(loc="best", fontsize="small")
        fig.suptitle(f"{model}, {_label(fields)}\n{first['epochs'][0]['samples']} "
                     f"{experiment.eval_set}, trained on {first['settings']['train_samples']} "
                     f"{experiment.train_set}",
                     fontsize="medium")  # fmt: skip
        fig.tight_layout()
        path = folder / f"finetune_{model}_{name}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=EXPERIMENTS, required=True)
    parser.add_argument("--configs", nargs="+", help="default: all of the model's")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--epochs", type=int, default=3)
    for key in ("train_limit", "eval_limit", "eval_seeds", "batch_size", "histogram_batch"):
        parser.add_argument("--" + key.replace("_", "-"), type=int,
                            help="default: the model's (see EXPERIMENTS)")  # fmt: skip
    parser.add_argument("--lr", type=float, help="default: the model's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "finetune")
    parser.add_argument("--plots", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--report-only", action="store_true", help="tables and plots only")
    args = parser.parse_args(argv)
    experiment = EXPERIMENTS[args.model]
    unknown = sorted(set(args.configs or ()) - set(experiment.configs))
    if unknown:
        parser.error(f"unknown configuration(s) {unknown} of {args.model}; "
                     f"known: {sorted(experiment.configs)}")  # fmt: skip
    for key, value in experiment.defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    out = args.out / args.model
    if not args.report_only:
        run(args, experiment, out)
    runs = _runs(out)
    print(tables(runs, experiment))
    for path in plots(runs, experiment, args.model, args.plots):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
