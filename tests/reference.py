"""Slow, independent reference of docs/arithmetic.md in Python integers and ``fractions.Fraction``.

It shares no arithmetic with ``simulator``: a configuration object is read only as a plain
container of field values. Every value of a format is held as a Python float (float64 holds
every value of every format with E <= 8, M <= 23 exactly, signed zeros and infinities
included); every exact intermediate is a ``Fraction``; every rounding is done here, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

FP32 = (8, 23)


def format_fields(fmt) -> tuple[int, int]:
    """Return ``(exponent bits, mantissa bits)`` of a format given as a pair or an object.

    Parameters
    ----------
    fmt : tuple of int or object with ``exp_bits`` and ``man_bits``
        The format.

    Returns
    -------
    tuple of int
        ``(E, M)``.
    """
    if isinstance(fmt, tuple):
        return fmt
    return fmt.exp_bits, fmt.man_bits


def _limits(fmt) -> tuple[int, int, int, int, Fraction]:
    exp_bits, man_bits = format_fields(fmt)
    bias = 2 ** (exp_bits - 1) - 1
    emin = 1 - bias
    emax = 2**exp_bits - 2 - bias
    max_finite = (2 - Fraction(1, 2**man_bits)) * Fraction(2) ** emax
    return exp_bits, man_bits, bias, emin, max_finite


def floor_log2(value: Fraction) -> int:
    """Return ``floor(log2(value))`` of a positive fraction, exactly."""
    exponent = value.numerator.bit_length() - value.denominator.bit_length()
    return exponent if value >= Fraction(2) ** exponent else exponent - 1


def rne(value: Fraction) -> int:
    """Round a fraction to the nearest integer, ties to even."""
    floor = value.numerator // value.denominator
    remainder = value - floor
    if remainder > Fraction(1, 2):
        return floor + 1
    if remainder < Fraction(1, 2):
        return floor
    return floor + (floor & 1)


def clamp(value: int, limit: int) -> int:
    """Return ``max(-limit, min(limit, value))``."""
    return max(-limit, min(limit, value))


def code_max(bits: int) -> int:
    """Return ``M(b) = 2^(b-1) - 1``, the largest code of a signed symmetric quantizer."""
    return 2 ** (bits - 1) - 1


def round_fraction(value: Fraction, fmt, zero_negative: bool = False) -> float:
    """Round an exact real to a format: IEEE RNE, gradual underflow, overflow to infinity.

    Parameters
    ----------
    value : Fraction
        The exact real.
    fmt : tuple of int or FloatFormat
        Target format.
    zero_negative : bool
        Sign of the result when ``value`` is exactly zero.

    Returns
    -------
    float
        The rounded value (exact in ``fmt``).
    """
    if value == 0:
        return -0.0 if zero_negative else 0.0
    _, man_bits, _, emin, max_finite = _limits(fmt)
    magnitude = abs(value)
    exponent = max(floor_log2(magnitude), emin)
    quantum = Fraction(2) ** (exponent - man_bits)
    rounded = rne(magnitude / quantum) * quantum
    result = math.inf if rounded > max_finite else float(rounded)
    return -result if value < 0 else result


def round_value(value, fmt) -> float:
    """Round a float (any precision) to a format; NaN stays NaN, infinities stay."""
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return value
    return round_fraction(Fraction(value), fmt, zero_negative=math.copysign(1.0, value) < 0)


def encode(value: float, fmt) -> int:
    """Return the bit pattern of a value exact in ``fmt``; NaN gives the canonical NaN."""
    exp_bits, man_bits, bias, emin, _ = _limits(fmt)
    exp_all_ones = 2**exp_bits - 1
    if math.isnan(value):
        if man_bits == 0:
            raise ValueError("a format without mantissa bits has no NaN")
        return (exp_all_ones << man_bits) | (1 << (man_bits - 1))
    sign = 1 if math.copysign(1.0, value) < 0 else 0
    sign_field = sign << (exp_bits + man_bits)
    if math.isinf(value):
        return sign_field | (exp_all_ones << man_bits)
    magnitude = abs(Fraction(value))
    if magnitude == 0:
        return sign_field
    exponent = floor_log2(magnitude)
    if exponent < emin:
        mantissa = magnitude / Fraction(2) ** (emin - man_bits)
        exp_field = 0
    else:
        mantissa = magnitude / Fraction(2) ** (exponent - man_bits) - 2**man_bits
        exp_field = exponent + bias
    if mantissa.denominator != 1 or exp_field >= exp_all_ones:
        raise ValueError(f"{value!r} is not a value of format {format_fields(fmt)}")
    return sign_field | (exp_field << man_bits) | int(mantissa)


def decode(bits: int, fmt) -> float:
    """Return the value of a bit pattern of ``fmt`` (every NaN gives a NaN)."""
    exp_bits, man_bits, bias, emin, _ = _limits(fmt)
    negative = (bits >> (exp_bits + man_bits)) & 1
    exp_field = (bits >> man_bits) & (2**exp_bits - 1)
    mantissa = bits & (2**man_bits - 1)
    if exp_field == 2**exp_bits - 1:
        magnitude = math.nan if mantissa else math.inf
    elif exp_field == 0:
        magnitude = float(mantissa * Fraction(2) ** (emin - man_bits))
    else:
        magnitude = float((2**man_bits + mantissa) * Fraction(2) ** (exp_field - bias - man_bits))
    return -magnitude if negative else magnitude


def fp32_pattern_of(bits: int, fmt) -> int:
    """Return the fp32 bit pattern that holds the ``fmt`` pattern ``bits``, NaN payload kept.

    A NaN's ``fmt`` mantissa becomes the top mantissa bits of the fp32 NaN.
    """
    exp_bits, man_bits = format_fields(fmt)
    exp_field = (bits >> man_bits) & (2**exp_bits - 1)
    mantissa = bits & (2**man_bits - 1)
    if exp_field == 2**exp_bits - 1 and mantissa:
        sign = (bits >> (exp_bits + man_bits)) & 1
        return (sign << 31) | (0xFF << 23) | (mantissa << (23 - man_bits))
    return encode(decode(bits, fmt), FP32)


def fp32_bits(values) -> np.ndarray:
    """Return the fp32 bit patterns (uint32) of an array of values exact in fp32."""
    values = np.asarray(values, dtype=np.float64)
    flat = [encode(float(v), FP32) for v in values.ravel()]
    return np.array(flat, dtype=np.uint32).reshape(values.shape)


def mul(a: float, b: float, fmt) -> float:
    """IEEE-754 product of two values, rounded once to ``fmt``."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    negative = (math.copysign(1.0, a) < 0) != (math.copysign(1.0, b) < 0)
    if math.isinf(a) or math.isinf(b):
        if a == 0 or b == 0:
            return math.nan
        return -math.inf if negative else math.inf
    return round_fraction(Fraction(a) * Fraction(b), fmt, zero_negative=negative)


def add(a: float, b: float, fmt) -> float:
    """IEEE-754 sum of two values, rounded once to ``fmt`` (an exact zero sum is +0
    unless both addends are -0)."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if math.isinf(a) or math.isinf(b):
        if math.isinf(a) and math.isinf(b) and (a > 0) != (b > 0):
            return math.nan
        return a if math.isinf(a) else b
    both_negative_zero = (
        math.copysign(1.0, a) < 0 and math.copysign(1.0, b) < 0 and a == 0 and b == 0
    )
    return round_fraction(Fraction(a) + Fraction(b), fmt, zero_negative=both_negative_zero)


def quantize_code(value: float, scale: float, bits: int) -> int:
    """docs/arithmetic.md step 3: ``clamp(rne(value * M(bits) / scale), M(bits))``, exact.

    A zero scale gives code 0; so does an infinite scale (the real quotient of a finite
    value by it is zero).
    """
    if scale == 0 or math.isinf(scale):
        return 0
    limit = code_max(bits)
    return clamp(rne(Fraction(value) * limit / Fraction(scale)), limit)


def block_scale(block, fmt) -> float:
    """docs/arithmetic.md step 2: ``to(fmt, max |v|)`` over one block of values."""
    return round_value(max(abs(v) for v in block), fmt)


def quantize_rows(rows, tile: int, bits: int, value_fmt, scale_fmt):
    """docs/arithmetic.md steps 1-3 for a list of rows.

    Returns rounded values, scales (R, T) and codes (R, T, tile).
    """
    length = len(rows[0])
    tiles = -(-length // tile)
    rounded = [[round_value(v, value_fmt) for v in row] for row in rows]
    scales, codes = [], []
    for row in rounded:
        padded = row + [0.0] * (tiles * tile - length)
        blocks = [padded[j * tile : (j + 1) * tile] for j in range(tiles)]
        row_scales = [block_scale(block, scale_fmt) for block in blocks]
        scales.append(row_scales)
        codes.append(
            [
                [quantize_code(v, s, bits) for v in block]
                for block, s in zip(blocks, row_scales, strict=True)
            ]
        )
    return rounded, scales, codes


def analog_constant(cfg) -> float:
    """Step 5's ``kA = (G * M(by)) / (n * M(bx) * M(bw))`` in the pinned float64 order."""
    return (float(cfg.gain) * float(code_max(cfg.by))) / (
        float(cfg.n) * float(code_max(cfg.bx)) * float(code_max(cfg.bw))
    )


def adc_code(mac: int, noise: float, cfg) -> tuple[float, int]:
    """Steps 5-7 in float64: ``a = S * kA``, ``v = a + e``, ``qy = clamp(rint(v), M(by))``.

    Returns
    -------
    tuple
        ``(a, qy)``.
    """
    analog = float(mac) * analog_constant(cfg)
    return analog, clamp(int(round(analog + noise)), code_max(cfg.by))


def rescale_constant(cfg) -> float:
    """Step 8's ``K = to(fp32, n / (M(by) * G))``, from the exact real."""
    return round_fraction(Fraction(cfg.n) / (code_max(cfg.by) * Fraction(float(cfg.gain))), FP32)


@dataclass
class ReferenceResult:
    """Every stage of the reference forward pass, flattened over the batch dimensions.

    Value arrays are float64 arrays of exact format values; codes are int64 arrays.
    Shapes: ``x_fmt`` (B, K), ``w_fmt`` (N, K), ``x_scale`` (B, T), ``w_scale`` (N, T),
    ``x_code`` (B, T, n), ``w_code`` (N, T, n), ``mac``/``analog``/``adc_code``/``partial``
    (B, N, T), ``acc`` (B, N, T) (the running sum after each tile), ``y`` (B, N).
    """

    x_fmt: np.ndarray
    w_fmt: np.ndarray
    x_scale: np.ndarray
    w_scale: np.ndarray
    x_code: np.ndarray
    w_code: np.ndarray
    mac: np.ndarray
    analog: np.ndarray
    adc_code: np.ndarray
    partial: np.ndarray
    acc: np.ndarray
    y: np.ndarray


def forward(x, w, cfg, noise=None) -> ReferenceResult:
    """docs/arithmetic.md steps 1-10 for ``x`` (B, K) and ``w`` (N, K).

    Parameters
    ----------
    x, w : array_like
        Finite inputs and weights.
    cfg : TileConfig
        Read as a plain container of field values.
    noise : array_like, optional
        The noise ``e`` (B, N, T) in ADC LSB; zero when omitted.

    Returns
    -------
    ReferenceResult
    """
    x = np.asarray(x)
    w = np.asarray(w)
    x_rows = [list(map(float, row)) for row in x]
    w_rows = [list(map(float, row)) for row in w]
    x_fmt, x_scale, x_code = quantize_rows(x_rows, cfg.n, cfg.bx, cfg.in_fmt, cfg.scale_fmt)
    w_fmt, w_scale, w_code = quantize_rows(w_rows, cfg.n, cfg.bw, cfg.w_fmt, cfg.scale_fmt)
    batch, outputs, tiles = len(x_rows), len(w_rows), len(x_scale[0])
    if noise is None:
        noise = np.zeros((batch, outputs, tiles))
    noise = np.asarray(noise, dtype=np.float64)
    k_rescale = rescale_constant(cfg)

    shape = (batch, outputs, tiles)
    mac = np.zeros(shape, dtype=np.int64)
    analog = np.zeros(shape)
    adc = np.zeros(shape, dtype=np.int64)
    partial = np.zeros(shape)
    acc = np.zeros(shape)
    y = np.zeros((batch, outputs))
    for b in range(batch):
        for i in range(outputs):
            running = None
            for j in range(tiles):
                dot = sum(p * q for p, q in zip(x_code[b][j], w_code[i][j], strict=True))
                a, qy = adc_code(dot, float(noise[b, i, j]), cfg)
                sy = mul(w_scale[i][j], x_scale[b][j], FP32)
                t = mul(round_fraction(Fraction(qy), FP32), sy, FP32)
                u = mul(t, k_rescale, FP32)
                p = round_value(u, cfg.partial_fmt)
                running = round_value(p, cfg.acc_fmt) if j == 0 else add(running, p, cfg.acc_fmt)
                mac[b, i, j], analog[b, i, j], adc[b, i, j] = dot, a, qy
                partial[b, i, j], acc[b, i, j] = p, running
            y[b, i] = round_value(running, cfg.out_fmt)
    return ReferenceResult(
        x_fmt=np.array(x_fmt),
        w_fmt=np.array(w_fmt),
        x_scale=np.array(x_scale),
        w_scale=np.array(w_scale),
        x_code=np.array(x_code, dtype=np.int64),
        w_code=np.array(w_code, dtype=np.int64),
        mac=mac,
        analog=analog,
        adc_code=adc,
        partial=partial,
        acc=acc,
        y=y,
    )
