"""The Pareto plot of a search: the metric against energy and against latency (matplotlib)."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from simulator.search import SearchResult

__all__ = ["plot"]

_PANELS = (("energy", "energy per sample (µJ, log scale)", 1e6, "log"),
           ("latency", "latency (µs)", 1e6, "linear"))


def plot(result: SearchResult, stem) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` (each atomically); returns their paths.

    Each panel shows every measured point, the Pareto front of that panel's cost, uniform
    8/8/8 and 6/6/8 (calibrated gains) and the point the search chose with bars of ``z``
    standard errors of their difference from float32, float32 and the budget; with a
    validation, a box gives the held-out figures and the savings against uniform 8/8/8.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(stem)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    for ax, (objective, label, scale, xscale) in zip(axes, _PANELS, strict=True):
        points = result.points
        ax.scatter([p.cost(objective) * scale for p in points], [p.metric for p in points],
                   s=14, color="0.7", label="measured configurations", zorder=1)  # fmt: skip
        front = result.front(objective)
        ax.step([p.cost(objective) * scale for p in front], [p.metric for p in front],
                where="post", color="tab:blue", marker="o", ms=4, label="Pareto front",
                zorder=2)  # fmt: skip
        for p, marker, color in ((result.uniform8, "s", "tab:red"),
                                 (result.uniform6, "D", "tab:orange"),
                                 (result.best, "*", "tab:green")):  # fmt: skip
            name = p.label if p is not result.best else "searched (per layer)"
            ax.scatter([p.cost(objective) * scale], [p.metric], marker=marker, s=110,
                       color=color, edgecolor="black", label=name, zorder=3)  # fmt: skip
            if result.z and math.isfinite(p.stderr):
                ax.errorbar([p.cost(objective) * scale], [p.metric], yerr=[[result.z * p.stderr],
                            [0]], color=color, capsize=4, lw=1.2, zorder=3)  # fmt: skip
        ax.axhline(result.float32, color="black", lw=0.8, ls="--", label="float32")
        ax.axhline(result.target, color="tab:green", lw=0.8, ls=":",
                   label=f"budget (float32 - {result.budget:g})")  # fmt: skip
        ax.set_xscale(xscale)
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(f"{result.metric_name} ({result.samples} samples searched)")
    if result.validation is not None:
        axes[0].text(0.40, 0.03, _held_out(result), transform=axes[0].transAxes, fontsize=7.5,
                     va="bottom", family="monospace",
                     bbox={"facecolor": "white", "edgecolor": "0.6", "alpha": 0.9})
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{result.model}: per-layer (bx, bw, by, G) search, n = {result.tile['n']}, "
                 f"objective {result.objective}")  # fmt: skip
    fig.tight_layout()
    umask = os.umask(0)
    os.umask(umask)
    written = []
    for suffix in (".png", ".svg"):
        path = stem.with_suffix(suffix)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, dpi=130)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the figure from others
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        written.append(path)
    plt.close(fig)
    return written


def _held_out(result: SearchResult) -> str:
    v, saved = result.validation, result.savings()
    lines = [f"held out, {v['samples']} samples: {result.metric_name}",
             *(f"  {label:<14}{v[label]:.4f}"
               for label in ("float32", "uniform 8/8/8", "uniform 6/6/8", "searched"))]
    for label, d in v.get("searched minus", {}).items():
        lines.append(f"  searched - {label}: {d['difference']:+.4f} (se {d['stderr']:.4f})"
                     + ("" if d.get("within_budget", True) else ", outside the budget"))
    lines.append(f"vs uniform 8/8/8: {saved['energy']:.2f}x less energy, "
                 f"{saved['latency']:.2f}x less latency")
    return "\n".join(lines)
