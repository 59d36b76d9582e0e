"""The measured accuracy table of the shipped models (docs/networks.md, "Measured accuracy").

For each model: its primary metric on the tile at n in {8, 32, 128} x G in {1, 2, 4, 8, 16}
x bits 6/6/8 and 8/8/8 (bx/bw/by), uniform noise of 1 ADC LSB, mean over seeds, beside its
float32 value; and a calibrated column (per-layer gains chosen by ``simulator.nn.calibrate``
from the model's calibration batch, starting from G = 8). The float32 reference is computed
once per model and every tile run is compared with it.

The cost is set per model in ``RUNS`` (samples, seeds); ``--quick`` runs one seed of a few
samples. Results go to a JSON file (all metrics of every cell) and the tables to stdout as
Markdown.

Usage: ``nice python bench/networks_table.py [--models resnet8,...] [--json OUT] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator import TileConfig  # noqa: E402
from simulator.nn import Float32Ops, LayerPolicy, TileOps, calibrate  # noqa: E402
from simulator.nn import models as shipped  # noqa: E402
from simulator.nn.evaluate import run_batches  # noqa: E402

WIDTHS = (8, 32, 128)
GAINS = (1.0, 2.0, 4.0, 8.0, 16.0)
BITS = ((6, 6, 8), (8, 8, 8))
CALIBRATION_START_GAIN = 8.0
# model -> (samples evaluated (None: all), seeds, widths calibrated): what fits in about
# 25 CPU minutes on two cores. minilm's first 10 samples are Lee documents (45 rated pairs).
RUNS = {
    "resnet8": (None, 10, WIDTHS),
    "fmnist-cnn": (1000, 3, WIDTHS),
    "minilm": (10, 1, (128,)),
}
# a second, finer figure of each model against its own float32 outputs
SECONDARY = {"resnet8": "sqnr_db", "fmnist-cnn": "sqnr_db", "minilm": "cosine"}
PERCENT = {"top1", "agreement", "polarity", "spearman", "cosine"}  # shown x100


def config(n: int, bits: tuple[int, int, int], gain: float) -> TileConfig:
    bx, bw, by = bits
    return TileConfig(n=n, bx=bx, bw=bw, by=by, gain=gain, noise="uniform", noise_amplitude=1.0)


def measure(name: str, samples, seeds: int, calibrated_widths, log) -> dict:
    """Every cell of one model's table: {"float32": metrics, "cells": [...]}."""
    model = shipped.get(name).load()
    data = model.eval_data()
    count = len(data) if samples is None else min(samples, len(data))
    labels = data.labels[:count]
    batch = data.batch_size

    def tile_metrics(policy) -> tuple[list[dict], float]:
        start = time.perf_counter()
        runs = []
        for seed in range(seeds):
            outputs = run_batches(model, TileOps(policy, seed=seed), data.inputs, count, batch)
            runs.append(model.metrics(outputs, labels, reference))
        return runs, (time.perf_counter() - start) / seeds

    start = time.perf_counter()
    reference = run_batches(model, Float32Ops(), data.inputs, count, batch)
    float32_seconds = time.perf_counter() - start
    result = {
        "model": name,
        "metric": shipped.get(name).metric,
        "samples": count,
        "seeds": seeds,
        "float32": model.metrics(reference, labels, reference),
        "float32_seconds": float32_seconds,
        "cells": [],
    }
    for bits in BITS:
        for n in WIDTHS:
            for gain in GAINS:
                policy = LayerPolicy(config(n, bits, gain))
                runs, seconds = tile_metrics(policy)
                cell = {"bits": bits, "n": n, "gain": gain, "runs": runs, "seconds": seconds}
                result["cells"].append(cell)
                log(f"{name} {bits} n={n} G={gain:g}: {mean(runs, result['metric']):.4f}")
            if n in calibrated_widths:
                base = LayerPolicy(config(n, bits, CALIBRATION_START_GAIN))
                cal = calibrate(model.forward, model.calibration_batch(), base, seed=0,
                                criterion="layer")
                runs, seconds = tile_metrics(cal.policy)
                result["cells"].append(
                    {"bits": bits, "n": n, "gain": "calibrated", "gains": cal.gains,
                     "calibration_seconds": cal.seconds, "runs": runs, "seconds": seconds}
                )  # fmt: skip
                log(f"{name} {bits} n={n} calibrated ({cal.seconds:.1f} s): "
                    f"{mean(runs, result['metric']):.4f}")  # fmt: skip
    return result


def mean(runs: list[dict], metric: str) -> float:
    return float(np.mean([run[metric] for run in runs]))


def markdown(result: dict, metric: str) -> str:
    """Table II's shape: one row per n, the 6/6/8 and 8/8/8 gain sweeps, calibrated columns;
    fractions x100; for the primary metric an asterisk at or above 99% of float32."""
    reference = result["float32"][metric]
    scale = 100 if metric in PERCENT else 1
    star = metric == result["metric"]
    title = f"({scale * reference:.2f})" if star else "against float32"
    cells = {(tuple(c["bits"]), c["n"], c["gain"]): c for c in result["cells"]}
    gains_head = " | ".join(f"G={g:g}" if i == 0 else f"{g:g}" for i, g in enumerate(GAINS))
    head = " | ".join(f"{'/'.join(map(str, b))} {gains_head}" for b in BITS)
    lines = [
        f"| {result['model']} {metric} {title} | n | {head} | "
        + " | ".join(f"{'/'.join(map(str, b))} calibrated" for b in BITS)
        + " |",
        "|---" * (2 + len(BITS) * (len(GAINS) + 1)) + "|",
    ]

    def value(bits, n, gain):
        cell = cells.get((bits, n, gain))
        if cell is None:
            return "-"
        v = mean(cell["runs"], metric)
        return f"{scale * v:.2f}" + ("*" if star and v >= 0.99 * reference else "")

    for n in WIDTHS:
        sweep = [value(b, n, g) for b in BITS for g in GAINS]
        calibrated = [value(b, n, "calibrated") for b in BITS]
        lines.append(f"| | {n} | " + " | ".join(sweep + calibrated) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(RUNS))
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "networks_table.json")
    parser.add_argument("--quick", action="store_true", help="one seed, 4 samples (a smoke run)")
    parser.add_argument(
        "--render", action="store_true", help="print the tables of the JSON file, run nothing"
    )
    args = parser.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    for name in names:
        shipped.get(name)  # unknown names fail before any run

    def log(message):
        print(message, file=sys.stderr, flush=True)

    results = {}
    if args.json.exists():
        results = json.loads(args.json.read_text())
    for name in [] if args.render else names:
        samples, seeds, calibrated = RUNS[name]
        if args.quick:
            samples, seeds, calibrated = 4, 1, ()
        results[name] = measure(name, samples, seeds, calibrated, log)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(args.json)
    for name in results:
        r = results[name]
        tables = "\n\n".join(markdown(r, m) for m in (r["metric"], SECONDARY[name]))
        wall = sum(c["seconds"] * r["seeds"] + c.get("calibration_seconds", 0) for c in r["cells"])
        print(f"\n{tables}\n\n{r['samples']} samples, {r['seeds']} seed(s); float32 forward "
              f"{r['float32_seconds']:.1f} s; tile runs and calibrations {wall / 60:.1f} min "
              "wall time")  # fmt: skip


if __name__ == "__main__":
    main()
