"""Relative error of the ABFP tile on the paper's Appendix A workload, as a markdown table.

Usage: ``.venv/bin/python tests/paper_table.py [--rows 400] [--seed 0] [--noise uniform]``

Workload: 768x768 weights drawn from a Laplace distribution and 16*25 = 400 input vectors of
768 drawn from a standard normal distribution (a BERT-Base projection's shape). The error of
one configuration is ``||y - y_fp32|| / ||y_fp32||`` over the whole output, with ``y_fp32``
the float64 product of the float32 operands.
"""

from __future__ import annotations

import argparse

import numpy as np

from simulator import TileConfig, abfp_linear

TILE_WIDTHS = (8, 32, 128)
GAINS = (1, 2, 4, 8, 16)


def appendix_a_workload(rows: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (rows, 768) ~ N(0, 1) and weights (768, 768) ~ Laplace(0, 1), float32.

    Parameters
    ----------
    rows : int
        Input vectors (the paper uses 16 * 25 = 400).
    seed : int
        Seed of NumPy's generator.

    Returns
    -------
    tuple of numpy.ndarray
        ``(x, w)``.
    """
    rng = np.random.default_rng(seed)
    w = rng.laplace(size=(768, 768)).astype(np.float32)
    x = rng.standard_normal((rows, 768)).astype(np.float32)
    return x, w


def relative_error(x: np.ndarray, w: np.ndarray, cfg: TileConfig) -> float:
    """``||abfp_linear(x, w) - x w^T|| / ||x w^T||`` (Frobenius norms, float64).

    Parameters
    ----------
    x, w : numpy.ndarray
        Inputs (B, K) and weights (N, K).
    cfg : TileConfig

    Returns
    -------
    float
    """
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    y = abfp_linear(x, w, cfg).astype(np.float64)
    return float(np.linalg.norm(y - exact) / np.linalg.norm(exact))


def error_table(rows: int, seed: int, noise: str) -> str:
    """Markdown table of relative error over tile width n and gain G (8/8/8; noise ``none``
    or ``uniform`` of width 1 ADC LSB, the paper's)."""
    x, w = appendix_a_workload(rows, seed)
    lines = [
        "| n | " + " | ".join(f"G={g}" for g in GAINS) + " |",
        "|---|" + "---|" * len(GAINS),
    ]
    for n in TILE_WIDTHS:
        cells = []
        for gain in GAINS:
            cfg = TileConfig(n=n, bx=8, bw=8, by=8, gain=gain, noise=noise,
                             noise_amplitude=1.0)  # fmt: skip
            cells.append(f"{relative_error(x, w, cfg):.4f}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400, help="input vectors (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    parser.add_argument("--noise", choices=("uniform", "none"), default="uniform",
                        help="analog noise (default uniform, width 1 ADC LSB)")  # fmt: skip
    args = parser.parse_args()
    print(error_table(args.rows, args.seed, args.noise))


if __name__ == "__main__":
    main()
