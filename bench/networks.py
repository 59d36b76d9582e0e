"""Speed of a whole forward pass of each shipped model on the tile against its float32 forward.

For each model, in one process: one batch of its evaluation data (``BATCHES``) through
``Float32Ops`` and through ``TileOps`` at n = 128, 8/8/8, G = 8, uniform noise of 1 LSB. One
warm-up pass of each first (it compiles the kernels and quantizes the weights, which a
``TileOps`` then keeps for every later batch, as an evaluation does); then ``--repeats`` passes
alternating float32 and tile. Prints the median times and their ratio.

Usage: ``nice python bench/networks.py [--repeats 5] [--models resnet8,...]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator import TileConfig  # noqa: E402
from simulator.nn import Float32Ops, TileOps  # noqa: E402
from simulator.nn import models as shipped  # noqa: E402

HEADLINE = TileConfig(n=128, bx=8, bw=8, by=8, gain=8.0, noise="uniform", noise_amplitude=1.0)
BATCHES = {"resnet8": 20, "fmnist-cnn": 1000, "minilm": 10}  # samples per forward pass


def seconds(forward, ops, batch) -> float:
    start = time.perf_counter()
    forward(ops, batch)
    return time.perf_counter() - start


def bench(name: str, repeats: int) -> dict:
    model = shipped.get(name).load()
    batch = model.eval_data().batch(0, BATCHES[name])
    float32, tile = Float32Ops(), TileOps(HEADLINE, seed=0)
    seconds(model.forward, float32, batch)
    seconds(model.forward, tile, batch)
    times = {"float32": [], "tile": []}
    for _ in range(repeats):
        times["float32"].append(seconds(model.forward, float32, batch))
        times["tile"].append(seconds(model.forward, tile, batch))
    f, t = statistics.median(times["float32"]), statistics.median(times["tile"])
    return {"model": name, "samples": BATCHES[name], "float32_s": f, "tile_s": t, "ratio": t / f}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default=",".join(BATCHES))
    args = parser.parse_args(argv)
    print("| model | samples | float32 (s) | tile (s) | tile / float32 |")
    print("|---|---|---|---|---|")
    for name in args.models.split(","):
        r = bench(name, args.repeats)
        print(f"| {name} | {r['samples']} | {r['float32_s']:.3f} | {r['tile_s']:.3f} | "
              f"{r['ratio']:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
