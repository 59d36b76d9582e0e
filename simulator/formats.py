"""IEEE-754-like binary floating-point formats and their exact arithmetic.

A format is given by its exponent and mantissa (fraction) bit counts. Every format with
``exp_bits <= 8`` and ``man_bits <= 23`` is a subset of IEEE binary32, so this module holds
format values in float32 arrays (exactly) and computes in float64 (exactly, see
``docs/arithmetic.md``) before one final rounding.

The canonical NaN of a format has sign 0, an all-ones exponent and only the top mantissa bit
set (bf16 ``0x7FC0``, fp16 ``0x7E00``, fp32 ``0x7FC00000``). Every arithmetic result that is
NaN is the canonical NaN; ``to_bits`` and ``from_bits`` keep NaN payloads, embedding a
format's mantissa in the top bits of the binary32 mantissa.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numba import njit, prange

from simulator._scalar import add_fmt, mul_fmt, round_fmt

__all__ = [
    "FloatFormat",
    "BF16",
    "FP16",
    "FP32",
    "FORMATS",
    "round_to",
    "to_bits",
    "from_bits",
    "mul",
    "add",
    "int_to_float",
    "round_fraction",
]


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format with IEEE-754 encoding rules.

    Parameters
    ----------
    exp_bits : int
        Exponent field width, 2 to 8.
    man_bits : int
        Mantissa (trailing significand) field width, 1 to 23.

    Attributes
    ----------
    width : int
        Total bits, ``1 + exp_bits + man_bits``.
    bias : int
        Exponent bias, ``2**(exp_bits-1) - 1``.
    """

    exp_bits: int
    man_bits: int

    def __post_init__(self):
        for field, lo, hi in (("exp_bits", 2, 8), ("man_bits", 1, 23)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"FloatFormat.{field} must be an int, got {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"FloatFormat.{field} must be in [{lo}, {hi}], got {value}")
            object.__setattr__(self, field, int(value))

    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def max_finite(self) -> float:
        """Largest finite value, ``(2 - 2**-man_bits) * 2**bias``."""
        return float((2.0 - 2.0**-self.man_bits) * 2.0**self.bias)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value, ``2**(1 - bias - man_bits)``."""
        return float(2.0 ** (1 - self.bias - self.man_bits))

    @property
    def canonical_nan_bits(self) -> int:
        """Bit pattern of the canonical NaN."""
        return (((1 << self.exp_bits) - 1) << self.man_bits) | (1 << (self.man_bits - 1))

    @property
    def name(self) -> str:
        """``bf16``, ``fp16`` or ``fp32`` for the named formats, else ``e<E>m<M>``."""
        return _NAMES.get((self.exp_bits, self.man_bits), f"e{self.exp_bits}m{self.man_bits}")

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, spec: str | FloatFormat) -> FloatFormat:
        """A format from its name (``"bf16"``, ``"fp16"``, ``"fp32"``, ``"e5m2"``, ...)."""
        if isinstance(spec, FloatFormat):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"a format is a FloatFormat or a name, got {spec!r}")
        key = spec.strip().lower()
        if key in FORMATS:
            return FORMATS[key]
        if key.startswith("e") and "m" in key:
            e, _, m = key[1:].partition("m")
            if e.isdigit() and m.isdigit():
                return cls(int(e), int(m))
        raise ValueError(f"unknown format {spec!r}: use bf16, fp16, fp32 or e<E>m<M>")


_NAMES = {(8, 7): "bf16", (5, 10): "fp16", (8, 23): "fp32"}
BF16 = FloatFormat(8, 7)
FP16 = FloatFormat(5, 10)
FP32 = FloatFormat(8, 23)
FORMATS = {"bf16": BF16, "fp16": FP16, "fp32": FP32}


def _real_array(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind in "iu" and arr.size and np.max(np.abs(arr.astype(np.float64))) >= 2**53:
        raise ValueError(f"{name} holds integers of 2**53 or more, which float64 cannot hold")
    with np.errstate(invalid="ignore"):  # signaling NaNs are quieted, which is harmless here
        return arr.astype(np.float64)


@njit(parallel=True, cache=True)
def _round_kernel(src, exp_bits, man_bits, out):
    for k in prange(src.size):
        out[k] = np.float32(round_fmt(src[k], exp_bits, man_bits))


@njit(parallel=True, cache=True)
def _binary_kernel(a, b, op, exp_bits, man_bits, out):
    for k in prange(a.size):
        if op == 0:
            out[k] = np.float32(mul_fmt(a[k], b[k], exp_bits, man_bits))
        else:
            out[k] = np.float32(add_fmt(a[k], b[k], exp_bits, man_bits))


def round_to(values, fmt: FloatFormat) -> np.ndarray:
    """Round real values once to ``fmt`` (IEEE round-to-nearest-even).

    Parameters
    ----------
    values : array_like
        Real values (float16/32/64 or integers below 2**53 in magnitude).
    fmt : FloatFormat
        Target format.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape holding values of ``fmt``: gradual underflow,
        overflow to +-inf, NaN as the canonical NaN, signs of zeros kept.
    """
    fmt = FloatFormat.parse(fmt)
    src = _real_array(values, "values")
    out = np.empty(src.shape, np.float32)
    _round_kernel(src.ravel(), fmt.exp_bits, fmt.man_bits, out.reshape(-1))
    return out


def round_fraction(value: Fraction, fmt: FloatFormat) -> float:
    """Round an exact rational (positive or negative, nonzero or zero) once to ``fmt``.

    Used for configuration constants whose exact value is a quotient of reals; returns the
    float64 holding the rounded value (+-inf on overflow).
    """
    fmt = FloatFormat.parse(fmt)
    q = Fraction(value)
    if q == 0:
        return 0.0
    mag = abs(q)
    e = mag.numerator.bit_length() - mag.denominator.bit_length()
    if Fraction(2) ** e > mag:
        e -= 1  # now 2**e <= mag < 2**(e+1)
    quantum_exp = max(e, 1 - fmt.bias) - fmt.man_bits
    scaled = mag / Fraction(2) ** quantum_exp
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * rest
    if twice > scaled.denominator or (twice == scaled.denominator and whole % 2 == 1):
        whole += 1
    result = math.ldexp(float(whole), quantum_exp)
    if result > fmt.max_finite:
        result = math.inf
    return -result if q < 0 else result


def int_to_float(ints, fmt: FloatFormat) -> np.ndarray:
    """Convert integers (below 2**53 in magnitude) to ``fmt``, rounding once.

    Parameters
    ----------
    ints : array_like of int
    fmt : FloatFormat

    Returns
    -------
    numpy.ndarray
        float32 array of ``fmt`` values; integer zero gives +0.
    """
    arr = np.asarray(ints)
    if arr.dtype.kind not in "biu":
        raise TypeError(f"ints must be an integer array, got dtype {arr.dtype}")
    return round_to(arr, fmt)


def _operands(a, b):
    fa, fb = _real_array(a, "a"), _real_array(b, "b")
    for name, arr in (("a", fa), ("b", fb)):
        as32 = arr.astype(np.float32).astype(np.float64)
        bad = ~((as32 == arr) | np.isnan(arr))
        if bad.any():
            idx = tuple(int(v) for v in np.argwhere(bad)[0])
            raise ValueError(f"{name}{list(idx)} = {arr[idx]!r} is not a binary32 value")
    return np.broadcast_arrays(fa, fb)


def mul(a, b, fmt: FloatFormat) -> np.ndarray:
    """IEEE multiply in ``fmt``: the exact product of ``a`` and ``b`` rounded once.

    Parameters
    ----------
    a, b : array_like
        Operands (broadcast together); each must be exactly a binary32 value (any value of
        any supported format is).
    fmt : FloatFormat
        Format of the result.

    Returns
    -------
    numpy.ndarray
        float32 array of ``fmt`` values; ``0 * inf`` and NaN operands give the canonical NaN.
    """
    return _binary(a, b, 0, fmt)


def add(a, b, fmt: FloatFormat) -> np.ndarray:
    """IEEE add in ``fmt``: the exact sum of ``a`` and ``b`` rounded once.

    Parameters
    ----------
    a, b : array_like
        Operands (broadcast together); each must be exactly a binary32 value.
    fmt : FloatFormat
        Format of the result.

    Returns
    -------
    numpy.ndarray
        float32 array of ``fmt`` values. An exact zero sum of operands of opposite signs is
        +0; ``-0 + -0`` is -0; ``inf - inf`` is the canonical NaN.
    """
    return _binary(a, b, 1, fmt)


def _binary(a, b, op, fmt):
    fmt = FloatFormat.parse(fmt)
    fa, fb = _operands(a, b)
    out = np.empty(fa.shape, np.float32)
    _binary_kernel(
        np.ascontiguousarray(fa).reshape(-1),
        np.ascontiguousarray(fb).reshape(-1),
        op,
        fmt.exp_bits,
        fmt.man_bits,
        out.reshape(-1),
    )
    return out


def to_bits(values, fmt: FloatFormat) -> np.ndarray:
    """Bit patterns of values of ``fmt``.

    Parameters
    ----------
    values : array_like
        Values exactly representable in ``fmt`` (NaN of any payload allowed).
    fmt : FloatFormat

    Returns
    -------
    numpy.ndarray
        uint32 array of ``fmt.width``-bit patterns. A NaN keeps the top ``man_bits`` of its
        binary32 payload (the quiet bit is set if they are all zero).

    Raises
    ------
    ValueError
        Where a value is not exactly a value of ``fmt``, naming the first such index.
    """
    fmt = FloatFormat.parse(fmt)
    src = _real_array(values, "values")
    rounded = round_to(src, fmt)
    bad = ~np.isnan(src) & ((rounded != src) | (np.signbit(rounded) != np.signbit(src)))
    if bad.any():
        idx = tuple(int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"values{list(idx)} = {src[idx]!r} is not a value of {fmt.name}")
    # float32 input is read as bits directly: a float64 round trip would quiet signaling NaNs
    raw = np.asarray(values)
    f32 = (raw if raw.dtype == np.float32 else src.astype(np.float32)).reshape(-1)
    u = np.ascontiguousarray(f32).view(np.uint32).astype(np.uint64)
    sign = u >> 31
    e32 = (u >> 23) & 0xFF
    m32 = u & 0x7FFFFF
    shift = 23 - fmt.man_bits
    exp_all_ones = (1 << fmt.exp_bits) - 1
    out = np.zeros(u.shape, np.uint64)
    nan = e32 == 0xFF
    nan &= m32 != 0
    inf = (e32 == 0xFF) & (m32 == 0)
    finite = ~(nan | inf)
    # finite values: exponent and mantissa of fmt from the exact float64 value
    with np.errstate(invalid="ignore"):
        mag = np.abs(f32.astype(np.float64))
    _, e2 = np.frexp(mag)
    e_unb = e2.astype(np.int64) - 1
    emin = 1 - fmt.bias
    normal = finite & (mag != 0) & (e_unb >= emin)
    sub = finite & (mag != 0) & ~normal
    with np.errstate(over="ignore", invalid="ignore"):
        man_normal = np.ldexp(mag, (fmt.man_bits - e_unb).astype(np.int32)) - 2.0**fmt.man_bits
        man_sub = np.ldexp(mag, fmt.man_bits - emin)
    out[normal] = ((e_unb[normal] + fmt.bias).astype(np.uint64) << fmt.man_bits) | man_normal[
        normal
    ].astype(np.uint64)
    out[sub] = man_sub[sub].astype(np.uint64)
    out[inf] = np.uint64(exp_all_ones << fmt.man_bits)
    payload = m32 >> shift
    payload = np.where(payload == 0, np.uint64(1 << (fmt.man_bits - 1)), payload)
    out[nan] = (np.uint64(exp_all_ones << fmt.man_bits) | payload)[nan]
    out |= sign << np.uint64(fmt.exp_bits + fmt.man_bits)
    return out.astype(np.uint32).reshape(src.shape)


def from_bits(bits, fmt: FloatFormat) -> np.ndarray:
    """Values of ``fmt`` bit patterns.

    Parameters
    ----------
    bits : array_like of int
        Patterns in ``[0, 2**fmt.width)``.
    fmt : FloatFormat

    Returns
    -------
    numpy.ndarray
        float32 array; NaN payloads are kept in the top bits of the binary32 mantissa.
    """
    fmt = FloatFormat.parse(fmt)
    arr = np.asarray(bits)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"bits must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= (1 << fmt.width)):
        bad = (arr < 0) | (arr >= (1 << fmt.width))
        idx = tuple(int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"bits{list(idx)} = {arr[idx]} is not a {fmt.width}-bit pattern")
    u = arr.astype(np.uint64)
    m_mask = np.uint64((1 << fmt.man_bits) - 1)
    e_mask = np.uint64((1 << fmt.exp_bits) - 1)
    sign = (u >> np.uint64(fmt.exp_bits + fmt.man_bits)) & np.uint64(1)
    exp = (u >> np.uint64(fmt.man_bits)) & e_mask
    man = u & m_mask
    emin = 1 - fmt.bias
    mag = np.where(
        exp == 0,
        np.ldexp(man.astype(np.float64), emin - fmt.man_bits),
        np.ldexp(
            (man + np.uint64(1 << fmt.man_bits)).astype(np.float64),
            (exp.astype(np.int64) - fmt.bias - fmt.man_bits).astype(np.int32),
        ),
    )
    special = exp == e_mask
    mag = np.where(special, np.inf, mag)
    out = np.where(sign == 1, -mag, mag).astype(np.float32)
    view = out.view(np.uint32)
    nan = special & (man != 0)
    shift = np.uint64(23 - fmt.man_bits)
    nan_bits = (sign << np.uint64(31)) | np.uint64(0x7F800000) | (man << shift)
    view[nan] = nan_bits[nan].astype(np.uint32)
    return out
