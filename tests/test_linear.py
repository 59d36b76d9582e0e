"""The whole forward pass (docs/arithmetic.md steps 1-10) against the Fraction reference, stage
by stage."""

import numpy as np
import pytest

from simulator import (
    BF16,
    FP16,
    FP32,
    FloatFormat,
    TileConfig,
    abfp_linear,
    noise,
    quantize_weights,
)
from tests import reference as ref


def f32_bits(values):
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def f64_bits(values):
    return np.asarray(values, dtype=np.float64).view(np.uint64)


def assert_matches_reference(x, w, cfg, seed=None, stream=0):
    """abfp_linear (fused and traced paths, raw and pre-quantized weights) equals the
    reference at every stage, bit for bit. Returns the reference result."""
    x2 = np.asarray(x).reshape(-1, np.shape(x)[-1])
    rows, k = x2.shape
    outputs = np.shape(w)[0]
    tiles = -(-k // cfg.n)
    e = noise((rows, outputs, tiles), cfg, seed=seed, stream=stream)
    expected = ref.forward(x2, w, cfg, e)
    y_bits = ref.fp32_bits(expected.y)

    y, trace = abfp_linear(x, w, cfg, seed=seed, stream=stream, trace=True)
    stages = [
        ("x_fmt", f32_bits(trace.x_fmt), ref.fp32_bits(expected.x_fmt)),
        ("w_fmt", f32_bits(trace.w_fmt), ref.fp32_bits(expected.w_fmt)),
        ("x_scale", f32_bits(trace.x_scale), ref.fp32_bits(expected.x_scale)),
        ("w_scale", f32_bits(trace.w_scale), ref.fp32_bits(expected.w_scale)),
        ("x_code", trace.x_code, expected.x_code),
        ("w_code", trace.w_code, expected.w_code),
        ("mac", trace.mac, expected.mac),
        ("analog", f64_bits(trace.analog), f64_bits(expected.analog)),
        ("noise", f64_bits(trace.noise), f64_bits(e)),
        ("adc_code", trace.adc_code, expected.adc_code),
        ("partial", f32_bits(trace.partial), ref.fp32_bits(expected.partial)),
        ("acc", f32_bits(trace.acc), ref.fp32_bits(expected.acc)),
        ("y (trace)", f32_bits(trace.y), y_bits),
    ]
    for name, got, want in stages:
        np.testing.assert_array_equal(got, want, err_msg=f"stage {name}")
    out_shape = np.shape(x)[:-1] + (outputs,)
    assert y.shape == out_shape and y.dtype == np.float32
    np.testing.assert_array_equal(f32_bits(y).reshape(rows, outputs), y_bits, "traced y")

    fused = abfp_linear(x, w, cfg, seed=seed, stream=stream)
    assert fused.shape == out_shape and fused.dtype == np.float32
    np.testing.assert_array_equal(f32_bits(fused).reshape(rows, outputs), y_bits, "fused y")
    reused = abfp_linear(x, quantize_weights(w, cfg), cfg, seed=seed, stream=stream)
    np.testing.assert_array_equal(f32_bits(reused).reshape(rows, outputs), y_bits, "reused w")
    return expected


def workload(rng, rows, outputs, k, x_scale=1.0, w_scale=1.0):
    """Normal inputs and Laplace weights (the paper's synthetic workload), scaled."""
    x = rng.standard_normal((rows, k)) * x_scale
    w = rng.laplace(size=(outputs, k)) * w_scale
    return x.astype(np.float32), w.astype(np.float32)


BITS = {"6/6/8": (6, 6, 8), "8/8/8": (8, 8, 8), "10/7/11": (10, 7, 11)}


@pytest.mark.parametrize("noise_kind", ["none", "uniform", "gaussian"])
@pytest.mark.parametrize("gain", [1.0, 1.86, 8.0])
@pytest.mark.parametrize("bits", list(BITS), ids=list(BITS))
@pytest.mark.parametrize("n", [1, 8, 32, 128])
def test_matches_reference(n, bits, gain, noise_kind):
    bx, bw, by = BITS[bits]
    cfg = TileConfig(n=n, bx=bx, bw=bw, by=by, gain=gain, noise=noise_kind, seed=n + by)
    rng = np.random.default_rng(n * 1000 + bx * 10 + int(gain * 100))
    k = {1: 5, 8: 21, 32: 70, 128: 200}[n]  # ragged last tile for n > 1
    x, w = workload(rng, 3, 5, k)
    result = assert_matches_reference(x, w, cfg, stream=2)
    if n == 8 and gain == 8.0:
        assert np.abs(result.adc_code).max() == ref.code_max(by), "expected ADC saturation"


FORMAT_FIELDS = ["in_fmt", "w_fmt", "scale_fmt", "partial_fmt", "acc_fmt", "out_fmt"]


def assert_format_settings_match_reference(settings, seed):
    cfg = TileConfig(n=8, bx=8, bw=8, by=8, gain=2.0, noise="uniform", **settings)
    rng = np.random.default_rng(seed)
    # Magnitudes inside every format's range; the narrow ones overflow in the rescale.
    x, w = workload(rng, 3, 4, 27, x_scale=0.5, w_scale=0.25)
    assert_matches_reference(x, w, cfg, seed=5)


@pytest.mark.parametrize("fmt", [BF16, FP16, FP32], ids=str)
@pytest.mark.parametrize("field", FORMAT_FIELDS)
def test_every_format_option(field, fmt):
    settings = {field: fmt}
    if field == "acc_fmt" and fmt == FP16:
        settings["partial_fmt"] = fmt  # the partial format must widen exactly into acc
    assert_format_settings_match_reference(settings, FORMAT_FIELDS.index(field))


@pytest.mark.parametrize(
    "formats",
    [
        [(4, 3)] * 6,
        [(6, 9), (5, 2), (3, 2), (6, 9), (7, 16), (5, 2)],
    ],
    ids=["e4m3", "mixed"],
)
def test_odd_formats(formats):
    settings = {field: FloatFormat(*f) for field, f in zip(FORMAT_FIELDS, formats, strict=True)}
    assert_format_settings_match_reference(settings, seed=7)


def test_wide_exponent_formats_with_tiny_and_large_values():
    cfg = TileConfig(n=4, in_fmt=FP32, w_fmt=FP32, scale_fmt=FP32, partial_fmt=FP32,
                     out_fmt=FP32, bx=10, bw=10, by=12, gain=4.0)  # fmt: skip
    rng = np.random.default_rng(21)
    x, w = workload(rng, 4, 3, 10)
    x *= np.float32(2.0**-60)
    w *= np.float32(2.0**50)
    assert_matches_reference(x, w, cfg, seed=1)


def test_all_zero_blocks_and_negative_zeros():
    """Zero blocks have zero scales and codes; noise can still give non-zero ADC codes, whose
    rescaled value is a zero signed like the code."""
    rng = np.random.default_rng(22)
    x, w = workload(rng, 4, 6, 24)
    x[0] = -0.0
    x[1, :8] = 0.0
    x[2, 8:16] = -0.0
    w[0] = 0.0
    w[1, 16:] = -0.0
    cfg = TileConfig(n=8, noise="uniform", noise_amplitude=3.0, gain=1.0)
    result = assert_matches_reference(x, w, cfg, seed=3)
    zero_blocks = result.w_scale[0] == 0
    assert zero_blocks.all() and np.any(result.adc_code[:, 0, :] != 0)
    assert np.any(np.signbit(result.partial[:, 0, :]))


def test_single_huge_element():
    rng = np.random.default_rng(23)
    x, w = workload(rng, 3, 4, 16)
    x[0, 3] = 3.0e38
    x[1, 12] = -1.0e30
    w[2, 5] = 2.0e20
    assert_matches_reference(x, w, TileConfig(n=8, noise="uniform", gain=1.86), seed=4)


def test_exact_quantizer_ties():
    """Blocks whose maximum is M(bx) make every half-integer an exact tie of the DAC."""
    limit = ref.code_max(5)
    halves = np.arange(limit) + 0.5
    row = np.concatenate([[float(limit)], halves, -halves[:-1]])  # 31 elements, M = 15
    x = np.stack([row, -row, row * 0.25]).astype(np.float32)
    w = np.stack([np.roll(row, s) for s in range(3)]).astype(np.float32)
    cfg = TileConfig(n=31, bx=5, bw=5, by=8, noise="none")
    assert_matches_reference(x, w, cfg)


def test_scale_products_overflow_to_inf_and_nan():
    """sx * sw beyond fp32 gives inf partials; a zero ADC code times inf is NaN; +inf and
    -inf partials of two tiles sum to NaN; the output keeps inf and the canonical NaN."""
    x = np.array(
        [[3e38, 1.0, -2.0, 0.5, -3e38, 1.0, 2.0, 0.0],
         [1e30, -1e30, 0.0, 0.0, 1e-3, 0.0, 0.0, 0.0],
         [1e-30, 1e-30, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], dtype=np.float32
    )  # fmt: skip
    w = np.array(
        [[2e38, 3.0, 1.0, 1.0, 3e38, -1.0, 1.0, 1.0],
         [1e30, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
         [1.0, 0.0, 0.0, 0.0, 1e20, 0.0, 0.0, 1.0]], dtype=np.float32
    )  # fmt: skip
    cfg = TileConfig(n=4, noise="none", in_fmt=FP32, w_fmt=FP32, scale_fmt=FP32)
    result = assert_matches_reference(x, w, cfg)
    assert np.isinf(result.partial).any() and np.isnan(result.y).any()
    assert np.isinf(result.y).any()


def test_scale_products_go_subnormal():
    rng = np.random.default_rng(24)
    x, w = workload(rng, 3, 4, 12)
    x *= np.float32(2.0**-70)
    w *= np.float32(2.0**-60)
    cfg = TileConfig(n=4, noise="uniform", in_fmt=FP32, w_fmt=FP32, scale_fmt=BF16)
    result = assert_matches_reference(x, w, cfg, seed=9)
    tiny = np.abs(result.partial[result.partial != 0])
    assert (tiny < 2.0**-126).any()


def test_batch_dimensions():
    rng = np.random.default_rng(25)
    x, w = workload(rng, 6, 5, 20)
    cfg = TileConfig(n=8, noise="gaussian", noise_amplitude=0.7)
    x3 = x.reshape(2, 3, 20)
    assert_matches_reference(x3, w, cfg, seed=13, stream=4)
    flat = abfp_linear(x, w, cfg, seed=13, stream=4)
    np.testing.assert_array_equal(
        f32_bits(abfp_linear(x3, w, cfg, seed=13, stream=4)), f32_bits(flat).reshape(2, 3, 5)
    )
    one_row = abfp_linear(x[0], w, cfg, seed=13, stream=4)
    assert one_row.shape == (5,)
    np.testing.assert_array_equal(f32_bits(one_row), f32_bits(flat[0]))


def test_input_dtypes_give_the_same_result():
    """x as float64, float32 or float16 holding the same values gives the same bits."""
    rng = np.random.default_rng(26)
    x, w = workload(rng, 3, 4, 16)
    x16 = x.astype(np.float16)
    cfg = TileConfig(n=8)
    expected = f32_bits(abfp_linear(x16.astype(np.float64), w, cfg))
    for dtype in (np.float16, np.float32):
        np.testing.assert_array_equal(f32_bits(abfp_linear(x16.astype(dtype), w, cfg)), expected)
