"""Block scales and DAC/weight codes (docs/arithmetic.md steps 1-3) against the Fraction
reference."""

from fractions import Fraction

import numpy as np
import pytest

from simulator import BF16, FP16, FP32, TileConfig, quantize_inputs, quantize_weights
from tests import reference as ref


def check_against_reference(x, cfg):
    """quantize_inputs and quantize_weights on the same rows both equal the reference."""
    expected_values, expected_scales, expected_codes = ref.quantize_rows(
        [list(map(float, row)) for row in x], cfg.n, cfg.bx, cfg.in_fmt, cfg.scale_fmt
    )
    codes, scales = quantize_inputs(x, cfg)
    assert codes.dtype == np.int32 and scales.dtype == np.float32
    np.testing.assert_array_equal(codes, np.array(expected_codes))
    np.testing.assert_array_equal(scales.view(np.uint32), ref.fp32_bits(expected_scales))

    weight_cfg = TileConfig(
        n=cfg.n, bw=cfg.bx, w_fmt=cfg.in_fmt, scale_fmt=cfg.scale_fmt, bx=min(cfg.bx, 8)
    )
    qw = quantize_weights(x, weight_cfg)
    np.testing.assert_array_equal(qw.code, np.array(expected_codes))
    np.testing.assert_array_equal(qw.scale.view(np.uint32), ref.fp32_bits(expected_scales))
    np.testing.assert_array_equal(qw.values.view(np.uint32), ref.fp32_bits(expected_values))


@pytest.mark.parametrize(
    "n, bits, in_fmt, scale_fmt",
    [
        (1, 8, BF16, BF16),
        (3, 2, BF16, BF16),
        (8, 6, BF16, FP16),
        (32, 8, FP16, BF16),
        (32, 10, FP32, BF16),
        (16, 16, FP32, FP32),
        (7, 12, FP16, FP16),
    ],
)
def test_random_rows_match_reference(n, bits, in_fmt, scale_fmt):
    rng = np.random.default_rng(n * 100 + bits)
    k = 3 * n + (n // 2 if n > 1 else 0)  # ragged last tile when n > 1
    x = rng.standard_normal((6, k)) * 2.0 ** rng.integers(-6, 6, (6, 1))
    cfg = TileConfig(n=n, bx=bits, in_fmt=in_fmt, scale_fmt=scale_fmt)
    check_against_reference(x, cfg)


@pytest.mark.parametrize(
    "bits, fmt", [(2, BF16), (3, BF16), (5, BF16), (8, BF16), (11, FP16), (16, FP32)]
)
def test_exact_ties_round_to_even(bits, fmt):
    """With the block maximum at M (exact in the format), v * M / s = v: every half-integer
    below M is an exact tie (a random sample of them for wide quantizers)."""
    limit = ref.code_max(bits)
    integers = np.arange(limit)
    if limit > 300:
        integers = np.sort(np.random.default_rng(bits).choice(limit, 300, replace=False))
    halves = integers + 0.5
    row = np.concatenate([[float(limit)], halves, -halves])
    exponents = (-130, -20, 0, 7, 100) if fmt.exp_bits == 8 else (-10, 0, 3)
    rows = np.stack([row * 2.0**e for e in exponents])
    cfg = TileConfig(n=row.size, bx=bits, bw=2, in_fmt=fmt, scale_fmt=fmt)
    codes, _ = quantize_inputs(rows, cfg)
    tie_codes = np.array([ref.rne(Fraction(2 * int(k) + 1, 2)) for k in integers])
    np.testing.assert_array_equal(
        codes[:, 0, 1 : halves.size + 1], np.tile(tie_codes, (len(exponents), 1))
    )
    check_against_reference(rows, cfg)


def test_near_ties_in_fp32_round_exactly():
    """fp32 values within an ulp of a tie of a 16-bit quantizer: the float64 quotient must not
    turn a near-tie into a tie or the other way round."""
    rng = np.random.default_rng(7)
    limit = ref.code_max(16)
    rows = []
    for _ in range(8):
        scale = np.float32(rng.uniform(0.5, 2.0) * 2.0 ** rng.integers(-100, 100))
        ties = (rng.integers(-limit, limit, 30) + 0.5) * np.float64(scale) / limit
        near = ties.astype(np.float32)
        block = np.concatenate(
            [[scale], near, np.nextafter(near, np.float32(np.inf)),
             np.nextafter(near, np.float32(-np.inf))]
        )  # fmt: skip
        rows.append(block)
    cfg = TileConfig(n=len(rows[0]), bx=16, bw=8, in_fmt=FP32, scale_fmt=FP32)
    check_against_reference(np.array(rows, dtype=np.float32), cfg)


def test_zero_blocks_and_negative_zeros():
    x = np.array(
        [[0.0, -0.0, 0.0, -0.0, 1.5, -0.0, 0.0, 2.0], [-0.0] * 8, [0.0] * 8], dtype=np.float32
    )
    cfg = TileConfig(n=4, bx=8)
    codes, scales = quantize_inputs(x, cfg)
    expected_scales = np.float32([[0.0, 2.0], [0.0, 0.0], [0.0, 0.0]])  # +0 for all-zero blocks
    np.testing.assert_array_equal(scales.view(np.uint32), expected_scales.view(np.uint32))
    np.testing.assert_array_equal(codes[:, 0, :], np.zeros((3, 4), np.int32))
    check_against_reference(x, cfg)


def test_single_huge_element():
    row = np.full(16, 1e-3)
    row[5] = 3.0e38
    x = np.stack([row, -row])
    check_against_reference(x, TileConfig(n=16, bx=8, in_fmt=BF16, scale_fmt=BF16))
    check_against_reference(x, TileConfig(n=8, bx=8, in_fmt=FP32, scale_fmt=BF16))


def test_scale_overflow_gives_infinite_scale():
    """fp32 operands with an fp16 scale: a block maximum beyond fp16's range gives an infinite
    scale; one just below the rounding edge gives a scale below the maximum (codes clamp)."""
    x = np.array(
        [[1e5, 3.0, -2.0, 0.5], [65519.0, 65504.0, -65519.0, 1.0], [65520.0, 1.0, 2.0, 3.0]],
        dtype=np.float32,
    )
    cfg = TileConfig(n=4, bx=8, in_fmt=FP32, scale_fmt=FP16)
    _, scales = quantize_inputs(x, cfg)
    assert np.isinf(scales[0, 0]) and np.isinf(scales[2, 0]) and scales[1, 0] == 65504.0
    check_against_reference(x, cfg)


def test_subnormal_scales():
    rng = np.random.default_rng(8)
    # fp32 subnormal operands with a bf16 scale; fp16 scales in fp16's subnormal range and
    # below its smallest subnormal (the scale underflows to zero).
    fp32_subnormal = rng.uniform(-1, 1, (4, 16)) * 2.0**-128
    check_against_reference(fp32_subnormal, TileConfig(n=8, bx=8, in_fmt=FP32, scale_fmt=BF16))
    fp16_subnormal = rng.uniform(-1, 1, (4, 16)) * 2.0 ** rng.integers(-27, -14, (4, 1))
    check_against_reference(fp16_subnormal, TileConfig(n=8, bx=6, in_fmt=BF16, scale_fmt=FP16))
