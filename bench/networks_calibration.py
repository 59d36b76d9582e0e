"""Per-layer gain calibration against the best single global gain, on every shipped model.

For each model at one tile configuration (default n = 128, 8/8/8, uniform noise of 1 ADC LSB)
it evaluates every global power-of-two gain 1 to 64 and the gains ``simulator.nn.calibrate``
chooses (each criterion), over the same samples and seeds, and prints one table per model: the
model's metrics (mean over seeds) and the calibration's cost in seconds. JSON with every figure
goes to ``--json`` (atomically).

Usage: ``nice python bench/networks_calibration.py [--models M ...] [--seeds S] [--limit M=N ...]
[--json PATH]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator import TileConfig  # noqa: E402
from simulator.nn import LayerPolicy, calibrate  # noqa: E402
from simulator.nn import models as shipped  # noqa: E402
from simulator.nn.calibrate import CRITERIA, POWERS_OF_TWO  # noqa: E402
from simulator.nn.evaluate import evaluate, write_json  # noqa: E402

START_GAIN = 8.0


def measure(name: str, cfg: TileConfig, seeds: list[int], limit, log) -> dict:
    """Every global gain and every calibration of one model: {"rows": [...], ...}."""
    model = shipped.get(name).load()
    rows = []

    def run(label: str, policy, extra: dict) -> None:
        ev = evaluate(model, policy, seeds=seeds, limit=limit, progress=False, name=name)
        rows.append({"gain": label, **ev.tile_mean, **extra})
        rows[-1]["float32"] = ev.float32
        log(f"{name} {label}: {ev.tile_mean}")

    for gain in POWERS_OF_TWO:
        run(f"{gain:g}", LayerPolicy(TileConfig(**{**cfg.to_dict(), "gain": gain})), {})
    base = LayerPolicy(TileConfig(**{**cfg.to_dict(), "gain": START_GAIN}))
    for criterion in CRITERIA:
        cal = calibrate(model.forward, model.calibration_batch(), base, seed=0,
                        criterion=criterion)  # fmt: skip
        run(f"calibrated ({criterion})", cal.policy,
            {"calibration_seconds": cal.seconds, "gains": cal.gains})  # fmt: skip
    return {"model": name, "metric": shipped.get(name).metric, "rows": rows}


def table(result: dict) -> str:
    rows = result["rows"]
    keys = [k for k in rows[0]["float32"]]
    head = "| G | " + " | ".join(keys) + " | calibration (s) |"
    lines = [head, "|" + "---|" * (len(keys) + 2)]
    fp32 = rows[0]["float32"]
    lines.append("| float32 | " + " | ".join(f"{fp32[k]:.4f}" for k in keys) + " | |")
    for row in rows:
        cost = f"{row['calibration_seconds']:.1f}" if "calibration_seconds" in row else ""
        lines.append(f"| {row['gain']} | " + " | ".join(f"{row[k]:.4f}" for k in keys)
                     + f" | {cost} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(shipped.MODELS), metavar="M")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--bits", default="8,8,8", metavar="BX,BW,BY")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--limit", nargs="*", default=[], metavar="MODEL=SAMPLES",
                        help="evaluate only the first SAMPLES samples of MODEL")
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    bx, bw, by = (int(b) for b in args.bits.split(","))
    cfg = TileConfig(n=args.n, bx=bx, bw=bw, by=by, noise="uniform", noise_amplitude=1.0)
    limits = {}
    for item in args.limit:
        model, _, count = item.partition("=")
        limits[model] = int(count)
    results = {}
    start = time.perf_counter()
    for name in args.models:
        results[name] = measure(name, cfg, list(range(args.seeds)), limits.get(name),
                                lambda text: print(text, file=sys.stderr, flush=True))
        print(f"\n{name} at n = {args.n}, {args.bits}, mean of {args.seeds} seeds"
              f"{f', first {limits[name]} samples' if name in limits else ''}\n")
        print(table(results[name]))
    print(f"\n{(time.perf_counter() - start) / 60:.1f} min")
    if args.json:
        write_json(args.json, {"config": cfg.to_dict(), "seeds": args.seeds,
                               "limits": limits, "results": results})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
