"""Hardware-aware per-layer precision search (docs/cost.md, "Per-layer search").

For a model of :mod:`simulator.nn.models`, :func:`search` chooses each tile layer's
``(bx, bw, by, G)`` to minimise the energy or the latency of :class:`simulator.cost.CostModel`
while the model's task metric, measured with the bit-exact tile, stays within a budget of its
float32 value on the same samples. It is a lazy greedy descent:

1. start from uniform 8/8/8 with calibrated gains (:func:`simulator.nn.calibrate`);
2. a move lowers one of ``bx``, ``bw``, ``by`` of one layer by one bit; each move is scored by
   the cost it saves per unit of metric lost (a move that loses nothing ranks by its saving
   alone, ahead of every lossy one);
3. the best-scored move is re-measured if it was scored before the last accepted move; once
   fresh and best, it is accepted when the metric stays within the budget by ``z`` standard
   errors of its paired difference from float32 (:func:`paired_stderr`), else that layer's
   knob is frozen at its bits;
4. when no move is left, the gains are calibrated again for the final bits, and kept if they
   measure better.

Every configuration measured is a :class:`Point`; :func:`pareto_front` picks the ones no other
point beats on both metric and cost. With a Dask client the measurements the lazy descent is
about to need are taken in parallel, one per worker thread, ahead of time; each is a pure
function of the layers, so the result is the serial one.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from simulator.config import TileConfig
from simulator.cost import DEFAULT, CostModel, LayerShape
from simulator.nn.calibrate import calibrate
from simulator.nn.evaluate import run_batches, slice_samples
from simulator.nn.models._common import top1
from simulator.nn.ops import Float32Ops, TileOps
from simulator.nn.policy import LayerPolicy, escape_pattern

__all__ = ["KNOBS", "OBJECTIVES", "PER_SAMPLE", "BudgetError", "Point", "SearchResult",
           "ShapeOps", "layer_shapes", "meets_budget", "paired_stderr", "pareto_front",
           "search"]  # fmt: skip

KNOBS = ("bx", "bw", "by")
OBJECTIVES = ("energy", "latency")


def _correct(outputs, labels, reference):
    return top1(outputs) == labels


def _agrees(outputs, labels, reference):
    return top1(outputs) == top1(reference)


# metric -> per-sample scores (outputs, labels, float32 outputs) whose mean is the metric
PER_SAMPLE = {"top1": _correct, "agreement": _agrees}


def paired_stderr(scores, reference_scores) -> float:
    """Standard error of the mean paired difference between per-sample scores.

    ``scores`` is ``(samples,)`` or ``(seeds, samples)`` (e.g. 1 where a sample is classified
    right), ``reference_scores`` is ``(samples,)`` (float32's). The seeds of one sample are
    averaged first, so the samples are the independent draws: with ``d_i`` the difference of
    sample ``i``, the error is ``sqrt((mean(d^2) - mean(d)^2) / samples)``. For 0/1 scores and
    one seed, ``mean(d^2)`` is the fraction of samples on which the two disagree.
    """
    scores = np.atleast_2d(np.asarray(scores, np.float64))
    reference_scores = np.asarray(reference_scores, np.float64)
    if scores.ndim != 2 or reference_scores.ndim != 1 or \
            scores.shape[1] != reference_scores.shape[0] or not reference_scores.size:
        raise ValueError(f"paired_stderr: scores {scores.shape} must be (seeds, samples) of "
                         f"the samples of reference_scores {reference_scores.shape}")
    d = scores.mean(axis=0) - reference_scores
    return float(math.sqrt(max(np.mean(d * d) - np.mean(d) ** 2, 0.0) / d.size))


def meets_budget(metric: float, stderr: float, float32: float, budget: float,
                 z: float) -> bool:  # fmt: skip
    """The search's acceptance rule: the drop below float32 plus ``z`` standard errors of it
    is at most ``budget`` (``metric - z * stderr >= float32 - budget``; ``z = 0`` ignores
    ``stderr``)."""
    return metric - (z * stderr if z else 0.0) >= float32 - budget


class BudgetError(ValueError):
    """No configuration of the search meets the accuracy budget; ``closest`` is the measured
    point with the highest metric."""

    def __init__(self, message: str, closest: Point):
        super().__init__(message)
        self.closest = closest


class ShapeOps(Float32Ops):
    """Float32 ops that record the shape of every matrix product the tile would run:
    ``products`` is a list of ``(layer name, LayerShape, is_matmul)``, convolutions after
    their im2col lowering (a grouped one gives one product per group)."""

    def __init__(self):
        super().__init__()
        self.products: list = []

    def _weight_product(self, name, key, x2, w, per_sample):
        self.products.append((name, LayerShape(key, x2.shape[0], x2.shape[1], w.shape[0]),
                              False))  # fmt: skip
        return super()._weight_product(name, key, x2, w, per_sample)

    def _activation_product(self, name, a, b):
        for p, (ap, bp, _) in enumerate(self._products(name, a, b)):
            key = name if p == 0 else f"{name}/{p}"
            self.products.append((name, LayerShape(key, ap.shape[0], ap.shape[1], bp.shape[1]),
                                  True))  # fmt: skip
        return super()._activation_product(name, a, b)


def layer_shapes(model, policy: LayerPolicy, batch: int = 1) -> list[tuple[str, LayerShape]]:
    """The products that ``model`` runs on the tile under ``policy`` for ``batch`` samples:
    ``(layer name, LayerShape)`` in forward order (layers kept in float32 and matmuls not opted
    in are left out). Shapes come from one forward pass of the first evaluation sample."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"layer_shapes: batch must be an int >= 1, got {batch!r}")
    recorder = ShapeOps()
    model.forward(recorder, slice_samples(model.eval_data().inputs, 0, 1))
    out = []
    for name, shape, is_matmul in recorder.products:
        settings = policy.settings(name)
        if settings.float32 or (is_matmul and not settings.matmul):
            continue
        out.append((name, LayerShape(shape.name, shape.rows * batch, shape.k, shape.n_out)))
    return out


@dataclass(frozen=True)
class Point:
    """One measured configuration: per-layer ``{name: {bx, bw, by, gain}}``, the metric (mean
    over seeds), energy per sample (J), latency of the batch (s) and the standard error of the
    metric's difference from float32 on the same samples (:func:`paired_stderr`)."""

    label: str
    layers: dict
    metric: float
    energy_j: float
    latency_s: float
    stderr: float = 0.0  # of the metric's paired difference from float32 (nan: no per-sample)

    def cost(self, objective: str) -> float:
        return self.energy_j if objective == "energy" else self.latency_s

    def bits(self) -> str:
        """``bx/bw/by`` if every layer has the same, else ``mixed``."""
        triples = {tuple(v[k] for k in KNOBS) for v in self.layers.values()}
        return "/".join(map(str, triples.pop())) if len(triples) == 1 else "mixed"

    def to_dict(self) -> dict:
        return {"label": self.label, "metric": self.metric, "stderr": self.stderr,
                "energy_j": self.energy_j, "latency_s": self.latency_s,
                "layers": self.layers}  # fmt: skip


def pareto_front(costs, metrics) -> list[int]:
    """Indices of the points no other point dominates (cost no higher and metric no lower,
    one of them strictly), in increasing cost; of identical points the first is kept."""
    costs, metrics = np.asarray(costs, np.float64), np.asarray(metrics, np.float64)
    if costs.shape != metrics.shape or costs.ndim != 1:
        raise ValueError(f"pareto_front: costs {costs.shape} and metrics {metrics.shape} must "
                         "be 1-D of one length")  # fmt: skip
    if not (np.isfinite(costs).all() and np.isfinite(metrics).all()):
        raise ValueError("pareto_front: costs and metrics must be finite")
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -metrics[i], i))
    front, best = [], -math.inf
    for i in order:
        if metrics[i] > best:
            front.append(i)
            best = metrics[i]
    return front


@dataclass
class SearchResult:
    """What :func:`search` found, against float32 and the uniform 8/8/8 and 6/6/8 points."""

    model: str
    metric_name: str
    objective: str
    float32: float
    budget: float
    z: float
    samples: int
    seeds: list
    batch: int
    tile: dict
    best: Point
    uniform8: Point
    uniform6: Point
    points: list
    cost_model: CostModel
    seconds: float
    evaluations: int = 0
    history: list = field(default_factory=list)
    validation: dict | None = None

    @property
    def target(self) -> float:
        return self.float32 - self.budget

    def savings(self) -> dict:
        """Uniform 8/8/8's energy and latency over the best point's (x times)."""
        return {"energy": self.uniform8.energy_j / self.best.energy_j,
                "latency": self.uniform8.latency_s / self.best.latency_s}  # fmt: skip

    def front(self, objective: str | None = None) -> list[Point]:
        objective = objective or self.objective
        idx = pareto_front([p.cost(objective) for p in self.points],
                           [p.metric for p in self.points])  # fmt: skip
        return [self.points[i] for i in idx]

    def to_dict(self) -> dict:
        return {
            "model": self.model, "metric": self.metric_name, "objective": self.objective,
            "float32": self.float32, "budget": self.budget, "z": self.z, "target": self.target,
            "samples": self.samples, "seeds": list(self.seeds), "batch": self.batch,
            "tile": dict(self.tile), "best": self.best.to_dict(),
            "uniform_8_8_8": self.uniform8.to_dict(), "uniform_6_6_8": self.uniform6.to_dict(),
            "savings_vs_uniform_8": self.savings(),
            "pareto_energy": [p.label for p in self.front("energy")],
            "pareto_latency": [p.label for p in self.front("latency")],
            "points": [p.to_dict() for p in self.points], "history": list(self.history),
            "validation": self.validation,
            "cost_constants": self.cost_model.to_dict(), "evaluations": self.evaluations,
            "seconds": self.seconds,
        }  # fmt: skip


@dataclass
class _Evaluator:
    """The model on the tile over fixed samples: what a Dask worker receives once."""

    model: object
    metric: str
    base: LayerPolicy
    inputs: object
    count: int
    batch_size: int
    labels: np.ndarray
    reference: np.ndarray
    seeds: tuple
    per_sample: object  # a PER_SAMPLE function, or None

    def policy(self, layers: dict) -> LayerPolicy:
        return self.base.with_rules(
            [{"pattern": escape_pattern(name), **s} for name, s in layers.items()]
        )

    def run(self, ops):
        return run_batches(self.model, ops, self.inputs, self.count, self.batch_size)

    def __call__(self, layers: dict) -> tuple:
        """The metric's mean over the seeds and the per-sample scores ``(seeds, samples)``
        (None without a per-sample function)."""
        policy, runs, scores = self.policy(layers), [], []
        for seed in self.seeds:
            outputs = self.run(TileOps(policy, seed=seed))
            runs.append(self.model.metrics(outputs, self.labels, self.reference)[self.metric])
            if self.per_sample is not None:
                scores.append(self.per_sample(outputs, self.labels, self.reference))
        return float(np.mean(runs)), (np.array(scores) if scores else None)


def _evaluate(evaluator: _Evaluator, layers: dict) -> tuple:
    return evaluator(layers)


class _Measure:
    """The metric and the cost of per-layer settings, each measured once (on ``client``'s
    workers when one is given, see :meth:`prefetch`)."""

    def __init__(self, model, metric, base, shapes, cost_model, start, stop, seeds, progress,
                 client=None):  # fmt: skip
        data = model.eval_data()
        inputs = slice_samples(data.inputs, start, stop)
        labels = data.labels[start:stop]
        reference = run_batches(model, Float32Ops(), inputs, stop - start, data.batch_size)
        figures = model.metrics(reference, labels, reference)
        if metric not in figures:
            raise ValueError(f"search: model {getattr(model, 'name', '?')!r} has no metric "
                             f"{metric!r}; its metrics: {', '.join(figures)}")  # fmt: skip
        per_sample = PER_SAMPLE.get(metric)
        self.evaluator = _Evaluator(model, metric, base, inputs, stop - start, data.batch_size,
                                    labels, reference, tuple(seeds), per_sample)  # fmt: skip
        self.count = stop - start
        self.float32 = float(figures[metric])
        self.reference_scores = (None if per_sample is None
                                 else per_sample(reference, labels, reference))  # fmt: skip
        self.shapes, self.cost_model, self.progress = shapes, cost_model, progress
        self.client = client
        self.shipped = None if client is None else client.scatter(self.evaluator,
                                                                  broadcast=True, hash=False)
        self._measured: dict = {}
        self.evaluations = 0

    def policy(self, layers: dict) -> LayerPolicy:
        return self.evaluator.policy(layers)

    def _store(self, key, measured) -> None:
        self._measured[key] = measured
        self.evaluations += 1
        if self.progress is not None:
            self.progress.update(1)

    def prefetch(self, trials) -> None:
        """Measure the ``trials`` (layer settings) not yet measured, in parallel on the
        client's workers; without a client, nothing (each is measured when asked for)."""
        if self.client is None:
            return
        todo = {_key(layers): layers for layers in trials}
        todo = {key: layers for key, layers in todo.items() if key not in self._measured}
        futures = {key: self.client.submit(_evaluate, self.shipped, layers, pure=False)
                   for key, layers in todo.items()}  # fmt: skip
        for key, future in futures.items():
            self._store(key, future.result())

    def _measurement(self, layers: dict) -> tuple:
        key = _key(layers)
        if key not in self._measured:
            self._store(key, self.evaluator(layers))
        return self._measured[key]

    def metric_of(self, layers: dict) -> float:
        return self._measurement(layers)[0]

    def scores_of(self, layers: dict):
        return self._measurement(layers)[1]

    def stderr_of(self, layers: dict) -> float:
        """:func:`paired_stderr` of ``layers`` against float32 (nan without per-sample)."""
        scores = self.scores_of(layers)
        return math.nan if scores is None else paired_stderr(scores, self.reference_scores)

    def cost_of(self, layers: dict, batch: int):
        policy = self.policy(layers)
        priced = self.cost_model.network((shape, policy.config(name))
                                         for name, shape in self.shapes)  # fmt: skip
        return priced.energy_j / batch, priced.latency_s

    def point(self, label: str, layers: dict, batch: int) -> Point:
        energy, latency = self.cost_of(layers, batch)
        return Point(label, {k: dict(v) for k, v in layers.items()}, self.metric_of(layers),
                     energy, latency, self.stderr_of(layers))  # fmt: skip

    def release(self) -> None:
        if self.shipped is not None:
            self.client.cancel([self.shipped])


def _key(layers: dict) -> tuple:
    return tuple(sorted((name, tuple(sorted(s.items()))) for name, s in layers.items()))


def _calibrated(model, measure, layers, criterion, seed) -> dict:
    """``layers`` with every gain chosen by :func:`simulator.nn.calibrate` for their bits."""
    without_gain = {name: {k: v for k, v in s.items() if k != "gain"}
                    for name, s in layers.items()}  # fmt: skip
    result = calibrate(model.forward, model.calibration_batch(), measure.policy(without_gain),
                       seed=seed, criterion=criterion)  # fmt: skip
    return {name: {**s, "gain": result.gains[name]} for name, s in without_gain.items()}


def _uniform(names, bx, bw, by) -> dict:
    return {name: {"bx": bx, "bw": bw, "by": by} for name in names}


def _score(saving: float, loss: float) -> tuple:
    """Heap key (smallest first): lossless moves by saving, then saving per metric lost."""
    if loss <= 0:
        return (0, -saving)
    return (1, -saving / loss)


def search(model, *, metric: str, budget: float, objective: str = "energy",
           config: TileConfig | None = None, cost_model: CostModel = DEFAULT, limit=None,
           seeds=(0,), batch: int = 1, min_bits: int = 2, criterion: str = "output",
           z: float = 2.0, validate=None, client=None, progress=None,
           model_name: str | None = None) -> SearchResult:  # fmt: skip
    """Per-layer ``(bx, bw, by, G)`` minimising ``objective`` within ``budget`` of float32.

    Parameters
    ----------
    model
        A loaded model (interface of :mod:`simulator.nn.models`).
    metric : str
        The key of ``model.metrics`` to hold (higher is better), e.g. ``"top1"``.
    budget : float
        Largest drop of the metric below its float32 value on the same samples, in the
        metric's units (0.01 is one point of top-1).
    z : float
        A configuration meets the budget when its drop plus ``z`` standard errors of the drop
        (:func:`paired_stderr` over the samples, the seeds of a sample averaged) is at most
        ``budget``: a one-sided bound, about 97.7% for the default 2. ``z > 0`` needs a metric
        with per-sample scores (:data:`PER_SAMPLE`); 0 compares the measured metric alone.
    objective : {"energy", "latency"}
        What the search minimises: energy per sample or the latency of a batch.
    config : TileConfig, optional
        Every other tile setting (``n``, noise, formats); its bits and gain are the search's.
    cost_model : CostModel
        The constants of the cost model (:data:`simulator.cost.DEFAULT`).
    limit : int, optional
        Measure the metric on the first ``limit`` evaluation samples only.
    seeds : sequence of int
        Noise seeds; the metric is their mean.
    batch : int
        Samples per forward pass that the cost model prices (weights read once per batch).
    min_bits : int
        Fewest bits a knob may reach (2 to 8).
    criterion : {"output", "layer"}
        Gain calibration criterion (:func:`simulator.nn.calibrate`).
    validate : int, optional
        Measure float32, uniform 8/8/8, uniform 6/6/8 and the chosen point again on the
        ``validate`` evaluation samples after the first ``limit`` (held out from the search):
        :attr:`SearchResult.validation`, with the chosen point's paired difference (and its
        standard error) from float32 and from uniform 8/8/8 there.
    client : distributed.Client, optional
        Measure on its workers (the samples sent to each once): the moves the descent will
        need next are measured in parallel, one per worker thread. The result is the serial
        one; only ``evaluations`` counts the measurements made ahead of time and not used.
    progress : tqdm-like, optional
        Its ``update(1)`` is called after each measurement.
    model_name : str, optional
        The name the result carries (the model's ``name`` by default).

    Raises
    ------
    BudgetError
        Uniform 8/8/8 with calibrated gains (the start) already misses the budget.
    ValueError
        Unknown metric or objective, bad budget, z, seeds, batch or bits; ``z > 0`` for a
        metric without per-sample scores.
    """
    start = time.perf_counter()
    if objective not in OBJECTIVES:
        raise ValueError(f"search: objective must be one of {OBJECTIVES}, got {objective!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(
            budget):  # fmt: skip
        raise ValueError(f"search: budget must be a finite number, got {budget!r}")
    if isinstance(z, bool) or not isinstance(z, (int, float)) or not 0 <= z < math.inf:
        raise ValueError(f"search: z must be a finite number >= 0, got {z!r}")
    if isinstance(min_bits, bool) or not isinstance(min_bits, int) or not 2 <= min_bits <= 8:
        raise ValueError(f"search: min_bits must be an int in [2, 8], got {min_bits!r}")
    for what, value in (("limit", limit), ("validate", validate)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):  # fmt: skip
            raise ValueError(f"search: {what} must be an int >= 1 or None, got {value!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("search: at least one noise seed is needed")
    config = TileConfig() if config is None else config
    base = LayerPolicy(config).bind(model.layer_names)
    shapes = layer_shapes(model, base, batch)
    if not shapes:
        raise ValueError("search: the model runs no product on the tile")
    names = list(dict.fromkeys(name for name, _ in shapes))
    total = len(model.eval_data().labels)
    count = total if limit is None else min(limit, total)
    measure = _Measure(model, metric, base, shapes, cost_model, 0, count, seeds, progress,
                       client)  # fmt: skip
    if z > 0 and measure.reference_scores is None:
        measure.release()
        raise ValueError(f"search: a margin z = {z:g} needs per-sample scores of the metric, "
                         f"which {metric!r} has not (metrics with them: "
                         f"{', '.join(PER_SAMPLE)}); give z = 0")
    try:
        return _descend(model, measure, names, metric, budget, objective, config, batch,
                        min_bits, criterion, z, validate, count, total, seeds, base, shapes,
                        cost_model, progress, client, start,
                        model_name)  # fmt: skip
    finally:
        measure.release()


def _descend(model, measure, names, metric, budget, objective, config, batch, min_bits,
             criterion, z, validate, count, total, seeds, base, shapes, cost_model, progress,
             client, start, model_name) -> SearchResult:  # fmt: skip
    """:func:`search` after its checks: the descent, the final gains and the validation."""
    history: list = []
    width = 1 if client is None else max(1, sum(
        w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))

    def meets(p: Point) -> bool:
        return meets_budget(p.metric, p.stderr, measure.float32, budget, z)

    uniform8 = _calibrated(model, measure, _uniform(names, 8, 8, 8), criterion, seeds[0])
    uniform6 = _calibrated(model, measure, _uniform(names, 6, 6, 8), criterion, seeds[0])
    measure.prefetch([uniform8, uniform6])
    points = [measure.point("uniform 8/8/8", uniform8, batch),
              measure.point("uniform 6/6/8", uniform6, batch)]
    target = measure.float32 - budget
    if not meets(points[0]):
        closest = max(points, key=lambda p: p.metric)
        raise BudgetError(
            f"no configuration meets the budget: {metric} - {z:g} standard errors must be >= "
            f"{target:.6g} (float32 {measure.float32:.6g} - budget {budget:g}) but the search "
            f"starts from uniform 8/8/8, which measures {points[0].metric:.6g} (standard error "
            f"{points[0].stderr:.3g}); the closest point is "
            f"{closest.label!r} with {metric} {closest.metric:.6g}, energy "
            f"{closest.energy_j:.4g} J/sample, latency {closest.latency_s:.4g} s; allow a "
            "larger budget or change the tile (n, noise)", closest)  # fmt: skip

    current, version = uniform8, 0
    cur_metric = points[0].metric
    cur_cost = points[0].cost(objective)
    frozen: set = set()
    heap: list = []

    def moved(layers, name, knob):
        return {**layers, name: {**layers[name], knob: layers[name][knob] - 1}}

    def movable(name, knob):
        return (name, knob) not in frozen and current[name][knob] > min_bits

    def ahead(first):
        """Measure the moves ``first`` and, up to one per worker thread, the stale moves the
        descent re-measures next (a no-op without a client)."""
        stale = [(n, k) for _, at, n, k, _ in heapq.nsmallest(width, heap) if at != version]
        wanted = list(dict.fromkeys([m for m in first if movable(*m)] + stale))
        measure.prefetch([moved(current, n, k) for n, k in wanted[:max(width, len(first))]])

    def push(name, knob):
        if not movable(name, knob):
            return
        trial = moved(current, name, knob)
        p = measure.point(f"{name}.{knob}={trial[name][knob]}", trial, batch)
        points.append(p)
        heapq.heappush(heap, (_score(cur_cost - p.cost(objective), cur_metric - p.metric),
                              version, name, knob, p))  # fmt: skip

    ahead([(name, knob) for name in names for knob in KNOBS])
    for name in names:
        for knob in KNOBS:
            push(name, knob)
    while heap:
        score, scored_at, name, knob, p = heapq.heappop(heap)
        if scored_at != version:  # scored before the last accepted move: measure again
            ahead([(name, knob)])
            push(name, knob)
            continue
        if not meets(p) or p.cost(objective) >= cur_cost:
            frozen.add((name, knob))
            history.append({"move": p.label, "metric": p.metric, "stderr": p.stderr,
                            "accepted": False})  # fmt: skip
            continue
        current, cur_metric, cur_cost, version = p.layers, p.metric, p.cost(objective), \
            version + 1  # fmt: skip
        history.append({"move": p.label, "metric": p.metric, "stderr": p.stderr,
                        "accepted": True, "energy_j": p.energy_j,
                        "latency_s": p.latency_s})  # fmt: skip
        ahead([(name, knob)])
        push(name, knob)

    best = next(p for p in points if p.layers == current)
    regained = _calibrated(model, measure, current, criterion, seeds[0])
    if regained != current:
        again = measure.point("searched, gains calibrated again", regained, batch)
        points.append(again)
        if again.metric > best.metric:
            best = again
    best = Point("searched", best.layers, best.metric, best.energy_j, best.latency_s,
                 best.stderr)  # fmt: skip
    validation = None
    if validate is not None and count < total:
        validation = _validation(model, metric, base, shapes, cost_model, count,
                                 min(count + validate, total), seeds, progress, client,
                                 (points[0], points[1], best), budget, z)  # fmt: skip
    return SearchResult(
        model=model_name or getattr(model, "name", type(model).__name__), metric_name=metric,
        objective=objective,
        float32=measure.float32, budget=float(budget), z=float(z), samples=measure.count,
        seeds=seeds,
        batch=batch, tile=config.to_dict(), best=best, uniform8=points[0], uniform6=points[1],
        points=points, cost_model=cost_model, seconds=time.perf_counter() - start,
        evaluations=measure.evaluations, history=history, validation=validation,
    )  # fmt: skip


def _validation(model, metric, base, shapes, cost_model, start, stop, seeds, progress, client,
                chosen, budget, z) -> dict:  # fmt: skip
    """The metric of float32 and of the ``chosen`` points (uniform 8/8/8, uniform 6/6/8, the
    searched one) on samples ``start:stop``; with per-sample scores, the searched point's
    paired difference from float32 and from uniform 8/8/8, its standard error and whether it
    is within ``budget`` by ``z`` of them (:func:`meets_budget`)."""
    held_out = _Measure(model, metric, base, shapes, cost_model, start, stop, seeds, progress,
                        client)  # fmt: skip
    try:
        held_out.prefetch([p.layers for p in chosen])
        out = {"samples": held_out.count, "float32": held_out.float32,
               **{p.label: held_out.metric_of(p.layers) for p in chosen}}  # fmt: skip
        uniform8, _, best = chosen
        searched = held_out.scores_of(best.layers)
        if searched is not None:
            against = {"float32": held_out.reference_scores,
                       "uniform 8/8/8": held_out.scores_of(uniform8.layers).mean(axis=0)}
            out["searched minus"] = {}
            for label, scores in against.items():
                reference, se = float(np.mean(scores)), paired_stderr(searched, scores)
                out["searched minus"][label] = {
                    "difference": out["searched"] - reference, "stderr": se,
                    "within_budget": meets_budget(out["searched"], se, reference, budget, z)}
        return out
    finally:
        held_out.release()
