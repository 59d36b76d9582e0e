"""The finetuning experiments of docs/finetuning.md: DNF and QAT on ``fmnist-cnn``.

For every configuration (tile width, bits, gain) and method, :func:`simulator.nn.finetune.finetune`
trains on the first ``--train-limit`` training images and evaluates on the bit-exact tile after
every epoch (the first ``--eval-limit`` test images, noise seeds ``0 .. --eval-seeds - 1``). Each
run's figures go to ``OUT/<config>_<method>.json`` as soon as it ends (a run already there is
not repeated); then the tables (Markdown, printed) and one plot per configuration
(``docs/img/finetune_<config>.png``: tile top-1 against epoch for both methods) are made from
all the JSON files.

Usage: ``nice python bench/finetune_experiments.py [--epochs 3] [--train-limit 4000]
[--eval-limit 1000] [--eval-seeds 2] [--out build/finetune] [--plots docs/img]``
(needs the ``torch`` and ``sweep`` extras and ``dataset-fashion-mnist``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.config import TileConfig  # noqa: E402
from simulator.nn.evaluate import write_json  # noqa: E402
from simulator.nn.finetune import METHODS, finetune  # noqa: E402
from simulator.nn.policy import LayerPolicy  # noqa: E402

# Where the sweep of docs/networks.md shows fmnist-cnn losing accuracy on the tile.
CONFIGS = {
    "n128_668_g1": dict(n=128, bx=6, bw=6, by=8, gain=1.0),
    "n128_668_g2": dict(n=128, bx=6, bw=6, by=8, gain=2.0),
    "n8_668_g8": dict(n=8, bx=6, bw=6, by=8, gain=8.0),
}


def _label(fields: dict) -> str:
    return f"n={fields['n']}, {fields['bx']}/{fields['bw']}/{fields['by']}, G={fields['gain']:g}"


def run(args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.configs:
        for method in args.methods:
            path = args.out / f"{name}_{method}.json"
            if path.exists():
                continue
            print(f"== {name} {method}", flush=True)
            result = finetune(
                "fmnist-cnn", method, LayerPolicy(TileConfig(**CONFIGS[name])),
                epochs=args.epochs, seed=args.seed, lr=args.lr, train_limit=args.train_limit,
                eval_limit=args.eval_limit, eval_seeds=range(args.eval_seeds), progress=False,
                on_epoch=lambda f: print(f"  epoch {f['epoch']}: top1 {f['tile']['top1']:.4f} "
                                         f"train {f.get('train_seconds', 0):.1f} s", flush=True),
            )  # fmt: skip
            write_json(path, {"config": name, **result.to_dict()})


def _runs(out: Path) -> dict:
    runs = {}
    for path in sorted(out.glob("*.json")):
        data = json.loads(path.read_text())
        runs[(data["config"], data["method"])] = data
    return runs


def _plateau(epochs: list, float32: float) -> int:
    """First epoch whose tile top-1 is within 0.5 point of the run's best."""
    best = max(e["tile"]["top1"] for e in epochs)
    return next(e["epoch"] for e in epochs if e["tile"]["top1"] >= best - 0.005)


def tables(runs: dict) -> str:
    lines = ["| configuration | float32 | none | QAT | DNF | QAT s/epoch | DNF s/epoch | "
             "QAT plateau epoch | DNF plateau epoch |", "|---|---|---|---|---|---|---|---|---|"]
    for name, fields in CONFIGS.items():
        got = {m: runs.get((name, m)) for m in METHODS}
        if not any(got.values()):
            continue
        first = next(r for r in got.values() if r)
        f32 = first["epochs"][0]["float32"]["top1"]
        none = first["epochs"][0]["tile"]["top1"]
        row = [_label(fields), f"{100 * f32:.2f}", f"{100 * none:.2f}"]
        for key in ("qat", "dnf"):
            r = got[key]
            row.append(f"{100 * r['epochs'][-1]['tile']['top1']:.2f}" if r else "-")
        for key in ("qat", "dnf"):
            r = got[key]
            sec = [e["train_seconds"] for e in r["epochs"][1:]] if r else []
            row.append(f"{sum(sec) / len(sec):.0f}" if sec else "-")
        for key in ("qat", "dnf"):
            r = got[key]
            row.append(str(_plateau(r["epochs"], f32)) if r else "-")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| configuration | method | epoch | tile top-1 (mean) | per seed | agreement | "
              "train s | eval s |", "|---|---|---|---|---|---|---|---|"]
    for (name, method), r in sorted(runs.items()):
        for e in r["epochs"]:
            seeds = " / ".join(f"{100 * t['top1']:.2f}" for t in e["tile_runs"])
            lines.append(f"| {_label(CONFIGS[name])} | {method} | {e['epoch']} | "
                         f"{100 * e['tile']['top1']:.2f} | {seeds} | "
                         f"{100 * e['tile']['agreement']:.2f} | "
                         f"{e.get('train_seconds', 0):.0f} | {e['eval_seconds']:.0f} |")
    return "\n".join(lines)


def plots(runs: dict, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    for name, fields in CONFIGS.items():
        got = {m: runs[(name, m)] for m in METHODS if (name, m) in runs}
        if not got:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
        f32 = next(iter(got.values()))["epochs"][0]["float32"]["top1"]
        ax.axhline(100 * f32, color="grey", linestyle="--", label="float32")
        for method, r in got.items():
            epochs = [e["epoch"] for e in r["epochs"]]
            ax.plot(epochs, [100 * e["tile"]["top1"] for e in r["epochs"]], marker="o",
                    label=f"{method.upper()} (on the tile)")  # fmt: skip
        ax.set_xlabel("epoch (0: before finetuning)")
        ax.set_ylabel("top-1 on the bit-exact tile (%), mean of seeds")
        ax.set_xticks(epochs)
        first = next(iter(got.values()))
        ax.set_title(f"fmnist-cnn, {_label(fields)}; {first['epochs'][0]['samples']} test images")
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(folder / f"finetune_{name}.png")
        plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=4000)
    parser.add_argument("--eval-limit", type=int, default=1000)
    parser.add_argument("--eval-seeds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "finetune")
    parser.add_argument("--plots", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--report-only", action="store_true", help="tables and plots only")
    args = parser.parse_args(argv)
    if not args.report_only:
        run(args)
    runs = _runs(args.out)
    print(tables(runs))
    plots(runs, args.plots)


if __name__ == "__main__":
    main()
