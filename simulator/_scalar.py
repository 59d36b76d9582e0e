"""Scalar arithmetic shared by every kernel: format rounding, exact add, Philox, the normal
quantile (the noise transforms themselves are in ``noise_kinds``).

All functions are ``@njit(inline="always")`` so that the array kernels in ``_kernels.py`` and
``formats.py`` compile them into their loops. Values travel as float64: every format this
project handles (exponent bits <= 8, mantissa bits <= 23) is a subset of float64, so a float64
holds any value of any format exactly. Step numbers are those of docs/arithmetic.md.
"""

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

_NAN = np.float64(np.nan)  # 0x7FF8000000000000: converts to the canonical NaN of every format
_NAN32 = np.float32(np.nan)  # 0x7FC00000, the canonical binary32 NaN


def _bitcast(name, src, dst, doc):
    """An intrinsic that reads the bits of a ``src`` value as a ``dst`` value of equal width."""

    def typer(typingctx, x):
        if x != src:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    typer.__name__ = typer.__qualname__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


bits_of = _bitcast(
    "bits_of", types.float64, types.int64, "The IEEE binary64 bit pattern of a float64, as int64."
)
float_of = _bitcast(
    "float_of", types.int64, types.float64, "The float64 whose bit pattern is the int64 ``x``."
)
bits32_of = _bitcast(
    "bits32_of", types.float32, types.int32, "The IEEE binary32 bit pattern of a float32, as int32."
)
float32_of = _bitcast(
    "float32_of", types.int32, types.float32, "The float32 whose bit pattern is the int32 ``x``."
)


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` of three floats of one type, rounded once (IEEE-754 fusedMultiplyAdd,
    LLVM's ``llvm.fma``): the exact result wherever that is representable, as every partial
    sum of a tile's dot product of codes is (docs/performance.md)."""
    if not (a == b == c and isinstance(a, types.Float)):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


_FRAC_MASK = (1 << 52) - 1
_IMPLICIT = 1 << 52
_MAG_MASK = (1 << 63) - 1


@njit(inline="always", cache=True)
def round_fmt(v, exp_bits, man_bits):
    """Round float64 ``v`` to the format (exp_bits, man_bits): IEEE RNE, subnormals, overflow.

    NaN becomes the canonical NaN; the sign of zero is kept.
    """
    if exp_bits == 8 and man_bits == 23:
        # binary32 itself: the hardware conversion is exactly this rounding
        return np.float64(np.float32(v)) if v == v else _NAN
    return round_sum(v, 0.0, exp_bits, man_bits)


@njit(inline="always", cache=True)
def round_sum(s, err, exp_bits, man_bits):
    """Round the exact real ``s + err`` once to the format, where ``s = fl64(s + err)``.

    ``err`` is the exact rounding error of a float64 sum (from TwoSum); it only matters when
    ``s`` falls exactly on a midpoint of the target grid, where it breaks the tie the way the
    exact value does. With ``err = 0`` this is plain round-to-nearest-even of ``s``.
    Works on the binary64 pattern: the significand is cut to the format's quantum at the
    value's exponent (or at the subnormal quantum below the format's normal range).
    """
    if s != s:
        return _NAN
    bits = bits_of(s)
    mag = bits & _MAG_MASK
    exp64 = mag >> 52
    if exp64 == 2047 or mag == 0:
        return s
    bias = (1 << (exp_bits - 1)) - 1
    emin = 1 - bias
    e = exp64 - 1023
    if e > bias:
        return math.copysign(math.inf, s)
    if e < emin - man_bits - 1:
        # below half the smallest subnormal (float64 subnormals included): a signed zero
        return math.copysign(0.0, s)
    shift = 52 - man_bits + max(emin - e, 0)
    sig = (mag & _FRAC_MASK) | _IMPLICIT
    half = np.int64(1) << (shift - 1)
    q = (sig + (half - 1) + ((sig >> shift) & 1)) >> shift  # round half to even
    if err != 0.0 and (sig & ((half << 1) - 1)) == half:
        # s is exactly a midpoint; the exact value lies on err's side of it
        q = (sig >> shift) + (1 if (err > 0.0) == (s > 0.0) else 0)
    # q * 2^(quantum exponent): both factors exact, so is the product
    quantum_exp = max(e, emin) - man_bits
    out = np.float64(q) * float_of((quantum_exp + 1023) << 52)
    max_bits = ((bias + 1023) << 52) | (((1 << man_bits) - 1) << (52 - man_bits))
    if out > float_of(max_bits):
        out = math.inf
    return -out if bits < 0 else out


@njit(inline="always", cache=True)
def round_fp32(v, exp_bits, man_bits):
    """:func:`round_fmt` of a float32 ``v`` (NaN included), returned as float32.

    Formats with binary32's exponent range (``exp_bits == 8``) round on the 32-bit pattern
    without branches: the binary32 encoding is linear across the subnormal/normal boundary and
    a carry out of the mantissa steps the exponent, up to infinity on overflow. Other formats
    take :func:`round_fmt`.
    """
    if exp_bits != 8:
        return np.float32(round_fmt(np.float64(v), exp_bits, man_bits))
    if man_bits == 23:
        return v if v == v else _NAN32
    shift = 23 - man_bits
    bits = np.int64(bits32_of(v)) & 0xFFFFFFFF
    mag = bits & 0x7FFFFFFF
    mag = (mag + ((1 << (shift - 1)) - 1) + ((mag >> shift) & 1)) >> shift << shift
    out = float32_of(np.int32((bits & 0x80000000) | mag))
    return out if v == v else _NAN32


@njit(inline="always", cache=True)
def round_fp32_value(v, exp_bits, man_bits):
    """:func:`round_fp32` of a float64 ``v`` that holds a binary32 value, as float64."""
    return np.float64(round_fp32(np.float32(v), exp_bits, man_bits))


@njit(inline="always", cache=True)
def add_fp32(a, b, exp_bits, man_bits):
    """:func:`add_fmt` of two float32 values, returned as float32."""
    if exp_bits == 8 and man_bits == 23:
        s = a + b
        return s if s == s else _NAN32
    return np.float32(add_fmt(np.float64(a), np.float64(b), exp_bits, man_bits))


@njit(inline="always", cache=True)
def add_fmt(a, b, exp_bits, man_bits):
    """``a + b`` (float64 holding binary32 values) rounded once."""
    if exp_bits == 8 and man_bits == 23:
        # binary32 itself: the hardware addition is exactly this rounding
        s32 = np.float32(a) + np.float32(b)
        return np.float64(s32) if s32 == s32 else _NAN
    s = a + b
    if not math.isfinite(s):
        return round_fmt(s, exp_bits, man_bits)
    # TwoSum (Knuth): err is the exact error of s, so s + err == a + b exactly.
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return round_sum(s, err, exp_bits, man_bits)


@njit(inline="always", cache=True)
def mul_fmt(a, b, exp_bits, man_bits):
    """``a * b`` rounded once; the float64 product of two <= 24-bit significands is exact."""
    return round_fmt(a * b, exp_bits, man_bits)


# Philox4x32-10 (Salmon et al., SC'11, Random123): multipliers and Weyl key increments.
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = np.uint64(0x9E3779B9)
_PHILOX_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


@njit(inline="always", cache=True)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block: four 32-bit counter words and two key words to four words.

    All arguments and results are uint64 holding 32-bit values.
    """
    for rnd in range(10):
        if rnd > 0:
            k0 = (k0 + _PHILOX_W0) & _MASK32
            k1 = (k1 + _PHILOX_W1) & _MASK32
        p0 = _PHILOX_M0 * c0
        p1 = _PHILOX_M1 * c2
        hi0 = p0 >> _SHIFT32
        lo0 = p0 & _MASK32
        hi1 = p1 >> _SHIFT32
        lo1 = p1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


_LN2 = 0.6931471805599453
_SQRT2 = 1.4142135623730951  # twice the float64 sqrt(1/2)
_ONE_BITS = 1023 << 52  # exponent field of 1.0
_TWO52_BITS = 0x4330000000000000  # bits of 2**52: its low bits hold an integer exactly
# 2 atanh(s) = 2 s sum_k s^(2k) / (2k+1); 12 terms reach 2^-60 for |s| <= 0.1716
_ATANH_TERMS = tuple(1.0 / (2 * k + 1) for k in range(12, -1, -1))


@njit(inline="always", cache=True)
def _log(x):
    """Natural log of a normal float64 x > 0 from its bit pattern and + - * / only, so it is
    the same on every platform, without branches, so that loops over it vectorise.

    x = m 2^e with m in [sqrt(1/2), sqrt(2)): the exponent field read as a float through the
    bits of 2**52 (exact), m from the significand (exact, halved when >= sqrt(2)); then
    log m = 2 atanh(f / (2 + f)) with f = m - 1 (exact).
    """
    bits = bits_of(x)
    m = float_of((bits & _FRAC_MASK) | _ONE_BITS)
    e = float_of((bits >> 52) | _TWO52_BITS) - (2.0**52 + 1023.0)
    high = m >= _SQRT2
    m = m * 0.5 if high else m
    e = e + 1.0 if high else e
    f = m - 1.0
    s = f / (2.0 + f)
    s2 = s * s
    series = 0.0
    for term in _ATANH_TERMS:
        series = series * s2 + term
    return e * _LN2 + 2.0 * s * series


# Acklam's rational approximation of the inverse standard normal CDF (relative error 1.15e-9).
_A0, _A1, _A2 = -3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02
_A3, _A4, _A5 = 1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00
_B0, _B1, _B2 = -5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02
_B3, _B4 = 6.680131188771972e01, -1.328068155288572e01
_C0, _C1, _C2 = -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00
_C3, _C4, _C5 = -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00
_D0, _D1 = 7.784695709041462e-03, 3.224671290700398e-01
_D2, _D3 = 2.445134137142996e00, 3.754408661907416e00
_P_LOW = 0.02425
_P_HIGH = 1.0 - _P_LOW


@njit(inline="always", cache=True)
def in_normal_tail(p):
    """Whether p in (0, 1) takes the tail formula of :func:`inverse_normal_cdf`, i.e. lies
    outside [0.02425, 1 - 0.02425]."""
    return not (p >= _P_LOW and p <= _P_HIGH)


@njit(inline="always", cache=True)
def normal_quantile_central(p):
    """The central formula of :func:`inverse_normal_cdf`: a rational function of p - 1/2,
    Acklam's for p in [0.02425, 1 - 0.02425] (any other p gives a meaningless finite value,
    so that a loop can evaluate it everywhere and vectorise)."""
    q = p - 0.5
    r = q * q
    num = (((((_A0 * r + _A1) * r + _A2) * r + _A3) * r + _A4) * r + _A5) * q
    den = ((((_B0 * r + _B1) * r + _B2) * r + _B3) * r + _B4) * r + 1.0
    return num / den


@njit(inline="always", cache=True)
def normal_quantile_tail(p):
    """The tail formula of :func:`inverse_normal_cdf` for p in (0, 1): a rational function of
    sqrt(-2 log(min(p, 1 - p))) with the sign of p - 1/2; ``sqrt`` is IEEE-754's correctly
    rounded square root."""
    lower = p < 0.5
    t = math.sqrt(-2.0 * _log(p if lower else 1.0 - p))
    tail_num = ((((_C0 * t + _C1) * t + _C2) * t + _C3) * t + _C4) * t + _C5
    tail_den = (((_D0 * t + _D1) * t + _D2) * t + _D3) * t + 1.0
    tail = tail_num / tail_den
    return tail if lower else -tail


@njit(inline="always", cache=True)
def inverse_normal_cdf(p):
    """Standard normal quantile of p in (0, 1), Acklam's approximation:
    :func:`normal_quantile_central` for p in [0.02425, 1 - 0.02425], else
    :func:`normal_quantile_tail`. Loops over many values take the formulas in passes of their
    own instead (``noise_kinds``), with the same bits."""
    if in_normal_tail(p):
        return normal_quantile_tail(p)
    return normal_quantile_central(p)


@njit(inline="always", cache=True)
def noise_words(seed, stream, b, i, j):
    """The four Philox words that serve rows 4*(i//4) .. 4*(i//4)+3 at (b, j).

    Counter = (i >> 2, j, b, stream), key = (seed low word, seed high word); word ``i & 3``
    belongs to output row i.
    """
    return philox4x32(
        np.uint64(i >> 2),
        np.uint64(j),
        np.uint64(b),
        np.uint64(stream),
        np.uint64(seed) & _MASK32,
        np.uint64(seed) >> _SHIFT32,
    )


@njit(inline="always", cache=True)
def adc_value(mac, gain_constant, noise, code_max):
    """Steps 5-7 in their pinned float64 order: ``clamp(rint(mac * kA + noise), My)``,
    the code as an integral float64 (``+ 0.0`` makes a code rounded from (-0.5, 0) the integer
    zero, not -0.0)."""
    v = np.float64(mac) * gain_constant + noise
    return min(max(np.rint(v), -code_max), code_max) + 0.0


@njit(inline="always", cache=True)
def adc(mac, gain_constant, noise, code_max):
    """:func:`adc_value` as an int32 code."""
    return np.int32(adc_value(mac, gain_constant, noise, code_max))


@njit(inline="always", cache=True)
def accumulate(acc, partial, first, acc_exp, acc_man):
    """Step 9 on float32 values: the first tile's partial widens exactly, later ones add,
    rounded once."""
    return partial if first else add_fp32(acc, partial, acc_exp, acc_man)


@njit(inline="always", cache=True)
def rescale(adc_code, w_scale, x_scale, rescale_constant, part_exp, part_man):
    """Step 8: sy = sw*sx, t = qy*sy, u = t*K in fp32, then p = to(partial, u), float32.

    Every operand is a binary32 value (the scales, the rescale constant, and the code, an
    integer below 2**15), so each product is a binary32 multiplication: IEEE-754 returns the
    exact product rounded once, which is the contract's fp32 rounding of the exact product. A NaN
    on the way stays NaN and the last rounding makes it the canonical NaN.
    """
    sy = np.float32(w_scale) * np.float32(x_scale)
    t = np.float32(adc_code) * sy
    u = t * np.float32(rescale_constant)
    return round_fp32(u, part_exp, part_man)
