"""Directed (hand-chosen) stimulus of the input and output units, one source for every bench.

The golden vector sets (``python -m golden``) and the cocotb benches draw their directed cases
from here. The API is small and stable:

``input_cases(cfg, rng, nonfinite=True) -> list[tuple[str, numpy.ndarray]]``
    Named cases, each an int64 array (rows, n) of ``cfg.in_fmt`` bit patterns, one row per
    n-element vector, in the order they are sent. The non-finite case comes last (the unit's
    flag is sticky) and is left out with ``nonfinite=False``.
``input_vectors(cfg, rng, nonfinite=True) -> list[tuple[str, numpy.ndarray]]``
    The same vectors one by one: ``(case name, (n,) int64 bit patterns)``.
``output_cases(cfg, rng, lanes) -> list[tuple[str, list[OutputRows]]]``
    Named cases of the output unit, each a list of :class:`OutputRows`: rows of T tiles of
    ``lanes`` lanes, given as ADC codes and scale *values* (float32 values of
    ``cfg.scale_fmt``), independent of any file layout. :meth:`OutputRows.tiles` gives them
    per row as (codes (lanes, T), w_scale (lanes, T), x_scale (T,)).

Every case is built for any configuration ``TileConfig`` accepts, n = 1 included; a case that
cannot exist for a configuration (``exact_ties`` when no input value gives an exact tie) is
left out. Random draws come from ``rng`` only, so a seed fixes the cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from golden.values import bits_of, is_tie, scale_specials, typical
from simulator import FP32, TileConfig, rescale_accumulate
from simulator.formats import from_bits, int_to_float, mul, round_to

__all__ = ["OutputRows", "input_cases", "input_vectors", "output_cases"]


# ---- input unit ------------------------------------------------------------------------


def _near_top(cfg: TileConfig, rng, rows: int) -> np.ndarray:
    """Random vectors whose exponents lie within bx+3 of a random top (10 % zeros)."""
    fmt, n = cfg.in_fmt, cfg.n
    exp_ones = (1 << fmt.exp_bits) - 1
    top = rng.integers(1, exp_ones, (rows, 1))
    exps = np.clip(top - rng.integers(0, cfg.bx + 3, (rows, n)), 0, exp_ones - 1)
    sign = rng.integers(0, 2, (rows, n))
    man = rng.integers(0, 1 << fmt.man_bits, (rows, n))
    vec = (sign << (fmt.width - 1)) | (exps << fmt.man_bits) | man
    vec[rng.random((rows, n)) < 0.1] = 0
    return vec.astype(np.int64)


def _with_max(cfg: TileConfig, rng, max_bits: int) -> np.ndarray:
    """One vector of random signs whose max-abs is the magnitude ``max_bits``: one element at
    a random position, the others up to 2^(man_bits+4) patterns below it."""
    fmt, n = cfg.in_fmt, cfg.n
    low = max(0, max_bits - (1 << (fmt.man_bits + 4)))
    mags = rng.integers(low, max_bits + 1, n)
    mags[rng.integers(0, n)] = max_bits
    return (rng.integers(0, 2, n) << (fmt.width - 1)) | mags


def _near(fmt, target: float) -> list[int]:
    """Finite magnitudes of ``fmt`` around ``target`` (the rounded one and two each side)."""
    centre = int(bits_of(round_to(np.array([target]), fmt), fmt)[0])
    limit = ((1 << fmt.exp_bits) - 1) << fmt.man_bits  # infinity's pattern
    return [b for b in range(centre - 2, centre + 3) if 0 <= b < limit]


def _exact_in(values, fmt) -> np.ndarray:
    """Which float64 ``values`` are finite values of ``fmt``."""
    values = np.asarray(values, np.float64)
    return np.isfinite(values) & (round_to(values, fmt).astype(np.float64) == values)


def _exact_tie(cfg: TileConfig, rng) -> np.ndarray | None:
    """A vector whose elements have exact quotients x * M / sx = k + 1/2, or None.

    With sx = ms * 2^e and an odd t, x = t * ms / M * 2^(e-1) has quotient t / 2; it is an
    input-format value when M divides t * ms and the significand fits. The max element is sx
    itself, so the scale is exact.
    """
    n, m, fmt, sfmt = cfg.n, cfg.mx, cfg.in_fmt, cfg.scale_fmt
    width = min(fmt.man_bits, sfmt.man_bits) + 1
    for _ in range(200):
        t0 = 2 * int(rng.integers(0, m)) + 1
        g = m // math.gcd(t0, m)
        if g >= 1 << width:
            continue
        ms = g * int(rng.integers(1, ((1 << width) - 1) // g + 1))
        step = m // math.gcd(ms, m)  # odd, as M is: t runs over odd multiples of step
        ts = step * (2 * rng.integers(0, m // step, 4 * n) + 1)
        e = -(ms.bit_length() - 1) + int(rng.integers(-3, 4))
        sx = np.ldexp(float(ms), e)
        xs = np.ldexp((ts * ms // m).astype(np.float64), e - 1)
        xs = xs[_exact_in(xs, fmt)]
        if not xs.size or not (_exact_in([sx], fmt)[0] and _exact_in([sx], sfmt)[0]):
            continue
        values = rng.choice(xs, n) * np.where(rng.random(n) < 0.5, -1.0, 1.0)
        values[rng.integers(0, n)] = sx
        return bits_of(values, fmt)
    return None


def _scale_tie(cfg: TileConfig, rng) -> np.ndarray:
    """max-abs exactly halfway between two adjacent scale values when the input format holds
    one (a random vector otherwise)."""
    s = cfg.scale_fmt
    exps = rng.integers(1, (1 << s.exp_bits) - 1, 50)
    mans = rng.integers(0, 1 << s.man_bits, 50)
    mids = np.ldexp(2.0 * ((1 << s.man_bits) + mans) + 1, exps - s.bias - s.man_bits - 1)
    fits = _exact_in(mids, cfg.in_fmt)
    if not fits.any():
        return _near_top(cfg, rng, 1)[0]
    return _with_max(cfg, rng, int(bits_of(mids[fits][:1], cfg.in_fmt)[0]))


def input_cases(cfg: TileConfig, rng, nonfinite: bool = True) -> list[tuple[str, np.ndarray]]:
    """Directed vectors of ``abfp_input_unit``, by case (see the module docstring).

    Parameters
    ----------
    cfg : TileConfig
    rng : numpy.random.Generator
    nonfinite : bool
        Include the ``nonfinite_inputs`` case (last: it sets the unit's sticky flag).

    Returns
    -------
    list of (str, numpy.ndarray)
        Case name and int64 (rows, n) bit patterns of ``cfg.in_fmt``.
    """
    fmt, n, m = cfg.in_fmt, cfg.n, cfg.mx
    sign_bit = 1 << (fmt.width - 1)
    max_bits = (((1 << fmt.exp_bits) - 1) << fmt.man_bits) - 1
    inf_bits = ((1 << fmt.exp_bits) - 1) << fmt.man_bits
    signs = rng.integers(0, 2, (4, n)) * sign_bit
    cases = []
    zeros = np.zeros((3, n), np.int64)
    zeros[1] = sign_bit
    zeros[2, ::2] = sign_bit
    cases.append(("zero_blocks", zeros))
    negative_zeros = _near_top(cfg, rng, 2)
    negative_zeros[rng.random((2, n)) < 0.5] = sign_bit
    cases.append(("negative_zeros", negative_zeros))
    full = np.full((3, n), max_bits, np.int64) | signs[:3]
    full[1] = bits_of(typical(rng, fmt, n, 4), fmt)
    full[1, n // 2] = max_bits
    full[2] = max_bits
    cases.append(("full_scale", full))
    largest = _near_top(cfg, rng, 2)
    largest[np.arange(2), rng.integers(0, n, 2)] = max_bits | rng.integers(0, 2, 2) * sign_bit
    cases.append(("largest_element", largest))
    # Ties: with the max element M * 2**e the codes are x / 2**e, so (k + 1/2) * 2**e ties.
    ties = []
    for e in (-3, 0, 5):
        scale = float(m) * 2.0**e
        half = (rng.integers(0, m, n) + 0.5) * 2.0**e * rng.choice([-1.0, 1.0], n)
        half[rng.integers(0, n)] = scale
        ties.append(bits_of(round_to(half, fmt), fmt))
    half_scale = np.zeros(n)
    half_scale[0], half_scale[-1] = 1.0, -0.5  # x = -sx/2: the code -M/2 is a tie
    ties.append(bits_of(round_to(half_scale, fmt), fmt))
    cases.append(("quantizer_ties", np.asarray(ties)))
    exact = [v for v in (_exact_tie(cfg, rng) for _ in range(2)) if v is not None]
    if exact:
        cases.append(("exact_ties", np.asarray(exact)))
    sub = np.stack([rng.integers(0, 1 << fmt.man_bits, n) | signs[0],
                    np.where(np.arange(n) == 0, 1, 0) | signs[1]])  # fmt: skip
    cases.append(("subnormal_inputs", sub))
    # Max-abs at the scale format's overflow edge (values from the midpoint between its
    # largest finite value and 2^(bias+1) up round to infinity) and around its subnormals.
    sfmt = cfg.scale_fmt
    edge = (2.0 - 2.0 ** -(sfmt.man_bits + 1)) * 2.0**sfmt.bias
    cases.append(("scale_overflow", np.stack([
        _with_max(cfg, rng, int(rng.choice(_near(fmt, edge)))) for _ in range(2)])))  # fmt: skip
    factors = (0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 2.0**sfmt.man_bits - 0.5)
    cases.append(("scale_underflow", np.stack([
        _with_max(cfg, rng, int(rng.choice(_near(fmt, sfmt.min_subnormal * f))))
        for f in factors])))  # fmt: skip
    cases.append(("scale_tie", np.stack([_scale_tie(cfg, rng) for _ in range(2)])))
    single = np.zeros((2, n), np.int64)
    single[0, -1] = bits_of(round_to([-3.0], fmt), fmt)[0]
    single[1, :] = sign_bit
    single[1, min(1, n - 1)] = bits_of(round_to([2.0**-7], fmt), fmt)[0]
    cases.append(("single_nonzero", single))
    ragged = _near_top(cfg, rng, 3)
    for row, keep in enumerate((1, n // 2 + 1, n - 1)):
        ragged[row, keep:] = 0
    cases.append(("ragged_padding", ragged))
    if nonfinite:
        # Rows 0-4: one inf or NaN among finite elements; row 5 all +inf; row 6 finite (the
        # flag stays set).
        rows = _near_top(cfg, rng, 7)
        nan_payload = inf_bits | ((1 << fmt.man_bits) - 1)
        for row, (pos, bits) in enumerate(((0, inf_bits), (n - 1, inf_bits | sign_bit),
                                           (n // 2, fmt.canonical_nan_bits),
                                           (1 % n, nan_payload | sign_bit),
                                           (n - 1, inf_bits | 1))):  # fmt: skip
            rows[row, pos] = bits
        rows[5] = inf_bits
        cases.append(("nonfinite_inputs", rows))
    return [(name, np.asarray(block, np.int64)) for name, block in cases]


def input_vectors(cfg: TileConfig, rng, nonfinite: bool = True) -> list[tuple[str, np.ndarray]]:
    """:func:`input_cases` one vector at a time: ``(case name, (n,) int64 bit patterns)``."""
    return [(name, row) for name, block in input_cases(cfg, rng, nonfinite) for row in block]


# ---- output unit -----------------------------------------------------------------------


@dataclass
class OutputRows:
    """Rows of T tiles for ``abfp_output_unit``, one batch row and ``lanes`` output rows each.

    Attributes
    ----------
    qy : numpy.ndarray
        int64 (R, T, lanes) ADC codes.
    sw : numpy.ndarray
        float32 (R, T, lanes) row scales (values of ``cfg.scale_fmt``).
    sx : numpy.ndarray
        float32 (R, T) input scales.
    """

    qy: np.ndarray
    sw: np.ndarray
    sx: np.ndarray

    def tiles(self):
        """Per row: (codes (lanes, T) int32, w_scale (lanes, T), x_scale (T,))."""
        for r in range(self.qy.shape[0]):
            yield self.qy[r].T.astype(np.int32), self.sw[r].T, self.sx[r]


def _tie_rows(cfg: TileConfig, rng, lanes: int) -> list[OutputRows]:
    """Rows whose partial ``u`` is a tie of ``partial_fmt`` (T = 1), or whose accumulator is a
    tie of ``out_fmt`` (T = 2, second tile far smaller), found among random candidates that
    share one ``sx`` per search."""
    sfmt, my = cfg.scale_fmt, cfg.my
    candidates = 1 << 17
    found = []
    for search in range(8):
        nt = 1 if search < 4 else 2
        sx = typical(rng, sfmt, (1, nt), 8, signed=False)
        if nt == 2:
            sx[0, 1] = round_to(sx[0, 0] * 2.0 ** -int(rng.integers(6, 14)), sfmt)[()]
        q = rng.integers(-my, my + 1, (candidates, nt))
        sw = typical(rng, sfmt, (candidates, nt), 8, signed=False)
        if nt == 1:
            sy = mul(sw[:, 0], sx[0, 0], FP32)
            u = mul(mul(int_to_float(q[:, 0], FP32), sy, FP32), cfg.rescale_constant, FP32)
            tie = is_tie(u, cfg.partial_fmt)
        else:
            _, stages = rescale_accumulate(q[None].astype(np.int32), sx, sw, cfg, trace=True)
            tie = is_tie(stages["acc"][0, :, -1], cfg.out_fmt)
        hits = np.flatnonzero(tie)[: 2 * lanes]
        rows = len(hits) // lanes
        if rows:
            pick = hits[: rows * lanes]
            found.append(OutputRows(
                q[pick].reshape(rows, lanes, nt).transpose(0, 2, 1),
                sw[pick].reshape(rows, lanes, nt).transpose(0, 2, 1),
                np.repeat(sx, rows, axis=0),
            ))  # fmt: skip
    return found


def _nonfinite_rows(cfg: TileConfig, lanes: int) -> list[OutputRows]:
    """Infinite and NaN scales through the accumulator: inf + finite, inf + (-inf), NaN."""
    sfmt = cfg.scale_fmt
    inf = from_bits(np.array([scale_specials(sfmt)[6]]), sfmt)[0]
    nan = from_bits(np.array([sfmt.canonical_nan_bits]), sfmt)[0]
    one = np.float32(1.0)
    lane_codes = np.resize(np.array([3, -3, 0, 1]), lanes)
    rows = []
    for sw_row, sx_row, codes in (
        ((inf, one, one), (one, one, one), (lane_codes, lane_codes, lane_codes)),
        ((inf, inf, one), (one, one, one), (np.full(lanes, 2), np.full(lanes, -2), lane_codes)),
        ((one, one, one), (one, nan, one), (lane_codes, lane_codes, lane_codes)),
        ((one, one, one), (one, one, inf), (lane_codes, -lane_codes, lane_codes)),
    ):
        rows.append(OutputRows(
            np.stack(codes)[None],
            np.repeat(np.asarray(sw_row, np.float32)[:, None], lanes, axis=1)[None],
            np.asarray(sx_row, np.float32)[None],
        ))  # fmt: skip
    return rows


def output_cases(cfg: TileConfig, rng, lanes: int) -> list[tuple[str, list[OutputRows]]]:
    """Directed rows of ``abfp_output_unit``, by case (see the module docstring).

    Parameters
    ----------
    cfg : TileConfig
    rng : numpy.random.Generator
    lanes : int
        ``LANES`` of the unit.

    Returns
    -------
    list of (str, list of OutputRows)
    """
    sfmt, my = cfg.scale_fmt, cfg.my
    scale = lambda shape: typical(rng, sfmt, shape, 8, signed=False)  # noqa: E731
    cases = []
    cases.append(("zero_codes", [
        OutputRows(np.zeros((2, nt, lanes), np.int64), scale((2, nt, lanes)), scale((2, nt)))
        for nt in (1, 3)
    ]))  # fmt: skip
    full = []
    for nt in (1, 2, 4):
        q = rng.choice([-my, my], (2, nt, lanes))
        full.append(OutputRows(q, scale((2, nt, lanes)), scale((2, nt))))
    big = from_bits(np.full((1, 2, lanes), scale_specials(sfmt)[5]), sfmt)
    full.append(OutputRows(np.full((1, 2, lanes), my), big, big[:, :, 0]))
    cases.append(("full_scale_codes", full))
    # Every (sx, sw) pair of corner scale values, T = 1, codes of both signs and zero: one
    # sx per row, the sw values across its lanes.
    specials = from_bits(scale_specials(sfmt), sfmt)
    per_sx = -(-len(specials) // lanes)
    sw = np.tile(np.resize(specials, per_sx * lanes).reshape(per_sx, 1, lanes),
                 (len(specials), 1, 1))  # fmt: skip
    sx = np.repeat(specials, per_sx)[:, None]
    q = np.resize(np.array([0, 1, -1, my, -my, 3]), sw.size).reshape(sw.shape)
    cases.append(("scale_specials", [OutputRows(q, sw, sx)]))
    # Scale products around fp32's subnormal range and overflow threshold.
    exps = np.array([-150, -149, -140, -127, -126, -125, 126, 127, 128, 129])
    half = exps // 2
    sw = round_to(np.exp2(half), sfmt)
    sx = round_to(np.exp2(exps - half), sfmt)
    rows = len(exps)
    qsign = rng.choice([-1, 1], (rows, 1, lanes)) * rng.integers(1, my + 1, (rows, 1, lanes))
    cases.append(("scale_product_range", [OutputRows(
        qsign, np.broadcast_to(sw[:, None, None], (rows, 1, lanes)).copy(), sx[:, None]
    )]))  # fmt: skip
    # Signed zeros: negative codes times tiny scales underflow to -0 partials, and -0 + -0 = -0;
    # a partial and its negation cancel to +0.
    tiny = from_bits(np.array([1]), sfmt)[0]
    neg = -np.ones((1, 2, lanes), np.int64)
    cancel = np.stack([np.full(lanes, 5), np.full(lanes, -5)])[None]
    cases.append(("signed_zeros", [
        OutputRows(neg, np.full((1, 2, lanes), tiny, np.float32),
                   np.full((1, 2), tiny, np.float32)),
        OutputRows(cancel, np.ones((1, 2, lanes), np.float32), np.ones((1, 2), np.float32)),
    ]))  # fmt: skip
    cases.append(("rounding_ties", _tie_rows(cfg, rng, lanes)))
    cases.append(("nonfinite_accumulation", _nonfinite_rows(cfg, lanes)))
    return cases
