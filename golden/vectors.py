"""Transactions of every vector set and their expected results, from the golden model.

Three sets are built for one :class:`~simulator.TileConfig`:

- ``input``: n-element vectors for ``abfp_input_unit`` (SPEC steps 2-3 for x);
- ``output``: beats for ``abfp_output_unit`` (SPEC steps 8-10), grouped into rows of T tiles;
- ``tile``: whole layers ``y = abfp_linear(x, w)`` split into the input unit's vectors, the
  analog array's ADC codes and the output unit's beats.

Each set holds random transactions followed by named directed cases. Every expected value
comes from the public ``simulator`` API; only the input unit's answer to a non-finite element,
which the golden model refuses, follows the unit's documented rule (:func:`nonfinite_vector`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import (
    FP32,
    FloatFormat,
    TileConfig,
    abfp_linear,
    quantize_inputs,
    rescale_accumulate,
)
from simulator.formats import from_bits, int_to_float, mul, round_to, to_bits

__all__ = ["UnitSet", "input_set", "output_set", "tile_set", "nonfinite_vector"]

_RANDOM = "random"


@dataclass
class UnitSet:
    """The transactions of one unit: arrays per vector file and the directed case ranges.

    Attributes
    ----------
    files : dict
        File role (e.g. ``"stimulus"``) to field name to (rows, count) integer array.
    cases : dict
        Case name to ``[first, stop)`` transaction range of the set's primary file.
    details : dict
        Further facts for the manifest (e.g. the tile set's layer shapes and noise streams).
    """

    files: dict = field(default_factory=dict)
    cases: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)


# ---- value generators ------------------------------------------------------------------


def _finite_patterns(rng, fmt: FloatFormat, shape, signed=True) -> np.ndarray:
    """Uniformly random finite bit patterns of ``fmt`` (every exponent, subnormals included)."""
    exp = rng.integers(0, (1 << fmt.exp_bits) - 1, shape, dtype=np.int64)
    man = rng.integers(0, 1 << fmt.man_bits, shape, dtype=np.int64)
    sign = rng.integers(0, 2, shape, dtype=np.int64) if signed else np.zeros(shape, np.int64)
    return (sign << (fmt.exp_bits + fmt.man_bits)) | (exp << fmt.man_bits) | man


def _typical(rng, fmt: FloatFormat, shape, spread: int, signed=True) -> np.ndarray:
    """Values of ``fmt``: normal mantissas times powers of two within ``spread`` of 1."""
    lo = max(-spread, 1 - fmt.bias)
    hi = min(spread, fmt.bias)
    mag = rng.uniform(1.0, 2.0, shape) * np.exp2(rng.integers(lo, hi + 1, shape))
    if signed:
        mag = mag * rng.choice([-1.0, 1.0], shape)
    return round_to(mag, fmt)


def _specials(fmt: FloatFormat) -> np.ndarray:
    """Positive scale corner values of ``fmt``: zero, subnormals, normal limits, inf, NaN."""
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


def _bits(values, fmt) -> np.ndarray:
    return to_bits(np.asarray(values, np.float32), fmt).astype(np.int64)


def _significant_bits(values) -> np.ndarray:
    """Significand width of finite non-zero float64 values (lowest set bit to highest)."""
    mant, _ = np.frexp(np.abs(np.asarray(values, np.float64)))
    whole = np.ldexp(mant, 53).astype(np.int64)
    low = whole & -whole
    return 53 - np.log2(np.where(low == 0, 1, low)).astype(np.int64)


def _is_tie(values, fmt: FloatFormat) -> np.ndarray:
    """Normal values exactly halfway between two neighbours of ``fmt``."""
    v = np.asarray(values, np.float64)
    normal = np.isfinite(v) & (np.abs(v) >= 2.0 ** (1 - fmt.bias)) & (np.abs(v) <= fmt.max_finite)
    return normal & (_significant_bits(np.where(normal, v, 1.0)) == fmt.man_bits + 2)


# ---- input unit ------------------------------------------------------------------------


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


def _input_expected(cfg: TileConfig, x_bits: np.ndarray) -> dict:
    """Codes, scale and sticky flag of the input unit for vectors of ``in_fmt`` bit patterns."""
    values = from_bits(x_bits, cfg.in_fmt)
    nonfinite = ~np.isfinite(values).all(axis=1)
    finite_rows = np.where(nonfinite[:, None], np.float32(0), values)
    codes, scales = quantize_inputs(finite_rows, cfg)
    codes = codes[:, 0, :].astype(np.int64)
    sx = _bits(scales[:, 0], cfg.scale_fmt)
    nan_scale, zero_codes = nonfinite_vector(cfg, cfg.n)
    sx[nonfinite] = nan_scale
    codes[nonfinite] = zero_codes
    sticky = np.logical_or.accumulate(nonfinite).astype(np.int64)
    return {"code": codes, "sx": sx[:, None], "nonfinite": sticky[:, None]}


def _input_random(cfg: TileConfig, rng, count: int) -> np.ndarray:
    fmt, n = cfg.in_fmt, cfg.n
    wide = _finite_patterns(rng, fmt, (count, n))
    spread = rng.integers(0, 12, (count, 1))
    centre = rng.integers(-30, 31, (count, 1))
    # Gaussian elements around 2**centre, each scaled down by up to 2**spread.
    shrink = rng.integers(0, spread + 1, (count, n))
    mag = rng.standard_normal((count, n)) * np.exp2(centre - shrink)
    lo, hi = fmt.min_subnormal, fmt.max_finite
    typical = _bits(round_to(np.sign(mag) * np.clip(np.abs(mag), 0, hi), fmt), fmt)
    typical[np.abs(mag) < lo / 4] = 0
    use_wide = rng.random((count, 1)) < 0.15
    return np.where(use_wide, wide, typical)


def _input_directed(cfg: TileConfig, rng) -> list[tuple[str, np.ndarray]]:
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
    full = np.full((3, n), max_bits, np.int64) | signs[:3]
    full[1] = _bits(_typical(rng, fmt, n, 4), fmt)
    full[1, n // 2] = max_bits
    full[2] = max_bits
    cases.append(("full_scale", full))
    # Ties: with the max element M * 2**e the codes are x / 2**e, so (k + 1/2) * 2**e ties.
    ties = []
    for e in (-3, 0, 5):
        scale = float(m) * 2.0**e
        half = (rng.integers(0, m, n) + 0.5) * 2.0**e * rng.choice([-1.0, 1.0], n)
        half[rng.integers(0, n)] = scale
        ties.append(_bits(round_to(half, fmt), fmt))
    half_scale = np.zeros(n)
    half_scale[0], half_scale[-1] = 1.0, -0.5  # x = -sx/2: the code -M/2 is a tie
    ties.append(_bits(round_to(half_scale, fmt), fmt))
    cases.append(("quantizer_ties", np.asarray(ties)))
    sub = np.stack([rng.integers(0, 1 << fmt.man_bits, n) | signs[0],
                    np.where(np.arange(n) == 0, 1, 0) | signs[1]])  # fmt: skip
    cases.append(("subnormal_inputs", sub))
    single = np.zeros((2, n), np.int64)
    single[0, -1] = _bits(round_to([-3.0], fmt), fmt)[0]
    single[1, :] = sign_bit
    single[1, 1] = _bits(round_to([2.0**-7], fmt), fmt)[0]
    cases.append(("single_nonzero", single))
    ragged = _input_random(cfg, rng, 3)
    for row, keep in enumerate((1, n // 2 + 1, n - 1)):
        ragged[row, keep:] = 0
    cases.append(("ragged_padding", ragged))
    # Non-finite elements last: the unit's flag is sticky, so later vectors all expect it set.
    nonfinite = _input_random(cfg, rng, 7)
    nan_payload = inf_bits | ((1 << fmt.man_bits) - 1)
    for row, (pos, bits) in enumerate(((0, inf_bits), (n - 1, inf_bits | sign_bit),
                                       (n // 2, fmt.canonical_nan_bits),
                                       (1 % n, nan_payload | sign_bit),
                                       (n - 1, inf_bits | 1))):  # fmt: skip
        nonfinite[row, pos] = bits
    nonfinite[5] = inf_bits
    cases.append(("nonfinite_inputs", nonfinite))
    return cases


def _assemble(random_rows, directed, expected_fn, primary: str, role: str) -> UnitSet:
    rows = [random_rows] + [block for _, block in directed]
    stimulus = np.concatenate(rows)
    out = UnitSet()
    out.files[role] = {primary: stimulus}
    out.cases[_RANDOM] = [0, len(random_rows)]
    start = len(random_rows)
    for name, block in directed:
        out.cases[name] = [start, start + len(block)]
        start += len(block)
    out.files["expected"] = expected_fn(stimulus)
    return out


def input_set(cfg: TileConfig, rng, count: int) -> UnitSet:
    """Vectors for ``abfp_input_unit``: ``count`` random ones, then the directed cases."""
    return _assemble(_input_random(cfg, rng, count), _input_directed(cfg, rng),
                     lambda x: _input_expected(cfg, x), "x", "stimulus")  # fmt: skip


# ---- output unit -----------------------------------------------------------------------


@dataclass
class _Groups:
    """Rows of T beats: ``qy`` (G, T, L), ``sw`` (G, T, L), ``sx`` (G, T) as float32 values."""

    qy: np.ndarray
    sw: np.ndarray
    sx: np.ndarray


def _scale_values(rng, fmt: FloatFormat, shape) -> np.ndarray:
    typical = _typical(rng, fmt, shape, 24, signed=False)
    wide = from_bits(_finite_patterns(rng, fmt, shape, signed=False), fmt)
    special = from_bits(rng.choice(_specials(fmt)[:-1], shape), fmt)
    pick = rng.random(shape)
    return np.where(pick < 0.03, wide, np.where(pick < 0.04, special, typical))


def _codes(rng, my: int, shape) -> np.ndarray:
    codes = rng.integers(-my, my + 1, shape)
    pick = rng.random(shape)
    codes[pick < 0.05] = 0
    codes[(pick >= 0.05) & (pick < 0.1)] = my
    codes[(pick >= 0.1) & (pick < 0.15)] = -my
    return codes


def _expected_y(cfg: TileConfig, groups: _Groups) -> np.ndarray:
    """``rescale_accumulate`` of each group (one batch row and L output rows per group)."""
    ys = []
    for g in range(groups.qy.shape[0]):
        adc = groups.qy[g].T[None, :, :].astype(np.int32)
        y = rescale_accumulate(adc, groups.sx[g][None, :], groups.sw[g].T, cfg)
        ys.append(y[0])
    return np.asarray(ys, np.float32).reshape(len(ys), -1)


def _as_groups(qy, sx, sw, lanes: int) -> _Groups:
    """``rescale_accumulate`` inputs (B, N, T), (B, T), (N, T) as rows in (b, lane group) order."""
    nb, ni, nt = qy.shape
    ng = ni // lanes
    return _Groups(
        qy.reshape(nb, ng, lanes, nt).transpose(0, 1, 3, 2).reshape(nb * ng, nt, lanes),
        np.broadcast_to(sw.reshape(ng, lanes, nt).transpose(0, 2, 1), (nb, ng, nt, lanes)).reshape(
            nb * ng, nt, lanes
        ),
        np.broadcast_to(sx[:, None, :], (nb, ng, nt)).reshape(nb * ng, nt),
    )


def _beats(cfg: TileConfig, groups: _Groups) -> dict:
    """The output unit's beats of the rows, row after row, tile after tile."""
    ng, nt, lanes = groups.qy.shape
    j = np.tile(np.arange(nt), ng)
    return {
        "qy": groups.qy.reshape(-1, lanes).astype(np.int64),
        "sw": _bits(groups.sw.reshape(-1, lanes), cfg.scale_fmt),
        "sx": _bits(groups.sx.reshape(-1), cfg.scale_fmt)[:, None],
        "first": (j == 0).astype(np.int64)[:, None],
        "last": (j == nt - 1).astype(np.int64)[:, None],
    }


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _output_random(cfg: TileConfig, rng, count: int, lanes: int, progress):
    beats, ys = [], []
    done, groups = 0, 16
    while done < count:
        nt = int(rng.choice([1, 1, 2, 3, 4, 6]))
        batch = min(16, -(-(count - done) // (groups * nt)))
        qy = _codes(rng, cfg.my, (batch, groups * lanes, nt))
        sx = _scale_values(rng, cfg.scale_fmt, (batch, nt))
        sw = _scale_values(rng, cfg.scale_fmt, (groups * lanes, nt))
        y = rescale_accumulate(qy.astype(np.int32), sx, sw, cfg)
        beats.append(_beats(cfg, _as_groups(qy, sx, sw, lanes)))
        ys.append(_bits(y.reshape(-1, lanes), cfg.out_fmt))
        done += batch * groups * nt
        progress(min(done, count))
    return _concat(beats), np.concatenate(ys)


def _groups_beats(cfg: TileConfig, groups: _Groups) -> tuple[dict, np.ndarray]:
    return _beats(cfg, groups), _bits(_expected_y(cfg, groups), cfg.out_fmt)


def _output_directed(cfg: TileConfig, rng, lanes: int) -> list[tuple[str, list[_Groups]]]:
    sfmt, my = cfg.scale_fmt, cfg.my
    scale = lambda shape: _typical(rng, sfmt, shape, 8, signed=False)  # noqa: E731
    cases = []
    cases.append(("zero_codes", [
        _Groups(np.zeros((2, nt, lanes), np.int64), scale((2, nt, lanes)), scale((2, nt)))
        for nt in (1, 3)
    ]))  # fmt: skip
    full = []
    for nt in (1, 2, 4):
        q = rng.choice([-my, my], (2, nt, lanes))
        full.append(_Groups(q, scale((2, nt, lanes)), scale((2, nt))))
    big = from_bits(np.full((1, 2, lanes), _specials(sfmt)[5]), sfmt)
    full.append(_Groups(np.full((1, 2, lanes), my), big, big[:, :, 0]))
    cases.append(("full_scale_codes", full))
    # Every (sx, sw) pair of corner scale values, T = 1, codes of both signs and zero: one
    # sx per row, the sw values across its lanes.
    specials = from_bits(_specials(sfmt), sfmt)
    per_sx = -(-len(specials) // lanes)
    sw = np.tile(np.resize(specials, per_sx * lanes).reshape(per_sx, 1, lanes),
                 (len(specials), 1, 1))  # fmt: skip
    sx = np.repeat(specials, per_sx)[:, None]
    q = np.resize(np.array([0, 1, -1, my, -my, 3]), sw.size).reshape(sw.shape)
    cases.append(("scale_specials", [_Groups(q, sw, sx)]))
    # Scale products around fp32's subnormal range and overflow threshold.
    exps = np.array([-150, -149, -140, -127, -126, -125, 126, 127, 128, 129])
    half = exps // 2
    sw = round_to(np.exp2(half), sfmt)
    sx = round_to(np.exp2(exps - half), sfmt)
    rows = len(exps)
    qsign = rng.choice([-1, 1], (rows, 1, lanes)) * rng.integers(1, my + 1, (rows, 1, lanes))
    cases.append(("scale_product_range", [_Groups(
        qsign, np.broadcast_to(sw[:, None, None], (rows, 1, lanes)).copy(), sx[:, None]
    )]))  # fmt: skip
    # Signed zeros: negative codes times tiny scales underflow to -0 partials, and -0 + -0 = -0;
    # a partial and its negation cancel to +0.
    tiny = from_bits(np.array([1]), sfmt)[0]
    neg = -np.ones((1, 2, lanes), np.int64)
    cancel = np.stack([np.full(lanes, 5), np.full(lanes, -5)])[None]
    cases.append(("signed_zeros", [
        _Groups(neg, np.full((1, 2, lanes), tiny, np.float32), np.full((1, 2), tiny, np.float32)),
        _Groups(cancel, np.ones((1, 2, lanes), np.float32), np.ones((1, 2), np.float32)),
    ]))  # fmt: skip
    cases.append(("rounding_ties", _tie_groups(cfg, rng, lanes)))
    cases.append(("nonfinite_accumulation", _nonfinite_groups(cfg, lanes)))
    return cases


def _tie_groups(cfg: TileConfig, rng, lanes: int) -> list[_Groups]:
    """Rows whose partial ``u`` is a tie of ``partial_fmt`` (T = 1), or whose accumulator is a
    tie of ``out_fmt`` (T = 2, second tile far smaller), found among random candidates that
    share one ``sx`` per search."""
    sfmt, my = cfg.scale_fmt, cfg.my
    candidates = 1 << 17
    found = []
    for search in range(8):
        nt = 1 if search < 4 else 2
        sx = _typical(rng, sfmt, (1, nt), 8, signed=False)
        if nt == 2:
            sx[0, 1] = round_to(sx[0, 0] * 2.0 ** -int(rng.integers(6, 14)), sfmt)[()]
        q = rng.integers(-my, my + 1, (candidates, nt))
        sw = _typical(rng, sfmt, (candidates, nt), 8, signed=False)
        if nt == 1:
            sy = mul(sw[:, 0], sx[0, 0], FP32)
            u = mul(mul(int_to_float(q[:, 0], FP32), sy, FP32), cfg.rescale_constant, FP32)
            tie = _is_tie(u, cfg.partial_fmt)
        else:
            _, stages = rescale_accumulate(q[None].astype(np.int32), sx, sw, cfg, trace=True)
            tie = _is_tie(stages["acc"][0, :, -1], cfg.out_fmt)
        hits = np.flatnonzero(tie)[: 2 * lanes]
        rows = len(hits) // lanes
        if rows:
            pick = hits[: rows * lanes]
            found.append(_Groups(
                q[pick].reshape(rows, lanes, nt).transpose(0, 2, 1),
                sw[pick].reshape(rows, lanes, nt).transpose(0, 2, 1),
                np.repeat(sx, rows, axis=0),
            ))  # fmt: skip
    return found


def _nonfinite_groups(cfg: TileConfig, lanes: int) -> list[_Groups]:
    """Infinite and NaN scales through the accumulator: inf + finite, inf + (-inf), NaN."""
    sfmt = cfg.scale_fmt
    inf = from_bits(np.array([_specials(sfmt)[6]]), sfmt)[0]
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
        rows.append(_Groups(
            np.stack(codes)[None],
            np.repeat(np.asarray(sw_row, np.float32)[:, None], lanes, axis=1)[None],
            np.asarray(sx_row, np.float32)[None],
        ))  # fmt: skip
    return rows


def output_set(cfg: TileConfig, rng, count: int, lanes: int, progress=lambda done: None):
    """Beats for ``abfp_output_unit``: ``count`` random ones (rounded up to whole batches of
    16 rows), then the directed cases.

    The output unit's transactions are input beats (stimulus) and output beats (expected, one
    per row of T beats); ``cases`` ranges index the stimulus beats.
    """
    random_beats, random_y = _output_random(cfg, rng, count, lanes, progress)
    beats, ys = [random_beats], [random_y]
    out = UnitSet()
    start = len(random_beats["qy"])
    out.cases[_RANDOM] = [0, start]
    for name, groups in _output_directed(cfg, rng, lanes):
        size = 0
        for g in groups:
            b, y = _groups_beats(cfg, g)
            beats.append(b)
            ys.append(y)
            size += len(y) * g.qy.shape[1]
        out.cases[name] = [start, start + size]
        start += size
    out.files["stimulus"] = _concat(beats)
    out.files["expected"] = {"y": np.concatenate(ys)}
    return out


# ---- end-to-end tile -------------------------------------------------------------------


def _layer_shapes(cfg: TileConfig, rng, lanes: int):
    """(B, N, K) of successive layers: ragged K (not a multiple of n) in most of them."""
    while True:
        nb = int(rng.integers(1, 5))
        ni = lanes * int(rng.integers(2, 9))
        nt = int(rng.integers(1, 5))
        k = nt * cfg.n - int(rng.integers(0, cfg.n)) if rng.random() < 0.75 else nt * cfg.n
        yield nb, ni, k


def tile_set(cfg: TileConfig, rng, count: int, lanes: int, progress=lambda done: None):
    """Whole layers ``abfp_linear(x, w)``, layer ``l`` drawing noise stream ``l``.

    Files: ``x`` (input-unit vectors, one per (b, tile) in (b, j) order, padded with +0),
    ``x_expected`` (their codes and scales), ``beats`` (output-unit beats with the ADC codes of
    the analog model and the index of the input vector whose ``sx`` they use) and ``expected``
    (the outputs y). ``cases`` maps ``layer<l>`` to its beat range. Layers are added until
    there are at least ``count`` beats; one batch row of x and one weight row are all zero.
    """
    xs, xq, beats, ys, layers = [], [], [], [], []
    out = UnitSet()
    n_vectors = n_beats = 0
    for layer, (nb, ni, k) in enumerate(_layer_shapes(cfg, rng, lanes)):
        if n_beats >= count:
            break
        x = rng.standard_normal((nb, k)) * np.exp2(rng.integers(-8, 9, (nb, 1)))
        w = rng.standard_normal((ni, k)) * np.exp2(rng.integers(-8, 9, (ni, 1)))
        if layer == 0:
            x[-1] = 0.0
            w[-1] = 0.0
        y, tr = abfp_linear(x, w, cfg, stream=layer, trace=True)
        if not np.array_equal(y.view(np.uint32), abfp_linear(x, w, cfg, stream=layer).view(
                np.uint32)):  # fmt: skip
            raise RuntimeError(f"layer {layer}: traced and fused forward passes disagree")
        nt = tr.x_scale.shape[1]
        padded = np.zeros((nb, nt * cfg.n), np.float32)
        padded[:, :k] = tr.x_fmt
        xs.append(_bits(padded.reshape(nb * nt, cfg.n), cfg.in_fmt))
        xq.append({
            "code": tr.x_code.reshape(nb * nt, cfg.n).astype(np.int64),
            "sx": _bits(tr.x_scale.reshape(-1), cfg.scale_fmt)[:, None],
            "nonfinite": np.zeros((nb * nt, 1), np.int64),
        })  # fmt: skip
        layer_beats = _beats(cfg, _as_groups(tr.adc_code, tr.x_scale, tr.w_scale, lanes))
        b_index = np.repeat(np.arange(nb), (ni // lanes) * nt)
        j_index = np.tile(np.arange(nt), nb * (ni // lanes))
        layer_beats["x_index"] = (n_vectors + b_index * nt + j_index)[:, None].astype(np.int64)
        beats.append(layer_beats)
        ys.append(_bits(y.reshape(-1, lanes), cfg.out_fmt))
        size = len(layer_beats["qy"])
        out.cases[f"layer{layer}"] = [n_beats, n_beats + size]
        layers.append({"layer": layer, "stream": layer, "batch": nb, "rows": ni, "k": k,
                       "tiles": nt})  # fmt: skip
        n_vectors += nb * nt
        n_beats += size
        progress(min(n_beats, count))
    out.files["x"] = {"x": np.concatenate(xs)}
    out.files["x_expected"] = _concat(xq)
    out.files["beats"] = _concat(beats)
    out.files["expected"] = {"y": np.concatenate(ys)}
    out.details["layers"] = layers
    return out
