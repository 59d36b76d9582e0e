"""Bad input is refused with an error that names what is wrong and where."""

import math
import re
from fractions import Fraction

import numpy as np
import pytest

from simulator import (
    FloatFormat,
    TileConfig,
    abfp_linear,
    adc_codes,
    noise,
    quantize_inputs,
    quantize_weights,
    rescale_accumulate,
)
from simulator.config import gain_range
from tests import reference

CFG = TileConfig(n=4)


def operands(rows=2, outputs=3, k=6):
    rng = np.random.default_rng(0)
    return rng.standard_normal((rows, k)), rng.standard_normal((outputs, k))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_name_tensor_and_first_index(bad):
    x, w = operands()
    x[1, 4] = bad
    x[1, 5] = bad
    with pytest.raises(ValueError, match=re.escape("x[1, 4]")):
        abfp_linear(x, w, CFG)
    with pytest.raises(ValueError, match=re.escape("x[1, 4]")):
        quantize_inputs(x, CFG)
    x, w = operands()
    w[2, 0] = bad
    with pytest.raises(ValueError, match=re.escape("w[2, 0]")):
        abfp_linear(x, w, CFG)
    with pytest.raises(ValueError, match=re.escape("w[2, 0]")):
        quantize_weights(w, CFG)


def test_non_finite_input_in_batch_dimensions_names_full_index():
    x, w = operands(rows=6)
    x = x.reshape(2, 3, 6)
    x[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=re.escape("x[1, 2, 3]")):
        abfp_linear(x, w, CFG)


def test_values_overflowing_the_operand_format_are_refused():
    x, w = operands()
    x[0, 2] = 1e5
    with pytest.raises(ValueError, match=re.escape("x[0, 2]")):
        abfp_linear(x, w, TileConfig(n=4, in_fmt="fp16"))
    x, w = operands()
    w[1, 1] = -7e4
    with pytest.raises(ValueError, match=re.escape("w[1, 1]")):
        abfp_linear(x, w, TileConfig(n=4, w_fmt="fp16"))


@pytest.mark.parametrize(
    "x_shape, w_shape, name",
    [
        ((2, 6), (3, 5), "K"),  # inner dimensions differ
        ((2, 6), (6,), "w"),  # w not 2-D
        ((2, 6), (1, 3, 6), "w"),  # w not 2-D
        ((), (3, 6), "x"),  # x a scalar
        ((2, 0), (3, 0), "x"),  # K = 0
    ],
)
def test_wrong_shapes(x_shape, w_shape, name):
    with pytest.raises(ValueError, match=name):
        abfp_linear(np.ones(x_shape), np.ones(w_shape), CFG)


@pytest.mark.parametrize(
    "bad",
    [
        np.ones((2, 6), np.complex128),
        np.ones((2, 6), object),
        np.full((2, 6), "1.0"),
        np.ones((2, 6), "datetime64[s]"),
    ],
    ids=["complex", "object", "string", "datetime"],
)
def test_wrong_dtypes(bad):
    _, w = operands()
    with pytest.raises(TypeError, match="x"):
        abfp_linear(bad, w, CFG)
    with pytest.raises(TypeError, match="w"):
        abfp_linear(w, bad.reshape(2, 6), CFG)


def test_config_must_be_a_tile_config():
    x, w = operands()
    with pytest.raises(TypeError, match="cfg"):
        abfp_linear(x, w, {"n": 4})


INVALID_FIELDS = [
    ("n", 0), ("n", -3), ("n", 2.0), ("n", "8"), ("n", True), ("n", 2**24 + 1),
    ("bx", 1), ("bx", 17), ("bw", 1), ("bw", 17), ("by", 1), ("by", 17), ("by", 8.0),
    ("gain", 0.0), ("gain", -1.0), ("gain", float("nan")), ("gain", float("inf")),
    ("gain", "1"),
    ("noise", "pink"), ("noise", None), ("noise_amplitude", -0.5),
    ("noise_amplitude", float("nan")), ("noise_amplitude", float("inf")),
    ("in_fmt", "bf17"), ("w_fmt", "e9m7"), ("scale_fmt", "e5m24"), ("partial_fmt", "e8m0"),
    ("acc_fmt", 16), ("out_fmt", "e1m3"),
    ("seed", -1), ("seed", 2**64), ("seed", 1.5),
]  # fmt: skip


@pytest.mark.parametrize("field, value", INVALID_FIELDS, ids=lambda v: repr(v))
def test_invalid_config_fields_are_named(field, value):
    with pytest.raises((ValueError, TypeError), match=rf"\b{field}\b"):
        TileConfig(**{field: value})


def test_partial_format_must_widen_into_accumulator():
    with pytest.raises(ValueError, match="partial_fmt"):
        TileConfig(partial_fmt="fp32", acc_fmt="bf16")
    with pytest.raises(ValueError, match="partial_fmt"):
        TileConfig(partial_fmt="bf16", acc_fmt="fp16")


def test_largest_tiles_and_widest_codes_are_exact_or_refused():
    """A tile whose integer dot product could reach 2**53 is refused, naming n, bx and bw;
    the largest tile with 8-bit codes, and 16-bit codes on a tile just below the bound, pass."""
    TileConfig(n=2**24, bx=8, bw=8)
    cfg = TileConfig(n=2**23, bx=16, bw=16, by=16)
    assert cfg.mac_bound < 2**53
    with pytest.raises(ValueError, match=r"2\*\*53.*n \(16777216\).*bx \(16\).*bw \(16\)"):
        TileConfig(n=2**24, bx=16, bw=16)
    with pytest.raises(ValueError, match=r"TileConfig\.n must be an int in \[1, 16777216\]"):
        TileConfig(n=2**24 + 1)


@pytest.mark.parametrize(
    "fields, name", [((9, 7), "exp_bits"), ((1, 7), "exp_bits"), ((5, 24), "man_bits"),
                     ((5, 0), "man_bits"), ((5.0, 7), "exp_bits")]
)  # fmt: skip
def test_invalid_float_formats(fields, name):
    with pytest.raises((ValueError, TypeError), match=name):
        FloatFormat(*fields)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"stream": -1}, "stream"), ({"stream": 2**32}, "stream"), ({"seed": -2}, "seed"),
     ({"seed": 2**64}, "seed"), ({"batch_offset": -1}, "batch_offset"),
     ({"stream": 1.0}, "stream")],
)  # fmt: skip
def test_invalid_noise_identity(kwargs, name):
    x, w = operands()
    with pytest.raises((ValueError, TypeError), match=name):
        abfp_linear(x, w, CFG, **kwargs)


def test_weights_quantized_for_another_configuration():
    x, w = operands()
    qw = quantize_weights(w, TileConfig(n=2))
    with pytest.raises(ValueError, match="w"):
        abfp_linear(x, qw, CFG)


def test_stage_functions_refuse_out_of_range_codes():
    x, w = operands()
    x_code, x_scale = quantize_inputs(x, CFG)
    qw = quantize_weights(w, CFG)
    bad_x_code = x_code.copy()
    bad_x_code[0, 1, 2] = CFG.mx + 1
    with pytest.raises(ValueError, match="x_code"):
        adc_codes(bad_x_code, qw.code, CFG)
    with pytest.raises(ValueError, match="w_code"):
        adc_codes(x_code, -qw.code * 2 - 200, CFG)
    with pytest.raises(TypeError, match="x_code"):
        adc_codes(x_code.astype(np.float64), qw.code, CFG)
    adc = adc_codes(x_code, qw.code, CFG)
    with pytest.raises(ValueError, match="adc_code"):
        rescale_accumulate(adc + CFG.my + 1, x_scale, qw.scale, CFG)
    with pytest.raises(ValueError, match="scale"):
        rescale_accumulate(adc, x_scale[:, :1], qw.scale, CFG)


def _reference_k(n, by, gain):
    """K = to(fp32, n / (M(by) * G)) by the independent reference."""
    return reference.round_fraction(
        Fraction(n) / (reference.code_max(by) * Fraction(gain)), reference.FP32
    )


def _first_gain(n, by, works, lo_bits, hi_bits):
    """Bisect the float64 patterns in [lo_bits, hi_bits] for the first one whose gain
    ``works`` (monotone: False then True)."""
    while lo_bits < hi_bits:
        mid = (lo_bits + hi_bits) // 2
        if works(float(np.uint64(mid).view(np.float64))):
            hi_bits = mid
        else:
            lo_bits = mid + 1
    return float(np.uint64(lo_bits).view(np.float64))


def _pattern(value):
    return int(np.float64(value).view(np.uint64))


@pytest.mark.parametrize("n, by", [(1, 2), (128, 8), (7, 11), (2**24, 16)])
def test_gain_range_is_exactly_where_the_rescale_constant_is_finite_and_nonzero(n, by):
    """The smallest accepted gain is the first float64 whose K (rounded by the reference) is
    finite, the largest the last whose K is nonzero; the next float64 outside is refused,
    naming gain and both bounds. Found by bisection over float64 patterns."""
    smallest = _first_gain(n, by, lambda g: math.isfinite(_reference_k(n, by, g)), 1, _pattern(1.0))
    past_largest = _first_gain(
        n, by, lambda g: _reference_k(n, by, g) == 0.0, _pattern(1.0), _pattern(np.finfo(float).max)
    )
    largest = math.nextafter(past_largest, 0.0)
    assert gain_range(n, by) == (smallest, largest)
    for gain in (smallest, largest):
        cfg = TileConfig(n=n, by=by, gain=gain)
        assert 0.0 < cfg.rescale_constant < np.inf and 0.0 < cfg.gain_constant < np.inf
    for gain in (math.nextafter(smallest, 0.0), past_largest):
        bounds = re.escape(f"[{smallest!r}, {largest!r}]")
        with pytest.raises(ValueError, match=rf"TileConfig\.gain must be in {bounds}"):
            TileConfig(n=n, by=by, gain=gain)


def test_smallest_gain_gives_finite_outputs():
    low, _ = gain_range(4, 8)
    y = abfp_linear(*operands(), TileConfig(n=4, gain=low, noise="none"))
    assert np.isfinite(y).all()


CODE_EXTREMES = [
    (np.int64, np.iinfo(np.int64).min),
    (np.int64, np.iinfo(np.int64).max),
    (np.uint64, np.iinfo(np.uint64).max),
    (np.uint64, 2**63),
    (np.int32, np.iinfo(np.int32).min),
    (np.uint32, np.iinfo(np.uint32).max),
    (np.int8, -128),
    (np.uint16, 65535),
    (np.int16, -32768),
]


@pytest.mark.parametrize("dtype, value", CODE_EXTREMES, ids=lambda v: repr(v))
def test_codes_at_integer_extremes_are_refused(dtype, value):
    """Every code beyond [-127, 127] (8-bit DAC, weights and ADC) is refused whatever its
    dtype, including where abs() or a cast to int64 wraps."""
    cfg = TileConfig(n=4, bx=8, bw=8, by=8)
    good = np.zeros((2, 1, 4), dtype)
    bad = good.copy()
    bad[1, 0, 2] = value
    with pytest.raises(ValueError, match=re.escape(f"x_code[1, 0, 2] = {value} is outside")):
        adc_codes(bad, good, cfg)
    with pytest.raises(ValueError, match=re.escape(f"w_code[1, 0, 2] = {value} is outside")):
        adc_codes(good, bad, cfg)
    adc = bad.reshape(2, 4, 1)
    with pytest.raises(ValueError, match=re.escape(f"adc_code[1, 2, 0] = {value} is outside")):
        rescale_accumulate(adc, np.ones((2, 1)), np.ones((4, 1)), cfg)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int64, np.uint64])
def test_codes_at_the_limits_pass_in_every_dtype(dtype):
    cfg = TileConfig(n=2, bx=8, bw=8, by=8)
    low = 0 if np.iinfo(dtype).min == 0 else -127
    codes = np.array([[[127, low]]], dtype)
    mac = adc_codes(codes, codes, cfg, trace=True)[1]["mac"]
    assert mac.tolist() == [[[127 * 127 + low * low]]]
    rescale_accumulate(np.array([[[127], [low]]], dtype), np.ones((1, 1)), np.ones((2, 1)), cfg)


@pytest.mark.parametrize(
    "shape",
    [(2.7, 3, 1), (2, 3.0, 1), (True, 3, 1), (2, 3, np.float64(1)), (2, 3), 5, "abc"],
    ids=repr,
)
def test_noise_shape_must_be_three_non_negative_ints(shape):
    with pytest.raises(ValueError, match="shape"):
        noise(shape, CFG)


def test_noise_shape_accepts_numpy_ints():
    shape = (np.int64(2), np.uint8(3), 1)
    assert noise(shape, CFG).shape == (2, 3, 1)
