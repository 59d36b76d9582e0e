"""Throughput of the golden vectors: generated and checked transactions per second.

``python -m golden bench`` (not a test): generates a default-configuration set of the
reference's size and one with ``count`` output-unit beats, then runs every bench on each
simulator (the large set on Verilator only, whose output-unit bench it is sized for). Build
times are reported apart from simulation times.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numba
import numpy as np

from golden.kinds import KINDS
from golden.simulate import SIMULATORS, UNITS, run_bench
from golden.store import DEFAULT_LANES, default_beat_elements, generate, load
from simulator import TileConfig

__all__ = ["run"]

_SMALL = {"count": 2000, "input_count": 400, "tile_count": 2000}


def _settings(cfg: TileConfig) -> dict:
    return {"lanes": DEFAULT_LANES, "p": default_beat_elements(cfg.n)}


def _rate(transactions: int, seconds: float) -> str:
    return f"{transactions / seconds:12,.0f} /s  ({transactions} in {seconds:.2f} s)"


def _generation(cfg: TileConfig, count: int) -> None:
    """Rates of the kinds' builders alone, single-threaded as :func:`golden.generate` runs
    them."""
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    sizes = {"input": max(count // 100, 100), "output": count, "tile": max(count // 10, 1000)}
    for name, k in KINDS.items():
        start = time.perf_counter()
        done = k.build(cfg, rng, sizes.get(name, 1000), _settings(cfg), lambda done: None)
        seconds = time.perf_counter() - start
        rows = len(next(iter(done.files[k.counts["transactions"]].values())))
        print(f"generate {name:6s} {_rate(rows, seconds)}")


def run(count: int, sims, work: Path) -> None:
    """Print generation and checking rates; ``count`` output beats in the large set."""
    sims = sims or list(SIMULATORS)
    cfg = TileConfig()
    work.mkdir(parents=True, exist_ok=True)
    # Compile the model's kernels before timing.
    KINDS["input"].build(cfg, np.random.default_rng(0), 2, _settings(cfg), lambda done: None)
    print(f"TileConfig defaults, LANES=4, P=16; {count} output-unit beats in the large run")
    _generation(cfg, count)
    sets = {}
    for name, counts in (("small", _SMALL), ("large", {"count": count, "input_count": 100,
                                                       "tile_count": 1000})):  # fmt: skip
        out = work / name
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        generate(cfg, out, seed=1, progress=True, **counts)
        total = counts["count"] + counts["input_count"] + counts["tile_count"]
        print(f"write set {name:6s} {_rate(total, time.perf_counter() - start)} (all units)")
        sets[name] = load(out)
    for sim in sims:
        for name, vset in sets.items():
            units = UNITS if name == "small" else ("output",)
            if name == "large" and sim != "verilator":
                continue
            for unit in units:
                start = time.perf_counter()
                result = run_bench(vset, unit, sim, stall_pct=0)
                total = time.perf_counter() - start
                if not result.ok:
                    raise RuntimeError(f"{sim} {unit} bench failed on the {name} set:\n"
                                       f"{result.output[-2000:]}")  # fmt: skip
                rows = vset.manifest["units"][unit]["transactions"]
                print(f"check {sim:9s} {unit:6s} {name:5s} {_rate(rows, result.seconds)}"
                      f"  build+load {total - result.seconds:.1f} s")  # fmt: skip
