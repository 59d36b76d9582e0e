"""The ``input`` kind: n-element vectors for ``abfp_input_unit`` (docs/arithmetic.md steps
2-3 for x), random ones then the directed cases of :mod:`golden.directed`."""

from __future__ import annotations

import numpy as np

from golden import directed
from golden import layout as lay
from golden.kinds.common import FileSpec, Kind, UnitSet, assemble
from golden.values import bits_of, finite_patterns
from simulator import TileConfig, quantize_inputs
from simulator.formats import from_bits, round_to

__all__ = ["KIND", "input_expected", "input_set", "nonfinite_vector"]


def nonfinite_vector(cfg: TileConfig, n: int) -> tuple[int, np.ndarray]:
    """The input unit's answer to a vector holding an inf or NaN (``docs/rtl_input_unit.md``).

    The scale is the canonical NaN of ``scale_fmt`` and every code is zero (the unit also
    raises its sticky ``nonfinite_o``).

    Returns
    -------
    scale_bits : int
    codes : numpy.ndarray
        int64 (n,) zeros.
    """
    return cfg.scale_fmt.canonical_nan_bits, np.zeros(n, np.int64)


def input_expected(cfg: TileConfig, x_bits: np.ndarray) -> dict:
    """Codes, scale and sticky flag of the input unit for vectors of ``in_fmt`` bit patterns."""
    values = from_bits(x_bits, cfg.in_fmt)
    nonfinite = ~np.isfinite(values).all(axis=1)
    finite_rows = np.where(nonfinite[:, None], np.float32(0), values)
    codes, scales = quantize_inputs(finite_rows, cfg)
    codes = codes[:, 0, :].astype(np.int64)
    sx = bits_of(scales[:, 0], cfg.scale_fmt)
    nan_scale, zero_codes = nonfinite_vector(cfg, cfg.n)
    sx[nonfinite] = nan_scale
    codes[nonfinite] = zero_codes
    sticky = np.logical_or.accumulate(nonfinite).astype(np.int64)
    return {"code": codes, "sx": sx[:, None], "nonfinite": sticky[:, None]}


def _random_vectors(cfg: TileConfig, rng, count: int) -> np.ndarray:
    """Gaussian elements over a wide exponent range, 15 % uniformly random finite patterns."""
    fmt, n = cfg.in_fmt, cfg.n
    wide = finite_patterns(rng, fmt, (count, n))
    spread = rng.integers(0, 12, (count, 1))
    centre = rng.integers(-30, 31, (count, 1))
    # Gaussian elements around 2**centre, each scaled down by up to 2**spread.
    shrink = rng.integers(0, spread + 1, (count, n))
    mag = rng.standard_normal((count, n)) * np.exp2(centre - shrink)
    lo, hi = fmt.min_subnormal, fmt.max_finite
    typical = bits_of(round_to(np.sign(mag) * np.clip(np.abs(mag), 0, hi), fmt), fmt)
    typical[np.abs(mag) < lo / 4] = 0
    use_wide = rng.random((count, 1)) < 0.15
    return np.where(use_wide, wide, typical)


def input_set(cfg: TileConfig, rng, count: int, generator=None, progress=None) -> UnitSet:
    """Vectors for ``abfp_input_unit``: ``count`` random ones, then the directed cases."""
    return assemble(_random_vectors(cfg, rng, count), directed.input_cases(cfg, rng),
                    lambda x: input_expected(cfg, x), "x", "stimulus")  # fmt: skip


KIND = Kind(
    name="input",
    build=input_set,
    files=(FileSpec("input_stimulus.hex", "stimulus", lay.input_stimulus, "input"),
           FileSpec("input_expected.hex", "expected", lay.input_expected, "input")),
    counts={"transactions": "stimulus"},
    max_count=1 << 24,
    # Patterns, values, random draws and the packed text of the n elements: measured at about
    # 140 B per element (18 KB per vector at n = 128).
    memory_per_transaction=lambda cfg, lanes: 140 * cfg.n,
    bench_top="golden_tb_input_unit",
    rtl_units=("input",),
    rescale_constant=False,
    depths={"MAX_TRANSACTIONS": "transactions"},
    file_plusargs={"STIMULUS": "stimulus", "EXPECTED": "expected"},
    count_plusargs={"TRANSACTIONS": "transactions"},
)  # fmt: skip
