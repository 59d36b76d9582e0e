"""Reused QuantizedWeights give exactly the raw weights' result under every configuration
that ``compatible_with`` accepts, and hand-built ones are checked field by field."""

import dataclasses

import numpy as np
import pytest

from simulator import TileConfig, abfp_linear, quantize_weights


def _bits(y):
    return np.asarray(y, np.float32).view(np.uint32)


def _assert_reuse_is_exact(x, w, cfg_a, cfg_b, **noise_identity):
    qw = quantize_weights(w, cfg_a)
    assert qw.compatible_with(cfg_b)
    raw = abfp_linear(x, w, cfg_b, **noise_identity)
    np.testing.assert_array_equal(_bits(abfp_linear(x, qw, cfg_b, **noise_identity)), _bits(raw))
    y_traced, _ = abfp_linear(x, qw, cfg_b, trace=True, **noise_identity)
    np.testing.assert_array_equal(_bits(y_traced), _bits(raw))


def test_reuse_where_float32_dot_products_would_lose_bits():
    """Weights quantized with bx = 2 (float32 dot products suffice: 128 * 1 * 2047 < 2**24)
    and used with bx = 12 (128 * 2047 * 2047 > 2**24): the tile's partial sums run up to
    about 64 * 2047**2 > 2**27 before they cancel, which float32 sums cannot hold exactly;
    fp32 partials and outputs keep an ADC code off by one visible in y."""
    cfg_a = TileConfig(n=128, bx=2, bw=12, by=8)
    cfg_b = TileConfig(
        n=128, bx=12, bw=12, by=16, gain=64.0, noise="none", partial_fmt="fp32",
        acc_fmt="fp32", out_fmt="fp32",
    )  # fmt: skip
    assert cfg_a.mac_bound < 2**24 <= cfg_b.mac_bound
    rng = np.random.default_rng(3)
    x = rng.uniform(0.9, 1.0, (16, 256))
    w = rng.uniform(0.9, 1.0, (24, 256)) * np.where(np.arange(256) % 128 < 64, 1.0, -1.0)
    # the exact dot products differ from float32 sums of the same codes
    x_code = np.rint(x * cfg_b.mx).astype(np.int64)[:, :128]
    w_code = np.rint(w / np.abs(w[:, :128]).max(1, keepdims=True) * cfg_b.mw)[:, :128]
    exact = x_code @ w_code.astype(np.int64).T
    float32 = x_code.astype(np.float32) @ w_code.astype(np.float32).T
    assert (exact != float32.astype(np.int64)).any()
    _assert_reuse_is_exact(x, w, cfg_a, cfg_b)


REUSES = [
    ({}, dict(bx=4, gain=2.5, noise="gaussian", noise_amplitude=1.5, seed=9)),
    (dict(bx=12, bw=12), dict(bx=3, bw=12, by=12, noise="none")),  # float64 codes, float32 use
    ({}, dict(by=4, gain=0.37, noise="uniform", noise_amplitude=0.5, seed=2**64 - 1)),
    (
        dict(in_fmt="fp16", partial_fmt="bf16"),
        dict(in_fmt="fp32", partial_fmt="fp16", acc_fmt="fp32", out_fmt="fp16", bx=10),
    ),
    (dict(w_fmt="fp16", scale_fmt="fp16"), dict(w_fmt="fp16", scale_fmt="fp16", bx=2)),
]


@pytest.mark.parametrize("params_a, params_b", REUSES)
@pytest.mark.parametrize("n", [1, 8, 32])
def test_reuse_under_compatible_configurations(n, params_a, params_b):
    cfg_a = TileConfig(n=n, **params_a)
    cfg_b = TileConfig(n=n, **params_b)
    rng = np.random.default_rng(n)
    k = 3 * n + 1
    x = rng.standard_normal((2, 5, k))
    w = rng.laplace(size=(7, k))
    _assert_reuse_is_exact(x, w, cfg_a, cfg_b, stream=4, batch_offset=11)


CFG = TileConfig(n=4, bw=6)


@pytest.fixture
def valid():
    w = np.random.default_rng(0).standard_normal((3, 10))
    return quantize_weights(w, CFG)


def _with(qw, **fields):
    return dataclasses.replace(qw, **{k: np.array(v) for k, v in fields.items()})


def test_hand_built_weights_equal_quantized_ones(valid):
    """The checks accept exactly what quantize_weights produced, from fresh copies."""
    rebuilt = _with(valid, values=valid.values, scale=valid.scale, tile_codes=valid.tile_codes)
    x = np.random.default_rng(1).standard_normal((4, 10))
    np.testing.assert_array_equal(
        _bits(abfp_linear(x, rebuilt, CFG)), _bits(abfp_linear(x, valid, CFG))
    )
    assert not rebuilt.tile_codes.flags.writeable


def _edited(array, index, value):
    out = np.array(array)
    out[index] = value
    return out


@pytest.mark.parametrize(
    "edit, error, pattern",
    [
        (lambda q: dict(values=q.values.astype(np.float64)), TypeError, "values"),
        (lambda q: dict(values=q.values[0]), TypeError, "values"),
        (lambda q: dict(values=q.values[:, :0], scale=q.scale[:, :0]), ValueError, "K = 0"),
        (lambda q: dict(scale=q.scale[:, :2]), ValueError, r"scale has shape \(3, 2\)"),
        (lambda q: dict(tile_codes=q.tile_codes[:, :, :2]), ValueError, "tile_codes has shape"),
        (lambda q: dict(tile_codes=q.tile_codes[:2]), ValueError, "tile_codes has shape"),
        (lambda q: dict(tile_codes=q.tile_codes.astype(np.int32)), TypeError, "tile_codes"),
        (lambda q: dict(tile_codes=_edited(q.tile_codes, (1, 2, 0), 32)), ValueError,
         r"tile_codes\[1, 2, 0\] = 32\.0"),
        (lambda q: dict(tile_codes=_edited(q.tile_codes, (0, 1, 2), -0.5)), ValueError,
         r"tile_codes\[0, 1, 2\]"),
        (lambda q: dict(tile_codes=_edited(q.tile_codes, (0, 0, 1), np.nan)), ValueError,
         r"tile_codes\[0, 0, 1\]"),
        (lambda q: dict(tile_codes=_edited(q.tile_codes, (2, 3, 1), 1.0)), ValueError,
         r"tile_codes\[2, 3, 1\].*zero past K = 10"),  # padding past K
        (lambda q: dict(scale=_edited(q.scale, (1, 1), np.nan)), ValueError, r"scale\[1, 1\]"),
        (lambda q: dict(scale=_edited(q.scale, (2, 0), -1.0)), ValueError, r"scale\[2, 0\]"),
        (lambda q: dict(scale=_edited(q.scale, (0, 2), 1.1)), ValueError,
         r"scale\[0, 2\].*bf16"),
        (lambda q: dict(values=_edited(q.values, (2, 9), np.inf)), ValueError,
         r"values\[2, 9\].*finite"),
        (lambda q: dict(values=_edited(q.values, (1, 3), 1.001)), ValueError, r"values\[1, 3\]"),
        (lambda q: dict(config={"n": 4}), TypeError, "config"),
        (lambda q: dict(config=TileConfig(n=8, bw=6)), ValueError, "scale has shape"),
    ],
)  # fmt: skip
def test_inconsistent_hand_built_weights_are_refused(valid, edit, error, pattern):
    fields = edit(valid)
    config = fields.pop("config", valid.config)
    with pytest.raises(error, match=pattern):
        dataclasses.replace(_with(valid, **fields) if fields else valid, config=config)
