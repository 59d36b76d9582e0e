"""Value and bit-pattern generators shared by the directed and random stimulus of every kind.

Depends only on :mod:`simulator`; every function takes the format it draws from.
"""

from __future__ import annotations

import numpy as np

from simulator import FloatFormat
from simulator.formats import round_to, to_bits

__all__ = ["finite_patterns", "typical", "scale_specials", "bits_of", "is_tie"]


def finite_patterns(rng, fmt: FloatFormat, shape, signed=True) -> np.ndarray:
    """Uniformly random finite bit patterns of ``fmt`` (every exponent, subnormals included)."""
    exp = rng.integers(0, (1 << fmt.exp_bits) - 1, shape, dtype=np.int64)
    man = rng.integers(0, 1 << fmt.man_bits, shape, dtype=np.int64)
    sign = rng.integers(0, 2, shape, dtype=np.int64) if signed else np.zeros(shape, np.int64)
    return (sign << (fmt.exp_bits + fmt.man_bits)) | (exp << fmt.man_bits) | man


def typical(rng, fmt: FloatFormat, shape, spread: int, signed=True) -> np.ndarray:
    """Values of ``fmt``: normal mantissas times powers of two within ``spread`` of 1."""
    lo = max(-spread, 1 - fmt.bias)
    hi = min(spread, fmt.bias)
    mag = rng.uniform(1.0, 2.0, shape) * np.exp2(rng.integers(lo, hi + 1, shape))
    if signed:
        mag = mag * rng.choice([-1.0, 1.0], shape)
    return round_to(mag, fmt)


def scale_specials(fmt: FloatFormat) -> np.ndarray:
    """Positive corner patterns of ``fmt``: +0, the smallest and largest subnormal, the
    smallest normal, 1, the largest finite, +inf and the canonical NaN (in that order)."""
    bits = [
        0,
        1,
        (1 << fmt.man_bits) - 1,
        1 << fmt.man_bits,
        fmt.bias << fmt.man_bits,
        (((1 << fmt.exp_bits) - 1) << fmt.man_bits) - 1,
        ((1 << fmt.exp_bits) - 1) << fmt.man_bits,
        fmt.canonical_nan_bits,
    ]
    return np.asarray(bits, np.int64)


def bits_of(values, fmt: FloatFormat) -> np.ndarray:
    """int64 bit patterns of ``fmt`` values."""
    return to_bits(np.asarray(values, np.float32), fmt).astype(np.int64)


def _significant_bits(values) -> np.ndarray:
    """Significand width of finite non-zero float64 values (lowest set bit to highest)."""
    mant, _ = np.frexp(np.abs(np.asarray(values, np.float64)))
    whole = np.ldexp(mant, 53).astype(np.int64)
    low = whole & -whole
    return 53 - np.log2(np.where(low == 0, 1, low)).astype(np.int64)


def is_tie(values, fmt: FloatFormat) -> np.ndarray:
    """Normal values exactly halfway between two neighbours of ``fmt``."""
    v = np.asarray(values, np.float64)
    normal = np.isfinite(v) & (np.abs(v) >= 2.0 ** (1 - fmt.bias)) & (np.abs(v) <= fmt.max_finite)
    return normal & (_significant_bits(np.where(normal, v, 1.0)) == fmt.man_bits + 2)
