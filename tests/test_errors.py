"""Bad input is refused with an error that names what is wrong and where."""

import re

import numpy as np
import pytest

from simulator import (
    FloatFormat,
    TileConfig,
    abfp_linear,
    adc_codes,
    quantize_inputs,
    quantize_weights,
    rescale_accumulate,
)

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
