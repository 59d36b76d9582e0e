"""Figures of a sweep's results (matplotlib, Agg), each written as PNG and SVG.

- :func:`heatmaps`: per model, Table II's shape: rows n, columns G, one panel per bit setting,
  each cell the metric's mean over seeds, an asterisk and a frame where it is at least 99% of
  float32 (the paper's mark);
- :func:`curves`: per model, the metric against G, one line per (n, bits), the band from the
  smallest to the largest seed's value;
- :func:`layer_bars`: per model, each layer's ADC clipping rate and SQNR for every G, one panel
  column per n.

Rows whose other axes (noise, formats, ...) or calibration state differ go to separate figures,
named by those values. A grid without ``n`` or ``gain`` has no heat map or curve.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.sweep.results import read_rows

__all__ = ["Figure", "MARK_FRACTION", "curves", "heatmaps", "layer_bars", "plot_results"]

MARK_FRACTION = 0.99  # the paper's mark: at least 99% of the float32 metric
_TABLE_AXES = ("n", "gain", "bits")
FORMATS = ("png", "svg")


@dataclass
class Figure:
    """A written figure: its PNG path (an SVG beside it) and, for heat maps, the marked cells."""

    path: Path
    marks: int = 0

    @property
    def note(self) -> str:
        heat_map = self.path.stem.startswith("heatmap")
        return f": {self.marks} cell(s) >= 99% of float32" if heat_map else ""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _number(label: str) -> float:
    return float(label)


def _groups(rows: list[dict], metric: str | None):
    """Rows by (model, calibration state, other axes): each group one set of figures."""
    groups = defaultdict(list)
    for row in rows:
        other = tuple((k, v) for k, v in row["axes"].items() if k not in _TABLE_AXES)
        groups[(row["model"], row["calibrate"], other)].append(row)
    for (model, calibrated, other), members in groups.items():
        name = metric or members[0]["metric"]
        parts = [model, name] + (["calibrated"] if calibrated else [])
        parts += [f"{k}-{v}" for k, v in other]
        slug = re.sub(r"[^A-Za-z0-9.=-]+", "_", "_".join(parts))
        title = ", ".join([f"{model}: {name}"] + (["calibrated gains"] if calibrated else [])
                          + [f"{k} {v}" for k, v in other])  # fmt: skip
        yield slug, title, name, members


def _value(row: dict, metric: str) -> float:
    if metric not in row["metrics"]:
        raise ValueError(f"metric {metric!r} is not in the results of {row['model']} "
                         f"(it has {', '.join(row['metrics'])})")  # fmt: skip
    return float(row["metrics"][metric])


def _save(fig, out: Path, stem: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for fmt in FORMATS:
        fig.savefig(out / f"{stem}.{fmt}", format=fmt, dpi=110, bbox_inches="tight")
    return out / f"{stem}.{FORMATS[0]}"


def _axis_values(rows, name: str) -> list[str]:
    values = dict.fromkeys(r["axes"][name] for r in rows)
    return sorted(values, key=_number) if name in ("n", "gain") else list(values)


def _seed_stats(rows: list[dict], metric: str) -> dict:
    """(n, gain, bits) -> (mean, min, max) of the metric over seeds, and the float32 value."""
    by_point = defaultdict(list)
    for row in rows:
        point = tuple(row["axes"].get(k, "-") for k in _TABLE_AXES)
        by_point[point].append(_value(row, metric))
    reference = float(rows[0]["float32_metrics"][metric])
    return {p: (float(np.mean(v)), min(v), max(v)) for p, v in by_point.items()}, reference


def heatmaps(rows: list[dict], out, metric: str | None = None) -> list[Figure]:
    """One heat map figure per model (and per value of the other axes); see the module."""
    plt = _pyplot()
    figures = []
    for slug, title, name, members in _groups(rows, metric):
        if not {"n", "gain"} <= set(members[0]["axes"]):
            continue
        stats, reference = _seed_stats(members, name)
        widths, gains = _axis_values(members, "n"), _axis_values(members, "gain")
        bits = _axis_values(members, "bits") if "bits" in members[0]["axes"] else ["-"]
        grids = np.full((len(bits), len(widths), len(gains)), np.nan)
        for (n, g, b), (mean, _, _) in stats.items():
            grids[bits.index(b), widths.index(n), gains.index(g)] = mean
        finite = grids[np.isfinite(grids)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        fig, axes = plt.subplots(1, len(bits), figsize=(1.2 + 1.1 * len(gains) * len(bits), 3.4),
                                 squeeze=False, constrained_layout=True)  # fmt: skip
        marks = 0
        for panel, (ax, b) in enumerate(zip(axes[0], bits, strict=True)):
            image = ax.imshow(grids[panel], cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
            for i in range(len(widths)):
                for j in range(len(gains)):
                    value = grids[panel, i, j]
                    if not np.isfinite(value):
                        continue
                    marked = np.isfinite(reference) and value >= MARK_FRACTION * reference
                    marks += bool(marked)
                    shade = image.cmap(image.norm(value))
                    ink = "black" if sum(shade[:3]) > 1.5 else "white"
                    ax.text(j, i, f"{value:.3g}{'*' if marked else ''}", ha="center",
                            va="center", color=ink, fontsize=8,
                            fontweight="bold" if marked else "normal")  # fmt: skip
                    if marked:
                        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                                   edgecolor="red", linewidth=1.5))  # fmt: skip
            ax.set_xticks(range(len(gains)), gains)
            ax.set_yticks(range(len(widths)), widths)
            ax.set_xlabel("gain G")
            ax.set_title(f"bits {b.replace(',', '/')}" if b != "-" else "", fontsize=9)
        axes[0][0].set_ylabel("tile width n")
        fig.colorbar(image, ax=axes[0].tolist(), label=name, shrink=0.9)
        seeds = len({r["seed"] for r in members})
        fig.suptitle(f"{title} (float32 {reference:.4g}; mean of {seeds} seed(s), "
                     f"{members[0]['samples']} samples; * >= 99% of float32)",
                     fontsize=9)  # fmt: skip
        figures.append(Figure(_save(fig, Path(out), f"heatmap_{slug}"), marks))
        plt.close(fig)
    return figures


def curves(rows: list[dict], out, metric: str | None = None) -> list[Figure]:
    """Metric against G per model, one line per (n, bits), shaded between the seeds' extremes."""
    plt = _pyplot()
    figures = []
    for slug, title, name, members in _groups(rows, metric):
        if "gain" not in members[0]["axes"]:
            continue
        stats, reference = _seed_stats(members, name)
        fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
        lines = sorted({(p[0], p[2]) for p in stats},
                       key=lambda nb: (_number(nb[0]) if nb[0] != "-" else 0, nb[1]))  # fmt: skip
        for n, b in lines:
            points = sorted(((_number(p[1]), v) for p, v in stats.items()
                             if (p[0], p[2]) == (n, b)))  # fmt: skip
            g = [x for x, _ in points]
            mean, low, high = (np.array([v[k] for _, v in points]) for k in range(3))
            label = ", ".join(x for x in (f"n={n}" if n != "-" else "",
                                          f"bits {b.replace(',', '/')}" if b != "-" else "") if x)
            (line,) = ax.plot(g, mean, marker="o", label=label or None)
            ax.fill_between(g, low, high, color=line.get_color(), alpha=0.2)
        if np.isfinite(reference):
            ax.axhline(reference, color="black", linestyle="--", linewidth=1, label="float32")
            ax.axhline(MARK_FRACTION * reference, color="grey", linestyle=":", linewidth=1,
                       label="99% of float32")  # fmt: skip
        ax.set_xscale("log", base=2)
        ticks = sorted({_number(p[1]) for p in stats})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("gain G")
        ax.set_ylabel(name)
        ax.set_title(f"{title}: mean and range over seeds", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
        figures.append(Figure(_save(fig, Path(out), f"curves_{slug}")))
        plt.close(fig)
    return figures


def layer_bars(rows: list[dict], out, metric: str | None = None) -> list[Figure]:
    """Per-layer ADC clipping rate and SQNR (mean over seeds), bars per G, a column per n, at
    the first bit setting of the sweep."""
    plt = _pyplot()
    figures = []
    for slug, title, _, members in _groups(rows, metric):
        axes_of = members[0]["axes"]
        bits = _axis_values(members, "bits")[0] if "bits" in axes_of else None
        members = [r for r in members if bits is None or r["axes"]["bits"] == bits]
        widths = _axis_values(members, "n") if "n" in axes_of else ["-"]
        gains = _axis_values(members, "gain") if "gain" in axes_of else ["-"]
        layers = [entry["layer"] for entry in members[0]["layers"]]
        fig, axes = plt.subplots(2, len(widths), figsize=(1.5 + 0.5 * len(layers) * len(widths)
                                                          + 2 * len(widths), 5.2),
                                 squeeze=False, sharey="row", constrained_layout=True)  # fmt: skip
        width = 0.8 / len(gains)
        for col, n in enumerate(widths):
            for k, g in enumerate(gains):
                chosen = [r for r in members if r["axes"].get("n", "-") == n
                          and r["axes"].get("gain", "-") == g]  # fmt: skip
                if not chosen:
                    continue
                for row_axis, stat in enumerate(("clip_rate", "sqnr_db")):
                    values = [np.mean([r["layers"][i][stat] for r in chosen])
                              for i in range(len(layers))]  # fmt: skip
                    axes[row_axis][col].bar(np.arange(len(layers)) + (k - (len(gains) - 1) / 2)
                                            * width, values, width,
                                            label=f"G={g}")  # fmt: skip
            for row_axis, label in enumerate(("ADC clip rate", "SQNR (dB)")):
                ax = axes[row_axis][col]
                ax.set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=7)
                ax.set_ylabel(label)
                ax.set_title(f"n={n}" if n != "-" else "", fontsize=9)
            axes[0][col].set_ylim(bottom=0)
        axes[0][-1].legend(fontsize=7)
        suffix = f", bits {bits.replace(',', '/')}" if bits else ""
        fig.suptitle(f"{title.split(':')[0]}: per-layer statistics{suffix} (mean over seeds)",
                     fontsize=9)  # fmt: skip
        figures.append(Figure(_save(fig, Path(out), f"layers_{slug}")))
        plt.close(fig)
    return figures


def plot_results(results, out, metric: str | None = None) -> list[Figure]:
    """Every figure of a results file (``results.jsonl`` or its directory) into ``out``."""
    _, rows = read_rows(results)
    if not rows:
        raise ValueError(f"{results}: no finished cell to plot")
    return heatmaps(rows, out, metric) + curves(rows, out, metric) + layer_bars(rows, out, metric)
