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
   fresh and best, it is accepted when the metric stays within the budget, else that layer's
   knob is frozen at its bits;
4. when no move is left, the gains are calibrated again for the final bits, and kept if they
   measure better.

Every configuration measured is a :class:`Point`; :func:`pareto_front` picks the ones no other
point beats on both metric and cost.
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
from simulator.nn.ops import Float32Ops, TileOps
from simulator.nn.policy import LayerPolicy, escape_pattern

__all__ = ["KNOBS", "OBJECTIVES", "BudgetError", "Point", "SearchResult", "ShapeOps",
           "layer_shapes", "pareto_front", "search"]  # fmt: skip

KNOBS = ("bx", "bw", "by")
OBJECTIVES = ("energy", "latency")


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
    over seeds), energy per sample (J) and latency of the batch (s)."""

    label: str
    layers: dict
    metric: float
    energy_j: float
    latency_s: float

    def cost(self, objective: str) -> float:
        return self.energy_j if objective == "energy" else self.latency_s

    def bits(self) -> str:
        """``bx/bw/by`` if every layer has the same, else ``mixed``."""
        triples = {tuple(v[k] for k in KNOBS) for v in self.layers.values()}
        return "/".join(map(str, triples.pop())) if len(triples) == 1 else "mixed"

    def to_dict(self) -> dict:
        return {"label": self.label, "metric": self.metric, "energy_j": self.energy_j,
                "latency_s": self.latency_s, "layers": self.layers}  # fmt: skip


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
            "float32": self.float32, "budget": self.budget, "target": self.target,
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


class _Measure:
    """The metric and the cost of per-layer settings, each measured once."""

    def __init__(self, model, metric, base, shapes, cost_model, start, stop, seeds, progress):
        data = model.eval_data()
        self.count = stop - start
        self.model, self.metric, self.base, self.seeds = model, metric, base, tuple(seeds)
        self.inputs = slice_samples(data.inputs, start, stop)
        self.batch_size = data.batch_size
        self.labels = data.labels[start:stop]
        self.reference = self._run(Float32Ops())
        figures = model.metrics(self.reference, self.labels, self.reference)
        if metric not in figures:
            raise ValueError(f"search: model {getattr(model, 'name', '?')!r} has no metric "
                             f"{metric!r}; its metrics: {', '.join(figures)}")  # fmt: skip
        self.float32 = float(figures[metric])
        self.shapes, self.cost_model, self.progress = shapes, cost_model, progress
        self._metrics: dict = {}
        self.evaluations = 0

    def _run(self, ops):
        return run_batches(self.model, ops, self.inputs, self.count, self.batch_size)

    def policy(self, layers: dict) -> LayerPolicy:
        return self.base.with_rules(
            [{"pattern": escape_pattern(name), **s} for name, s in layers.items()]
        )

    def metric_of(self, layers: dict) -> float:
        key = _key(layers)
        if key not in self._metrics:
            policy = self.policy(layers)
            runs = [self.model.metrics(self._run(TileOps(policy, seed=s)), self.labels,
                                       self.reference)[self.metric] for s in self.seeds]
            self._metrics[key] = float(np.mean(runs))
            self.evaluations += 1
            if self.progress is not None:
                self.progress.update(1)
        return self._metrics[key]

    def cost_of(self, layers: dict, batch: int):
        policy = self.policy(layers)
        priced = self.cost_model.network((shape, policy.config(name))
                                         for name, shape in self.shapes)  # fmt: skip
        return priced.energy_j / batch, priced.latency_s

    def point(self, label: str, layers: dict, batch: int) -> Point:
        energy, latency = self.cost_of(layers, batch)
        return Point(label, {k: dict(v) for k, v in layers.items()}, self.metric_of(layers),
                     energy, latency)  # fmt: skip


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
           validate=None, progress=None,
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
        :attr:`SearchResult.validation`.
    progress : tqdm-like, optional
        Its ``update(1)`` is called after each measurement.
    model_name : str, optional
        The name the result carries (the model's ``name`` by default).

    Raises
    ------
    BudgetError
        Uniform 8/8/8 with calibrated gains (the start) already misses the budget.
    ValueError
        Unknown metric or objective, bad budget, seeds, batch or bits.
    """
    start = time.perf_counter()
    if objective not in OBJECTIVES:
        raise ValueError(f"search: objective must be one of {OBJECTIVES}, got {objective!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(
            budget):  # fmt: skip
        raise ValueError(f"search: budget must be a finite number, got {budget!r}")
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
    measure = _Measure(model, metric, base, shapes, cost_model, 0, count, seeds, progress)
    history: list = []

    uniform8 = _calibrated(model, measure, _uniform(names, 8, 8, 8), criterion, seeds[0])
    uniform6 = _calibrated(model, measure, _uniform(names, 6, 6, 8), criterion, seeds[0])
    points = [measure.point("uniform 8/8/8", uniform8, batch),
              measure.point("uniform 6/6/8", uniform6, batch)]
    target = measure.float32 - budget
    if points[0].metric < target:
        closest = max(points, key=lambda p: p.metric)
        raise BudgetError(
            f"no configuration meets the budget: {metric} must be >= {target:.6g} (float32 "
            f"{measure.float32:.6g} - budget {budget:g}) but the search starts from uniform "
            f"8/8/8, which measures {points[0].metric:.6g}; the closest point is "
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

    def push(name, knob):
        if (name, knob) in frozen or current[name][knob] <= min_bits:
            return
        trial = moved(current, name, knob)
        p = measure.point(f"{name}.{knob}={trial[name][knob]}", trial, batch)
        points.append(p)
        heapq.heappush(heap, (_score(cur_cost - p.cost(objective), cur_metric - p.metric),
                              version, name, knob, p))  # fmt: skip

    for name in names:
        for knob in KNOBS:
            push(name, knob)
    while heap:
        score, scored_at, name, knob, p = heapq.heappop(heap)
        if scored_at != version:  # scored before the last accepted move: measure again
            push(name, knob)
            continue
        if p.metric < target or p.cost(objective) >= cur_cost:
            frozen.add((name, knob))
            history.append({"move": p.label, "metric": p.metric, "accepted": False})
            continue
        current, cur_metric, cur_cost, version = p.layers, p.metric, p.cost(objective), \
            version + 1  # fmt: skip
        history.append({"move": p.label, "metric": p.metric, "accepted": True,
                        "energy_j": p.energy_j, "latency_s": p.latency_s})  # fmt: skip
        push(name, knob)

    best = next(p for p in points if p.layers == current)
    regained = _calibrated(model, measure, current, criterion, seeds[0])
    if regained != current:
        again = measure.point("searched, gains calibrated again", regained, batch)
        points.append(again)
        if again.metric > best.metric:
            best = again
    best = Point("searched", best.layers, best.metric, best.energy_j, best.latency_s)
    validation = None
    if validate is not None and count < total:
        held_out = _Measure(model, metric, base, shapes, cost_model, count,
                            min(count + validate, total), seeds, progress)  # fmt: skip
        validation = {"samples": held_out.count, "float32": held_out.float32,
                      **{p.label: held_out.metric_of(p.layers)
                         for p in (points[0], points[1], best)}}  # fmt: skip
    return SearchResult(
        model=model_name or getattr(model, "name", type(model).__name__), metric_name=metric,
        objective=objective,
        float32=measure.float32, budget=float(budget), samples=measure.count, seeds=seeds,
        batch=batch, tile=config.to_dict(), best=best, uniform8=points[0], uniform6=points[1],
        points=points, cost_model=cost_model, seconds=time.perf_counter() - start,
        evaluations=measure.evaluations, history=history, validation=validation,
    )  # fmt: skip
