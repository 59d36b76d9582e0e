"""Golden checks of many vector sets as Dask tasks, with one combined pass/fail summary.

``python -m golden check --sets DIR...`` checks existing sets; ``--seeds FIRST:LAST`` first
generates one set per stimulus seed (a task per seed, into ``--work``), then checks it. Each
(set, simulator, kind) bench run is one task, on the same engine as the design-space sweeps
(:func:`simulator.sweep.engine.connect`: an embedded LocalCluster, an existing scheduler, or
``none`` for this process); benches are built once per parameter set and shared through
``build/golden`` (builds are renamed into place, so concurrent workers never see half a build).
Sets and the build directory must be on a file system every worker sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from golden.store import generate, load
from simulator import TileConfig

__all__ = ["BenchRun", "check_sets", "generate_set", "run_one", "seed_range"]


@dataclass
class BenchRun:
    """The outcome of one bench on one set."""

    set: str
    sim: str
    unit: str
    passed: int
    failed: int
    returncode: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and self.passed > 0


def seed_range(text: str) -> range:
    """``FIRST:LAST`` (inclusive) or a single seed, as a range; ValueError naming the text."""
    first, sep, last = text.partition(":")
    try:
        lo, hi = int(first), int(last) if sep else int(first)
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected FIRST:LAST (integers)") from None
    if lo < 0 or hi < lo:
        raise ValueError(f"--seeds {text!r}: need 0 <= FIRST <= LAST")
    return range(lo, hi + 1)


def generate_set(config: dict, seed: int, count: int, work: str) -> str:
    """Generate (or keep, if already verified there) the set of stimulus ``seed`` under
    ``work``; its directory."""
    out = Path(work) / f"seed-{seed}"
    if (out / "manifest.json").exists():
        try:
            load(out)
            return str(out)
        except ValueError:  # a set from other settings or damaged: generate it again
            pass
    generate(TileConfig.from_dict(config), out, seed=seed, count=count, force=True,
             progress=False)  # fmt: skip
    return str(out)


def run_one(set_dir: str, sim: str, unit: str, stall_seed: int, stall_pct: int) -> BenchRun:
    """Verify the set and run one bench on it (a Dask task)."""
    from golden.simulate import run_bench

    result = run_bench(load(set_dir), unit, sim, stall_seed=stall_seed, stall_pct=stall_pct)
    return BenchRun(set_dir, sim, unit, result.passed, result.failed, result.returncode,
                    result.seconds, "" if result.ok else result.output)  # fmt: skip


def check_sets(sets, sims, units, *, stall_seed=1, stall_pct=0, client=None,
               on_result=None) -> list[BenchRun]:  # fmt: skip
    """Run every (set, simulator, kind) bench, on ``client``'s cluster or here (None).

    ``sets`` are directories or futures of :func:`generate_set`; ``on_result`` is called with
    each :class:`BenchRun` as it finishes. Returns them in the order of the jobs.
    """
    jobs = [(s, sim, unit) for s in sets for sim in sims for unit in units]
    if client is None:
        runs = []
        for job in jobs:
            runs.append(run_one(*job, stall_seed, stall_pct))
            if on_result:
                on_result(runs[-1])
        return runs
    from distributed import as_completed

    futures = [client.submit(run_one, *job, stall_seed, stall_pct, pure=False, retries=1)
               for job in jobs]  # fmt: skip
    try:
        for future in as_completed(futures):
            if on_result:
                on_result(future.result())
        return [f.result() for f in futures]
    finally:
        client.cancel(futures)
