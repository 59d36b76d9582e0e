"""Per-layer gain calibration from one batch.

Two criteria, both measured on one calibration batch against float32:

``criterion="layer"``: a float32 forward pass over the batch records every layer's inputs. Then,
layer by layer and independently of the others, each candidate gain G runs that layer's recorded
calls through the tile (:class:`~simulator.nn.TileOps`, the layer's own configuration from the
policy with only G changed, the run's seed and noise) and G is the candidate with the smallest
squared error of the layer's product (before its bias) against the float32 product of the same
inputs, summed over the layer's calls; ties go to the earlier candidate.

``criterion="output"`` (the default) refines that choice against what the network delivers: the
squared error of the model's final output on the tile against its float32 output, over the
batch. It starts from the best of the layer-wise choice and every single global gain (the same
G for all calibrated layers), then makes one pass over the layers in forward order, trying each
candidate for one layer with the others fixed and keeping it only when the output error falls.
So on the calibration batch its output error is never above the best single global gain's. It
costs about (layers x candidates) tile forward passes of the batch.

The result is the policy with one exact-name rule ``gain = G`` per calibrated layer appended (so
it wins).

Candidates: by default the powers of two 1 to 64, the gains an analog gain stage selected by a
digital code provides; any finite positive reals may be given instead (e.g.
``numpy.geomspace(1, 64, 25)``) for a tile whose gain is continuous.

Layers kept in float32 by the policy, and matmuls not opted in, are not calibrated.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from simulator.nn.ops import Float32Ops, TileOps
from simulator.nn.policy import LayerPolicy, as_policy, escape_pattern
from simulator.nn.stats import format_table

__all__ = ["CRITERIA", "POWERS_OF_TWO", "CalibrationResult", "RecordingOps", "calibrate"]

POWERS_OF_TWO = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
CRITERIA = ("layer", "output")
_PRODUCTS = ("linear", "conv1d", "conv2d", "matmul")


class RecordingOps(Float32Ops):
    """Float32 ops that record every product call (without its bias): ``calls[name]`` is a
    list of ``(method, args, kwargs)`` to replay on another ``ops``."""

    def __init__(self):
        super().__init__()
        self.calls: dict[str, list] = {}

    def _recorded(method):
        def call(self, name, *args, **kwargs):
            out = getattr(Float32Ops, method)(self, name, *args, **kwargs)
            # copies, in case the model reuses its buffers; the bias is not replayed
            args = tuple(np.array(a) if isinstance(a, np.ndarray) else a for a in args)
            replay = dict(kwargs)
            if method != "matmul":
                args = args[:2] + (None,) + args[3:] if len(args) > 2 else args
                replay.pop("b", None)
            self.calls.setdefault(name, []).append((method, args, replay))
            return out

        call.__name__ = method
        call.__doc__ = getattr(Float32Ops, method).__doc__
        return call

    linear = _recorded("linear")
    conv1d = _recorded("conv1d")
    conv2d = _recorded("conv2d")
    matmul = _recorded("matmul")
    del _recorded


@dataclass
class CalibrationResult:
    """What :func:`calibrate` chose and why.

    Attributes
    ----------
    policy : LayerPolicy
        The input policy with one ``gain`` rule per calibrated layer appended.
    gains : dict
        Layer name to the chosen gain.
    errors : dict
        Layer name to ``{gain: squared error}`` of the layer's product for every candidate.
    criterion : str
        ``"layer"`` or ``"output"``.
    output_error : float or None
        With ``criterion="output"``: the squared error of the model's output under the chosen
        gains; ``None`` otherwise.
    best_global : tuple or None
        With ``criterion="output"``: ``(gain, output squared error)`` of the best single
        global gain, the figure the chosen gains never exceed.
    seconds : float
        Wall time of the calibration (float32 recording pass included).
    """

    policy: LayerPolicy
    gains: dict
    errors: dict = field(repr=False)
    seconds: float
    criterion: str = "layer"
    output_error: float | None = None
    best_global: tuple | None = None

    def rows(self) -> list[dict]:
        out = []
        for name, gain in self.gains.items():
            errs = self.errors[name]
            worst = max(errs, key=errs.get)
            out.append({"layer": name, "gain": gain, "sq_error": errs[gain],
                        "worst_gain": worst, "worst_sq_error": errs[worst]})
        return out

    def table(self) -> str:
        return format_table(self.rows())

    def to_dict(self) -> dict:
        return {"seconds": self.seconds, "criterion": self.criterion, "gains": dict(self.gains),
                "output_error": self.output_error, "best_global": self.best_global,
                "errors": {k: {str(g): e for g, e in v.items()} for k, v in self.errors.items()}}


def _check_gains(gains) -> tuple[float, ...]:
    values = tuple(gains)
    if not values:
        raise ValueError("calibrate: no candidate gains given")
    for g in values:
        if isinstance(g, bool) or not isinstance(g, (int, float, np.integer, np.floating)):
            raise ValueError(f"calibrate: candidate gain {g!r} is not a real number")
        if not math.isfinite(g) or g <= 0:
            raise ValueError(f"calibrate: candidate gain {g!r} must be finite and > 0")
    return tuple(float(g) for g in values)


def _check_seeds(seed) -> tuple:
    seeds = (seed,) if seed is None or isinstance(seed, (int, np.integer)) else tuple(seed)
    if not seeds:
        raise ValueError("calibrate: no noise seed given")
    for s in seeds:
        if s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer))):
            raise ValueError(f"calibrate: noise seed {s!r} is not an integer")
    return seeds


def _squared_error(ops, calls, reference) -> float:
    total = 0.0
    for (method, args, kwargs), ref in zip(calls, reference, strict=True):
        diff = getattr(ops, method)(*args, **kwargs).astype(np.float64) - ref
        total += float(np.sum(diff * diff))
    return total


def _gain_rules(gains: dict) -> list[dict]:
    return [{"pattern": escape_pattern(name), "gain": g} for name, g in gains.items()]


def _refine_on_output(forward, batch, policy, chosen, candidates, seeds):
    """``criterion="output"``: (gains, output error, (best global gain, its error))."""
    reference = np.asarray(forward(Float32Ops(), batch), np.float64)

    def output_error(gains: dict) -> float:
        trial = policy.with_rules(_gain_rules(gains))
        total = 0.0
        for seed in seeds:
            diff = np.asarray(forward(TileOps(trial, seed=seed), batch), np.float64) - reference
            total += float(np.sum(diff * diff))
        return total

    global_errors = {g: output_error(dict.fromkeys(chosen, g)) for g in candidates}
    best_global = min(candidates, key=global_errors.get)
    current, best = dict(chosen), output_error(chosen)
    if global_errors[best_global] < best:
        current, best = dict.fromkeys(chosen, best_global), global_errors[best_global]
    for name in chosen:
        for gain in candidates:
            if gain == current[name]:
                continue
            error = output_error({**current, name: gain})
            if error < best:
                current, best = {**current, name: gain}, error
    return current, best, (best_global, global_errors[best_global])


def calibrate(forward, batch, policy, gains=POWERS_OF_TWO, seed=None,
              criterion="output") -> CalibrationResult:  # fmt: skip
    """Choose each layer's gain from one batch (criterion in the module docstring).

    Parameters
    ----------
    forward : callable
        ``forward(ops, batch)``, a model's forward pass over ``ops`` (e.g. ``model.forward``).
    batch
        The calibration batch (e.g. ``model.calibration_batch()``).
    policy : LayerPolicy or TileConfig
        The configuration to calibrate; only the gains change.
    gains : iterable of float
        Candidate gains, powers of two 1..64 by default.
    seed : int or sequence of int, optional
        Noise seed of the tile runs (as :class:`TileOps`); with several, every error is the sum
        over the seeds, so the choice does not follow one noise draw.
    criterion : {"output", "layer"}
        What the gains minimise (module docstring).

    Returns
    -------
    CalibrationResult
    """
    start = time.perf_counter()
    if criterion not in CRITERIA:
        raise ValueError(f"calibrate: criterion must be one of {CRITERIA}, got {criterion!r}")
    policy = as_policy(policy)
    candidates = _check_gains(gains)
    seeds = _check_seeds(seed)
    recorder = RecordingOps()
    forward(recorder, batch)
    chosen, errors = {}, {}
    reference_ops = Float32Ops()
    for name, calls in recorder.calls.items():
        settings = policy.settings(name)
        is_matmul = calls[0][0] == "matmul"
        if settings.float32 or (is_matmul and not settings.matmul):
            continue
        replays = [(method, (name,) + args, kwargs) for method, args, kwargs in calls]
        reference = [getattr(reference_ops, m)(*a, **k).astype(np.float64) for m, a, k in replays]
        errors[name] = {}
        for gain in candidates:
            trial = policy.with_rules([{"pattern": escape_pattern(name), "gain": gain}])
            errors[name][gain] = sum(_squared_error(TileOps(trial, seed=s), replays, reference)
                                     for s in seeds)  # fmt: skip
        chosen[name] = min(candidates, key=lambda g: errors[name][g])  # first of equal minima
    output_error = best_global = None
    if criterion == "output" and chosen:
        chosen, output_error, best_global = _refine_on_output(
            forward, batch, policy, chosen, candidates, seeds
        )
    calibrated = policy.with_rules(_gain_rules(chosen))
    return CalibrationResult(calibrated, chosen, errors, time.perf_counter() - start,
                             criterion, output_error, best_global)  # fmt: skip
