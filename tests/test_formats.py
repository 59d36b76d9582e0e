"""Floating-point formats of the golden model against integer bit arithmetic, NumPy's own IEEE
arithmetic and the Fraction reference."""

from fractions import Fraction

import numpy as np
import pytest

from simulator.formats import (
    BF16,
    FP16,
    FP32,
    FloatFormat,
    add,
    from_bits,
    int_to_float,
    mul,
    round_to,
    to_bits,
)
from tests import reference as ref

CANONICAL_NAN_FP32 = 0x7FC00000


def fp32_bits_of(values):
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def canonical_nan_bits(values):
    """fp32 bit patterns of float32 ``values`` with every NaN replaced by the canonical NaN."""
    bits = fp32_bits_of(values).copy()
    bits[np.isnan(values)] = CANONICAL_NAN_FP32
    return bits


def values_of(patterns, fmt):
    """float32 array holding the values of ``fmt`` bit patterns, decoded by the reference."""
    return np.array([ref.decode(int(p), fmt) for p in patterns], dtype=np.float32)


def random_fp32_patterns(rng, count):
    return rng.integers(0, 2**32, count, dtype=np.uint64).astype(np.uint32)


def special_fp32_values():
    """Zeros, smallest and largest subnormals and normals, max, infinities, NaNs, ones."""
    patterns = [
        0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF,
        0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000,
        0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF, 0x3F800000, 0xBF800000,
        0x3F800001, 0x33800000, 0x0C000000, 0x477FE000, 0x38800000, 0x33000000,
    ]  # fmt: skip
    return np.array(patterns, dtype=np.uint32).view(np.float32)


def bf16_rne_bits(fp32_patterns):
    """fp32 -> bf16 by integer arithmetic on the pattern: add 0x7FFF plus the lowest kept bit,
    drop 16 bits; every NaN becomes the canonical bf16 NaN."""
    bits = fp32_patterns.astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    is_nan = ((bits & 0x7F800000) == 0x7F800000) & ((bits & 0x007FFFFF) != 0)
    return np.where(is_nan, 0x7FC0, rounded).astype(np.uint32)


@pytest.mark.parametrize("fmt", [BF16, FP16], ids=["bf16", "fp16"])
def test_every_16_bit_pattern_round_trips(fmt):
    patterns = np.arange(2**16, dtype=np.uint32)
    values = from_bits(patterns, fmt)
    expected = np.array([ref.fp32_pattern_of(int(p), fmt) for p in patterns], dtype=np.uint32)
    np.testing.assert_array_equal(fp32_bits_of(values), expected)
    np.testing.assert_array_equal(to_bits(values, fmt), patterns)


def test_bf16_patterns_are_the_top_half_of_fp32():
    patterns = np.arange(2**16, dtype=np.uint32)
    np.testing.assert_array_equal(fp32_bits_of(from_bits(patterns, BF16)), patterns << 16)


def test_fp16_patterns_decode_like_numpy():
    patterns = np.arange(2**16, dtype=np.uint32)
    numpy_values = patterns.astype(np.uint16).view(np.float16).astype(np.float32)
    ours = from_bits(patterns, FP16)
    finite = ~np.isnan(numpy_values)
    np.testing.assert_array_equal(fp32_bits_of(ours)[finite], fp32_bits_of(numpy_values)[finite])
    np.testing.assert_array_equal(np.isnan(ours), ~finite)


def bf16_tie_classes():
    """For upper halves with an even and an odd last bit, in every binade class (zero and
    subnormal exponent, normal, the largest finite), every rounding class of the lower half."""
    uppers = [0x0000, 0x0001, 0x007E, 0x007F, 0x0080, 0x3F80, 0x3F81, 0x7F7E, 0x7F7F]
    lowers = [0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF]
    patterns = [
        (sign << 31) | (upper << 16) | lower
        for sign in (0, 1)
        for upper in uppers
        for lower in lowers
    ]
    return np.array(patterns, dtype=np.uint32)


def test_fp32_to_bf16_matches_integer_rounding():
    rng = np.random.default_rng(1)
    nans = np.array([0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFC00000, 0x7FC00001], np.uint32)
    patterns = np.concatenate(
        [random_fp32_patterns(rng, 200_000), bf16_tie_classes(), nans,
         fp32_bits_of(special_fp32_values())]
    )  # fmt: skip
    rounded = round_to(patterns.view(np.float32), BF16)
    expected = bf16_rne_bits(patterns)
    np.testing.assert_array_equal(to_bits(rounded, BF16), expected)
    np.testing.assert_array_equal(fp32_bits_of(rounded), expected << 16)


def test_fp32_to_fp16_matches_numpy():
    rng = np.random.default_rng(2)
    random_patterns = random_fp32_patterns(rng, 100_000)
    # Values near fp16's range: subnormals, ties, the largest finite and the overflow edge.
    near_range = rng.standard_normal(100_000) * 2.0 ** rng.integers(-26, 17, 100_000)
    halfway = (np.arange(0, 2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
               .astype(np.float32))  # fmt: skip
    with np.errstate(invalid="ignore"):
        next_up = np.nextafter(halfway, np.float32(np.inf))
        scaled_up = (halfway.astype(np.float64) * (1 + 2.0**-11)).astype(np.float32)
    values = np.concatenate(
        [random_patterns.view(np.float32), near_range.astype(np.float32), halfway, scaled_up,
         next_up, special_fp32_values(), np.float32([65504.0, 65519.996, 65520.0, -65520.0])]
    )  # fmt: skip
    with np.errstate(over="ignore", invalid="ignore"):
        expected = values.astype(np.float16)
    expected_bits = expected.view(np.uint16).astype(np.uint32)
    expected_bits[np.isnan(expected)] = 0x7E00
    rounded = round_to(values, FP16)
    np.testing.assert_array_equal(to_bits(rounded, FP16), expected_bits)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(
            fp32_bits_of(rounded), canonical_nan_bits(expected.astype(np.float32))
        )


ODD_FORMATS = [(2, 1), (3, 2), (4, 3), (5, 2), (6, 9), (7, 16), (8, 1), (8, 23), (5, 10), (8, 7)]


def random_float64(rng, count, low_exponent, high_exponent):
    exponents = rng.integers(low_exponent, high_exponent, count)
    return rng.standard_normal(count) * 2.0**exponents


@pytest.mark.slow
@pytest.mark.parametrize("fields", ODD_FORMATS, ids=str)
def test_round_to_matches_fraction_reference(fields):
    fmt = FloatFormat(*fields)
    _, _, _, emin, max_finite = ref._limits(fields)
    rng = np.random.default_rng(fields[0] * 100 + fields[1])
    top = int(np.log2(float(max_finite))) + 3
    values64 = np.concatenate(
        [random_float64(rng, 3000, emin - fields[1] - 4, top),
         [0.0, -0.0, np.inf, -np.inf, np.nan, float(max_finite), -float(max_finite)]]
    )  # fmt: skip
    # Exact ties and their neighbours: midpoints between adjacent values of the format
    # (between all of them for narrow formats, between random neighbours for wide ones).
    positive_patterns = 2 ** (fields[0] + fields[1])
    if positive_patterns <= 2**12:
        patterns = np.arange(positive_patterns)
    else:
        patterns = np.unique(rng.integers(0, positive_patterns - 1, 1500))
        patterns = np.concatenate([patterns, patterns + 1, [0, 1, positive_patterns - 2]])
    grid = np.unique([ref.decode(int(p), fields) for p in patterns])
    grid = grid[np.isfinite(grid)]
    midpoints = (grid[:-1] + grid[1:]) / 2
    values64 = np.concatenate([values64, midpoints, -midpoints, np.nextafter(midpoints, 0)])
    with np.errstate(over="ignore"):
        values32 = values64.astype(np.float32)
    for values in (values64, values32):
        rounded = round_to(values, fmt)
        assert rounded.dtype == np.float32
        expected = ref.fp32_bits([ref.round_value(v, fields) for v in values])
        np.testing.assert_array_equal(fp32_bits_of(rounded), expected)
        expected_fmt_bits = [ref.encode(ref.round_value(v, fields), fields) for v in values]
        np.testing.assert_array_equal(to_bits(rounded, fmt), np.array(expected_fmt_bits))


def test_round_to_from_float64_rounds_once():
    """A float64 just above an fp16/bf16 tie must round up, not tie-break after a detour
    through float32 (which would land exactly on the tie)."""
    above_tie_fp16 = 1.0 + 2.0**-11 + 2.0**-40
    above_tie_bf16 = 1.0 + 2.0**-8 + 2.0**-40
    np.testing.assert_array_equal(
        fp32_bits_of(round_to(np.array([above_tie_fp16, -above_tie_fp16]), FP16)),
        fp32_bits_of(np.float32([1.0 + 2.0**-10, -1.0 - 2.0**-10])),
    )
    np.testing.assert_array_equal(
        fp32_bits_of(round_to(np.array([above_tie_bf16]), BF16)),
        fp32_bits_of(np.float32([1.0 + 2.0**-7])),
    )


def test_to_bits_refuses_inexact_values():
    with pytest.raises(ValueError):
        to_bits(np.float32([1.0 + 2.0**-10]), BF16)
    with pytest.raises(ValueError):
        to_bits(np.float32([1e-30]), FP16)


def fp32_operands(rng):
    """Random fp32 patterns, random moderate values and every pair of special values."""
    specials = special_fp32_values()
    pairs_a, pairs_b = np.meshgrid(specials, specials)
    random_a = random_fp32_patterns(rng, 50_000).view(np.float32)
    random_b = random_fp32_patterns(rng, 50_000).view(np.float32)
    moderate_a = rng.standard_normal(50_000) * 2.0 ** rng.integers(-70, 70, 50_000)
    moderate_b = rng.standard_normal(50_000) * 2.0 ** rng.integers(-70, 70, 50_000)
    a = np.concatenate([pairs_a.ravel(), random_a, moderate_a.astype(np.float32)])
    b = np.concatenate([pairs_b.ravel(), random_b, moderate_b.astype(np.float32)])
    return a, b


@pytest.mark.parametrize("op, numpy_op", [(mul, np.multiply), (add, np.add)], ids=["mul", "add"])
def test_fp32_arithmetic_matches_numpy(op, numpy_op):
    a, b = fp32_operands(np.random.default_rng(3))
    with np.errstate(all="ignore"):
        expected = numpy_op(a, b)
    np.testing.assert_array_equal(fp32_bits_of(op(a, b, FP32)), canonical_nan_bits(expected))


def test_fp32_add_close_operands_cancel_exactly():
    """Subtractions of neighbours (exact results) and x + (-x) = +0."""
    rng = np.random.default_rng(4)
    a = (rng.standard_normal(10_000) * 2.0 ** rng.integers(-140, 120, 10_000)).astype(np.float32)
    b = -np.nextafter(a, np.float32(np.inf))
    for x, y in ((a, b), (a, -a), (-a, a)):
        with np.errstate(all="ignore"):
            expected = x + y
        np.testing.assert_array_equal(fp32_bits_of(add(x, y, FP32)), canonical_nan_bits(expected))


def format_operands(rng, fields, count):
    """Random patterns of a 16-bit format plus every pair of its special values, as floats."""
    exp_bits, man_bits = fields
    width = 1 + exp_bits + man_bits
    exp_ones = (2**exp_bits - 1) << man_bits
    one = (2 ** (exp_bits - 1) - 1) << man_bits
    # zero, smallest and largest subnormal, smallest normal, one, max finite, inf, a NaN
    specials = [0, 1, (1 << man_bits) - 1, 1 << man_bits, one, exp_ones - 1, exp_ones, exp_ones | 1]
    specials += [s | (1 << (width - 1)) for s in specials]
    pa, pb = np.meshgrid(specials, specials)
    patterns_a = np.concatenate([pa.ravel(), rng.integers(0, 2**width, count)])
    patterns_b = np.concatenate([pb.ravel(), rng.integers(0, 2**width, count)])
    # Nearby exponents make additions with real cancellation and rounding likely.
    patterns_b[-count // 2 :] = patterns_a[-count // 2 :] ^ rng.integers(0, 2**man_bits, count // 2)
    patterns_b[-count // 4 :] ^= 1 << (width - 1)
    return values_of(patterns_a, fields), values_of(patterns_b, fields)


@pytest.mark.parametrize("fmt", [BF16, FP16, FloatFormat(4, 3)], ids=["bf16", "fp16", "e4m3"])
@pytest.mark.parametrize("op, ref_op", [(mul, ref.mul), (add, ref.add)], ids=["mul", "add"])
def test_narrow_arithmetic_matches_fraction_reference(fmt, op, ref_op):
    fields = (fmt.exp_bits, fmt.man_bits)
    a, b = format_operands(np.random.default_rng(fields[1]), fields, 4000)
    expected = ref.fp32_bits(
        [ref_op(float(x), float(y), fields) for x, y in zip(a, b, strict=True)]
    )
    np.testing.assert_array_equal(fp32_bits_of(op(a, b, fmt)), expected)


def test_mul_of_values_of_other_formats_rounds_once():
    """fp32 operands multiplied into bf16: one rounding of the exact product."""
    rng = np.random.default_rng(5)
    a = (rng.standard_normal(5000) * 2.0 ** rng.integers(-80, 80, 5000)).astype(np.float32)
    b = (rng.standard_normal(5000) * 2.0 ** rng.integers(-80, 80, 5000)).astype(np.float32)
    for op, ref_op in ((mul, ref.mul), (add, ref.add)):
        expected = ref.fp32_bits(
            [ref_op(float(x), float(y), (8, 7)) for x, y in zip(a, b, strict=True)]
        )
        np.testing.assert_array_equal(fp32_bits_of(op(a, b, BF16)), expected)


@pytest.mark.parametrize("fmt", [BF16, FP16, FP32, FloatFormat(4, 3)], ids=str)
def test_int_to_float_matches_fraction_reference(fmt):
    fields = (fmt.exp_bits, fmt.man_bits)
    rng = np.random.default_rng(6)
    ints = np.concatenate(
        [np.arange(-300, 301), rng.integers(-(2**31), 2**31, 3000),
         rng.integers(-(2**17), 2**17, 3000),
         [2**24 + 1, 2**24 + 3, -(2**24) - 1, 65504, 65519, 65520, 2**31 - 1, -(2**31)]]
    ).astype(np.int64)  # fmt: skip
    expected = ref.fp32_bits([ref.round_fraction(Fraction(int(i)), fields) for i in ints])
    np.testing.assert_array_equal(fp32_bits_of(int_to_float(ints, fmt)), expected)
    np.testing.assert_array_equal(fp32_bits_of(int_to_float(ints.astype(np.int32), fmt)), expected)
    if fmt == FP32:
        np.testing.assert_array_equal(expected, fp32_bits_of(ints.astype(np.float32)))
