"""Per-layer statistics of a run on the tile, and the text tables of :mod:`simulator.nn`.

Definitions (one row per layer, accumulated over every call of that layer):

- ``clip_rate``: fraction of ADC codes equal to ``+-M(by)``, the ADC's full scale
  (docs/arithmetic.md step 7);
- ``codes_used``: distinct ADC codes seen divided by the ``2 * M(by) + 1`` codes there are;
- ``x_scale_min/max``: smallest and largest nonzero input block scale (step 2);
- ``w_scale_min/max``: smallest and largest nonzero weight block scale;
- ``sqnr_db``: ``10 log10(sum(ref**2) / sum((y - ref)**2))`` of the layer's tile product ``y``
  (before the bias) against ``ref``, the float32 product of the same inputs; ``inf`` if equal.

The ADC and input-scale figures come from :func:`simulator.abfp_linear` ``trace=True`` run on
a sample, the first ``sample_rows`` rows of each call with their absolute batch rows (so the
codes are exactly those of the run); the weight scales and the SQNR cover every row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["LayerStats", "format_table", "sqnr_db"]


def sqnr_db(reference, value) -> float:
    """Signal-to-quantization-noise ratio of ``value`` against ``reference``, in dB."""
    ref = np.asarray(reference, np.float64)
    err = np.asarray(value, np.float64) - ref
    return _ratio_db(float(np.sum(ref * ref)), float(np.sum(err * err)))


def _ratio_db(signal: float, error: float) -> float:
    if error == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / error)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: Iterable[Mapping]) -> str:
    """Rows of dicts as an aligned text table (columns in first-seen key order)."""
    rows = list(rows)
    columns: list = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(str(c))] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _nonzero_range(values, lo: float, hi: float) -> tuple[float, float]:
    nz = np.abs(np.asarray(values, np.float64))
    nz = nz[nz != 0]
    if nz.size == 0:
        return lo, hi
    return min(lo, float(nz.min())), max(hi, float(nz.max()))


class LayerStats:
    """Accumulates the statistics of one layer over its calls (see the module docstring)."""

    def __init__(self, name: str, config):
        self.name = name
        self.config = config
        self.calls = 0
        self.rows = 0
        self.traced_codes = 0
        self.clipped = 0
        self.used = np.zeros(2 * config.my + 1, bool)
        self.x_scale = (math.inf, -math.inf)
        self.w_scale = (math.inf, -math.inf)
        self.signal = 0.0
        self.error = 0.0

    def add_trace(self, trace) -> None:
        """Count the ADC codes and input scales of a traced sample."""
        codes = trace.adc_code.ravel()
        self.traced_codes += codes.size
        self.clipped += int(np.count_nonzero(np.abs(codes) == self.config.my))
        self.used[np.unique(codes) + self.config.my] = True
        self.x_scale = _nonzero_range(trace.x_scale, *self.x_scale)

    def add_weight_scales(self, scales) -> None:
        self.w_scale = _nonzero_range(scales, *self.w_scale)

    def add_output(self, y, reference) -> None:
        """Add one call's tile product ``y`` and its float32 reference to the SQNR sums."""
        ref = np.asarray(reference, np.float64)
        err = np.asarray(y, np.float64) - ref
        self.calls += 1
        self.rows += int(np.prod(ref.shape[:-1]))
        self.signal += float(np.sum(ref * ref))
        self.error += float(np.sum(err * err))

    def row(self) -> dict:
        """The layer's figures as a plain dict (NaN where nothing was traced)."""
        traced = self.traced_codes
        scale = {}
        for key, (lo, hi) in (("x_scale", self.x_scale), ("w_scale", self.w_scale)):
            finite = lo <= hi
            scale[f"{key}_min"] = lo if finite else math.nan
            scale[f"{key}_max"] = hi if finite else math.nan
        c = self.config
        return {
            "layer": self.name,
            "n": c.n,
            "bits": f"{c.bx}/{c.bw}/{c.by}",
            "gain": c.gain,
            "calls": self.calls,
            "rows": self.rows,
            "traced_codes": traced,
            "clip_rate": self.clipped / traced if traced else math.nan,
            "codes_used": float(self.used.mean()) if traced else math.nan,
            **scale,
            "sqnr_db": _ratio_db(self.signal, self.error),
        }
