"""Evaluate a model in float32 and through the tile with the same forward code.

A model is anything with the interface of :mod:`simulator.nn.models` (``layer_names``,
``forward(ops, batch)``, ``eval_data()``, ``calibration_batch()``, ``metrics(outputs, labels,
reference_outputs)``). :func:`load_model` takes a shipped model's name or a ``module:function``
spec whose function returns such a model (or a spec with a ``load()``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulator.nn.cli import progress_bar
from simulator.nn.ops import Float32Ops, TileOps
from simulator.nn.policy import LayerPolicy

__all__ = ["Evaluation", "evaluate", "load_model", "versions", "write_json"]


def load_model(spec: str, weights=None):
    """A loaded model from a registry name (``"resnet8"``) or ``"package.module:function"``;
    ``weights``, a file of the model's own format (e.g. finetuned weights), replaces its
    shipped weights where its loader takes a ``weights`` argument."""
    if weights is not None:
        if ":" in spec:
            raise ValueError(f"model {spec!r}: weights are given by the function itself, "
                             "not with a weights file")  # fmt: skip
        from simulator.nn import models

        load = models.get(spec).load
        if "weights" not in inspect.signature(load).parameters:
            raise ValueError(f"model {spec!r} takes no weights file")
        if not Path(weights).is_file():
            raise ValueError(f"model {spec!r}: weights file {weights} does not exist")
        return load(weights=Path(weights))
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"model {spec!r}: cannot import {module_name!r}: {exc}") from None
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise ValueError(f"model {spec!r}: {module_name} has no callable {attr!r}")
        model = factory()
    else:
        from simulator.nn import models

        model = models.get(spec)
    return model.load() if hasattr(model, "load") and not hasattr(model, "forward") else model


def slice_samples(inputs, start: int, stop: int):
    """Samples ``start:stop`` of ``inputs`` (an array, or a tuple of arrays sliced together)."""
    if isinstance(inputs, tuple):
        return tuple(a[start:stop] for a in inputs)
    return inputs[start:stop]


@dataclass
class Evaluation:
    """Figures of one evaluation: float32 metrics and the tile's for each seed."""

    model: str
    samples: int
    batch_size: int
    seeds: list
    policy: LayerPolicy
    float32: dict
    tile: list
    seconds: dict
    calibration: dict | None = None
    stats: list | None = field(default=None)

    @property
    def tile_mean(self) -> dict:
        keys = self.tile[0].keys() if self.tile else ()
        return {k: float(np.mean([run[k] for run in self.tile])) for k in keys}

    def rows(self) -> list[dict]:
        """One row per metric: float32, tile mean, and the tile's min/max over seeds."""
        out = []
        for key, value in self.float32.items():
            runs = [run[key] for run in self.tile]
            row = {"metric": key, "float32": value, "tile": float(np.mean(runs))}
            if len(runs) > 1:
                row.update({"tile_min": min(runs), "tile_max": max(runs)})
            out.append(row)
        return out

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "samples": self.samples,
            "batch_size": self.batch_size,
            "seeds": list(self.seeds),
            "policy": self.policy.to_dict(),
            "config": self.policy.default.to_dict(),
            "float32": self.float32,
            "tile": [{"seed": s, **run} for s, run in zip(self.seeds, self.tile, strict=True)],
            "tile_mean": self.tile_mean,
            "calibration": self.calibration,
            "stats": self.stats,
            "seconds": self.seconds,
            "versions": versions(),
        }


def run_batches(model, ops, inputs, count, batch_size, bar=None):
    """``model.forward`` over the first ``count`` samples of ``inputs``, ``batch_size`` at a
    time, with ``ops.batch_start`` set to each batch's first sample; the outputs concatenated."""
    outputs = []
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        ops.batch_start = start
        outputs.append(np.asarray(model.forward(ops, slice_samples(inputs, start, stop))))
        if bar is not None:
            bar.update(1)
    return np.concatenate(outputs, axis=0)


def evaluate(model, policy: LayerPolicy, seeds=(0,), limit=None, batch_size=None,
             stats=False, progress=True, name=None) -> Evaluation:  # fmt: skip
    """Run ``model`` in float32 and on the tile for each seed, batch by batch.

    Parameters
    ----------
    model
        A loaded model (see the module docstring).
    policy : LayerPolicy
        Bound to the model's layer names here.
    seeds : sequence of int
        One tile run per seed.
    limit : int, optional
        Evaluate only the first ``limit`` samples.
    batch_size : int, optional
        Samples per forward pass (the model's default if omitted). Results do not depend on
        it: noise follows absolute sample indices.
    stats : bool
        Collect per-layer statistics during the first seed's run.
    progress : bool
        Show a progress bar (tqdm, on a terminal).
    """
    policy = policy.bind(model.layer_names)
    data = model.eval_data()
    total = len(data.labels)
    count = total if limit is None else min(int(limit), total)
    batch = int(batch_size or data.batch_size)
    if count < 1 or batch < 1:
        raise ValueError(f"evaluate: need at least one sample and batch size >= 1, got "
                         f"limit {limit!r}, batch size {batch}")  # fmt: skip
    labels = data.labels[:count]
    batches = -(-count // batch)
    bar = progress_bar("batch", batches * (1 + len(seeds)), progress)
    try:
        t0 = time.perf_counter()
        reference = run_batches(model, Float32Ops(), data.inputs, count, batch, bar)
        t1 = time.perf_counter()
        runs, rows = [], None
        for i, seed in enumerate(seeds):
            ops = TileOps(policy, seed=seed, stats=stats and i == 0)
            out = run_batches(model, ops, data.inputs, count, batch, bar)
            runs.append(model.metrics(out, labels, reference))
            if ops.collect_stats:
                rows = ops.stats()
        t2 = time.perf_counter()
    finally:
        if bar is not None:
            bar.close()
    return Evaluation(
        model=name or getattr(model, "name", type(model).__name__), samples=count,
        batch_size=batch, seeds=list(seeds), policy=policy,
        float32=model.metrics(reference, labels, reference), tile=runs,
        seconds={"float32": t1 - t0, "tile_per_seed": (t2 - t1) / max(len(seeds), 1)},
        stats=rows,
    )  # fmt: skip


def versions() -> dict:
    """Versions of what produced a result: Python, NumPy, Numba and this package."""
    import numba

    import simulator

    return {"python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "abfp-sim": simulator.__version__}  # fmt: skip


def _plain(value):
    """JSON-safe: non-finite floats as the strings "inf", "-inf", "nan"; NumPy scalars as
    Python numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    return value


def write_json(path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    text = json.dumps(_plain(data), indent=2, allow_nan=False) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
