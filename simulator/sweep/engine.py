"""Running a sweep's cells: serially, or as Dask distributed tasks.

A model is loaded and its float32 reference computed once, in the process that starts the sweep
(:func:`prepare`); the resulting :class:`Prepared` (model, weights, evaluation data, float32
outputs) goes to every worker once (``Client.scatter(..., broadcast=True)``), and each cell is
one task, :func:`run_cell` of that and the cell. A cell's row depends on nothing but the model,
the cell and the code, so the serial run, a one-worker cluster and a many-worker cluster give
the same rows bit for bit. Dask reschedules the tasks of a worker that dies (up to
``distributed.scheduler.allowed-failures`` times per task); each finished task's row is
written once, by the process that runs the sweep.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from simulator.nn.calibrate import calibrate
from simulator.nn.evaluate import load_model, run_batches
from simulator.nn.ops import Float32Ops, TileOps
from simulator.nn.policy import LayerPolicy
from simulator.sweep.spec import Cell, SweepSpec

__all__ = ["Prepared", "SchedulerError", "connect", "prepare", "run_cell", "run_dask",
           "run_serial", "scheduler_address", "disconnect"]  # fmt: skip

ENV_SCHEDULER = "DASK_SCHEDULER_ADDRESS"
_STAT_COLUMNS = ("layer", "gain", "clip_rate", "codes_used", "sqnr_db")


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be reached, or the cluster cannot start."""


@dataclass
class Prepared:
    """A model ready for cells: loaded, its samples chosen and its float32 outputs computed."""

    name: str
    model: object
    metric: str
    count: int
    batch_size: int
    labels: np.ndarray
    reference: np.ndarray
    float32_metrics: dict


def _primary_metric(name: str, model, metrics: dict) -> str:
    """The shipped model's declared metric, a user model's ``metric`` attribute, or the first."""
    from simulator.nn import models

    if name in models.MODELS:
        return models.MODELS[name].metric
    return getattr(model, "metric", None) or next(iter(metrics))


def prepare(name: str, spec: SweepSpec) -> Prepared:
    """Load model ``name`` and run its float32 reference over the sweep's samples."""
    model = load_model(name)
    spec.base_policy.bind(model.layer_names)  # a base policy naming no layer fails here
    data = model.eval_data()
    total = len(data.labels)
    count = total if spec.limit is None else min(spec.limit, total)
    batch = spec.batch_size or data.batch_size
    reference = run_batches(model, Float32Ops(), data.inputs, count, batch)
    labels = data.labels[:count]
    float32 = model.metrics(reference, labels, reference)
    return Prepared(name, model, _primary_metric(name, model, float32), count, batch, labels,
                    reference, float32)  # fmt: skip


def _layer_summary(stats: list[dict]) -> list[dict]:
    return [{k: s[k] for k in _STAT_COLUMNS} for s in stats]


def _finite_extreme(values: Iterable[float], pick) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(pick(finite)) if finite else float("nan")


def run_cell(prepared: Prepared, cell: Cell, policy: dict, criterion: str) -> dict:
    """One cell's tidy row: the model on the tile at the cell's configuration and seed."""
    import simulator

    start = time.perf_counter()
    model = prepared.model
    # the base policy's rules over the cell's default configuration
    cell_policy = LayerPolicy.from_dict({**policy, "default": cell.config}, model.layer_names)
    gains = None
    if cell.calibrate:
        result = calibrate(model.forward, model.calibration_batch(), cell_policy, seed=cell.seed,
                           criterion=criterion)  # fmt: skip
        cell_policy, gains = result.policy, dict(result.gains)
    ops = TileOps(cell_policy, seed=cell.seed, stats=True)
    outputs = run_batches(model, ops, model.eval_data().inputs, prepared.count,
                          prepared.batch_size)  # fmt: skip
    metrics = model.metrics(outputs, prepared.labels, prepared.reference)
    layers = _layer_summary(ops.stats())
    return {
        "key": cell.key, "index": cell.index, "model": cell.model, "seed": cell.seed,
        "calibrate": cell.calibrate, "axes": dict(cell.axes), "metric": prepared.metric,
        "value": metrics[prepared.metric], "float32": prepared.float32_metrics[prepared.metric],
        "metrics": metrics, "float32_metrics": prepared.float32_metrics,
        "min_sqnr_db": _finite_extreme((r["sqnr_db"] for r in layers), min),
        "max_clip_rate": _finite_extreme((r["clip_rate"] for r in layers), max),
        "layers": layers, "calibrated_gains": gains, "samples": prepared.count,
        "seconds": time.perf_counter() - start, "config": dict(cell.config),
        "version": simulator.__version__,
    }  # fmt: skip


def run_serial(prepared: dict, cells: list[Cell], spec: SweepSpec,
               on_row: Callable[[dict], None]) -> None:  # fmt: skip
    """Run ``cells`` one after the other in this process, calling ``on_row`` with each row."""
    for cell in cells:
        on_row(run_cell(prepared[cell.model], cell, spec.policy, spec.criterion))


def scheduler_address(option: str | None) -> str:
    """``none`` (serial), ``local`` (an embedded LocalCluster) or a scheduler address: the
    option, else ``$DASK_SCHEDULER_ADDRESS``, else ``local``."""
    return option or os.environ.get(ENV_SCHEDULER) or "local"


def connect(address: str, workers: int | None = None, timeout: float = 10.0):
    """A Dask client: an embedded LocalCluster for ``"local"``, else the scheduler at
    ``address`` (SchedulerError naming it when it does not answer within ``timeout`` s)."""
    from distributed import Client, LocalCluster

    if address == "local":
        count = workers or os.cpu_count() or 1
        try:
            cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)  # fmt: skip
        except Exception as exc:  # anything that stops the cluster from starting
            raise SchedulerError(f"cannot start a local Dask cluster of {count} workers: "
                                 f"{exc}") from None  # fmt: skip
        return Client(cluster)
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler at {address} within "
                             f"{timeout:g} s ({type(exc).__name__}: {exc})") from None  # fmt: skip


def disconnect(client) -> None:
    """Close ``client``, and its cluster when :func:`connect` started one (``client.cluster``
    is None for a client of an existing scheduler)."""
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


def run_dask(client, prepared: dict, cells: list[Cell], spec: SweepSpec,
             on_row: Callable[[dict], None], retries: int = 2) -> None:  # fmt: skip
    """Run ``cells`` as tasks on ``client``'s cluster, calling ``on_row`` as each finishes.

    Each model's :class:`Prepared` is scattered to every worker once; a task that raises is
    retried ``retries`` times, one whose worker dies is rescheduled by Dask. On any error the
    remaining tasks are cancelled and the error raised (the rows already passed stay)."""
    from distributed import as_completed

    needed = dict.fromkeys(c.model for c in cells)
    shipped = {name: client.scatter(prepared[name], broadcast=True, hash=False)
               for name in needed}  # fmt: skip
    futures = [client.submit(run_cell, shipped[c.model], c, spec.policy, spec.criterion,
                             key=f"sweep-{spec.digest[:12]}-{c.index}", retries=retries,
                             pure=False) for c in cells]  # fmt: skip
    try:
        for future in as_completed(futures):
            on_row(future.result())
    finally:
        client.cancel(futures + list(shipped.values()))
