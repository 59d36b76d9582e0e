"""Empty batches and empty output rows give correctly shaped empty results on every entry
point; shapes without tiles (K = 0, T = 0) are refused."""

import numpy as np
import pytest

from simulator import (
    TileConfig,
    abfp_linear,
    adc_codes,
    noise,
    quantize_inputs,
    quantize_weights,
    rescale_accumulate,
)

CFG = TileConfig(n=4)
K = 10
T = CFG.tiles(K)


@pytest.mark.parametrize(
    "batch_shape, outputs", [((0,), 3), ((0, 3), 3), ((2, 0), 3), ((2,), 0), ((0,), 0), ((), 0)]
)
@pytest.mark.parametrize("quantized", [False, True], ids=["raw", "quantized"])
def test_abfp_linear(batch_shape, outputs, quantized):
    x = np.ones(batch_shape + (K,))
    w = np.ones((outputs, K))
    weights = quantize_weights(w, CFG) if quantized else w
    rows = int(np.prod(batch_shape))
    y = abfp_linear(x, weights, CFG)
    assert y.shape == batch_shape + (outputs,) and y.dtype == np.float32
    y_traced, trace = abfp_linear(x, weights, CFG, trace=True)
    assert y_traced.shape == batch_shape + (outputs,) and y_traced.dtype == np.float32
    expected = {
        "x_fmt": ((rows, K), np.float32),
        "w_fmt": ((outputs, K), np.float32),
        "x_scale": ((rows, T), np.float32),
        "w_scale": ((outputs, T), np.float32),
        "x_code": ((rows, T, CFG.n), np.int32),
        "w_code": ((outputs, T, CFG.n), np.int32),
        "mac": ((rows, outputs, T), np.int64),
        "analog": ((rows, outputs, T), np.float64),
        "noise": ((rows, outputs, T), np.float64),
        "adc_code": ((rows, outputs, T), np.int32),
        "partial": ((rows, outputs, T), np.float32),
        "acc": ((rows, outputs, T), np.float32),
        "y": ((rows, outputs), np.float32),
    }
    for name, (shape, dtype) in expected.items():
        stage = getattr(trace, name)
        assert (stage.shape, stage.dtype) == (shape, dtype), name


def test_quantize_inputs_of_no_rows():
    codes, scales = quantize_inputs(np.ones((0, K)), CFG)
    assert (codes.shape, codes.dtype) == ((0, T, CFG.n), np.int32)
    assert (scales.shape, scales.dtype) == ((0, T), np.float32)


def test_quantize_weights_of_no_rows():
    qw = quantize_weights(np.ones((0, K)), CFG)
    assert qw.shape == (0, K)
    assert qw.scale.shape == (0, T) and qw.tile_codes.shape == (T, CFG.n, 0)
    assert qw.code.shape == (0, T, CFG.n)


@pytest.mark.parametrize("shape", [(0, 3, 2), (2, 0, 2), (2, 3, 0), (0, 0, 0)])
def test_noise(shape):
    e = noise(shape, TileConfig(noise="gaussian"))
    assert e.shape == shape and e.dtype == np.float64


@pytest.mark.parametrize("rows, outputs", [(0, 3), (2, 0), (0, 0)])
def test_stage_functions(rows, outputs):
    x_code = np.zeros((rows, T, CFG.n), np.int32)
    w_code = np.zeros((outputs, T, CFG.n), np.int32)
    adc, stages = adc_codes(x_code, w_code, CFG, trace=True)
    assert (adc.shape, adc.dtype) == ((rows, outputs, T), np.int32)
    assert all(stage.shape == (rows, outputs, T) for stage in stages.values())
    y, digital = rescale_accumulate(
        adc, np.ones((rows, T), np.float32), np.ones((outputs, T), np.float32), CFG, trace=True
    )
    assert (y.shape, y.dtype) == ((rows, outputs), np.float32)
    assert all(stage.shape == (rows, outputs, T) for stage in digital.values())


def test_no_tiles_is_refused():
    with pytest.raises(ValueError, match="x_code"):
        adc_codes(np.zeros((2, 0, 4), np.int32), np.zeros((3, 0, 4), np.int32), CFG)
    with pytest.raises(ValueError, match="adc_code"):
        rescale_accumulate(np.zeros((2, 3, 0), np.int32), np.ones((2, 0)), np.ones((3, 0)), CFG)
    with pytest.raises(ValueError, match="K = 0"):
        quantize_inputs(np.ones((0, 0)), CFG)
