"""The fused kernel's three products (inline, oneDNN's int8, float BLAS) give the traced path's
bits, forced one by one, and the int8 product falls back or refuses cleanly where it cannot be
used (docs/performance.md)."""

import numba
import numpy as np
import pytest

from simulator import TileConfig, _int8gemm, _kernels, abfp_linear, quantize_weights

CONFIGS = [
    dict(n=128, bw=7, gain=8.0),
    dict(n=32, bx=8, bw=7, by=8, gain=1.86),
    dict(n=8, bx=6, bw=6, by=8, gain=8.0, noise="gaussian", noise_amplitude=1.5),
    dict(n=5, bx=8, bw=8, by=8, gain=8.0),  # odd n: the inline products' last single k
]


def _bits(y):
    return np.asarray(y, np.float32).view(np.uint32)


def _operands(cfg, seed):
    """A ragged last tile, a zero block, a zero weight row, and more outputs than two epilogue
    chunks with a short last one."""
    rng = np.random.default_rng(seed)
    k = 2 * cfg.n + max(1, cfg.n // 3)
    x = (rng.standard_normal((21, k)) * np.exp2(rng.integers(-4, 5, (21, 1)))).astype(np.float32)
    w = rng.standard_normal((2 * _kernels._OUT_CHUNK + 46, k)).astype(np.float32)
    x[0, : cfg.n] = 0.0
    w[1] = 0.0
    return x, w


def _require_int8(cfg):
    usable, reason = _int8gemm.exact_for(cfg.n, cfg.mx, cfg.mw)
    if not usable:
        pytest.skip(reason)


@pytest.mark.parametrize("product", _kernels.PRODUCTS)
@pytest.mark.parametrize("params", CONFIGS, ids=lambda p: f"n={p['n']}-bw={p['bw']}")
def test_forced_product_equals_trace(product, params, monkeypatch):
    cfg = TileConfig(**params)
    if product == "int8":
        _require_int8(cfg)
    monkeypatch.setenv("ABFP_GEMM", product)
    assert _kernels.product_path(cfg.n, cfg.mx, cfg.mw) == product
    x, w = _operands(cfg, cfg.n)
    _, trace = abfp_linear(x, w, cfg, seed=5, stream=2, trace=True)
    qw = quantize_weights(w, cfg)
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            for weights in (w, qw):
                y = abfp_linear(x, weights, cfg, seed=5, stream=2)
                np.testing.assert_array_equal(_bits(y), _bits(trace.y), err_msg=f"{threads=}")
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_int8_product_over_several_row_blocks(monkeypatch):
    """Row blocks split across threads with a short last block; chunks of a batch with
    batch_offset give the whole batch's bits."""
    cfg = TileConfig(**CONFIGS[0])
    _require_int8(cfg)
    monkeypatch.setenv("ABFP_GEMM", "int8")
    monkeypatch.setattr(_kernels, "_BLOCK_BYTES", 4096)
    x, w = _operands(cfg, 3)
    _, trace = abfp_linear(x, w, cfg, trace=True)
    qw = quantize_weights(w, cfg)
    np.testing.assert_array_equal(_bits(abfp_linear(x, qw, cfg)), _bits(trace.y))
    parts = [abfp_linear(x[lo:hi], qw, cfg, batch_offset=lo) for lo, hi in ((0, 5), (5, 21))]
    np.testing.assert_array_equal(_bits(np.concatenate(parts)), _bits(trace.y))


def test_auto_picks_int8_where_exact_else_inline_for_short_tiles(monkeypatch):
    monkeypatch.delenv("ABFP_GEMM", raising=False)
    for n, mw in ((8, 127), (32, 127), (128, 63)):
        usable, _ = _int8gemm.exact_for(n, 127, mw)
        assert _kernels.product_path(n, 127, mw) == ("int8" if usable else
                                                     "inline" if n <= 32 else "blas")
    assert _kernels.product_path(32, 255, 255) == "inline"  # 9-bit codes
    assert _kernels.product_path(128, 2047, 2047) == "blas"  # 12-bit codes


def test_exactness_check_agrees_with_the_library_on_extreme_codes():
    """exact_for reports the library exact for 8-bit codes exactly when its product of the
    extreme codes equals NumPy's int64 product (on CPUs whose int8 kernels saturate 16-bit
    pair sums, it is not)."""
    address, reason = _int8gemm.library()
    if address is None:
        pytest.skip(reason)
    x = np.array([[127] * 64, [-127] * 64])
    w = np.stack([np.full(64, 127), np.full(64, -127)], axis=1)
    status, c = _int8gemm._call(address, x, w)
    assert status == 0
    exact = bool(np.array_equal(c, x @ w))
    assert _int8gemm.exact_for(64, 127, 127)[0] is exact


def test_codes_that_do_not_fit_are_never_int8():
    usable, reason = _int8gemm.exact_for(128, 255, 127)
    assert not usable and "more than 8 bits" in reason
    usable, reason = _int8gemm.exact_for(1041, 127, 127)
    assert not usable and "2**24" in reason


def test_missing_library_falls_back_to_blas(monkeypatch, tmp_path):
    monkeypatch.setenv("ABFP_DNNL_LIBRARY", str(tmp_path / "missing" / "libdnnl.so.3"))
    address, reason = _int8gemm.library()
    assert address is None and "missing" in reason
    cfg = TileConfig(**CONFIGS[0])
    monkeypatch.setenv("ABFP_GEMM", "auto")
    assert _kernels.product_path(cfg.n, cfg.mx, cfg.mw) == "blas"
    x, w = _operands(cfg, 7)
    _, trace = abfp_linear(x, w, cfg, trace=True)
    np.testing.assert_array_equal(_bits(abfp_linear(x, w, cfg)), _bits(trace.y))
    monkeypatch.setenv("ABFP_GEMM", "int8")
    with pytest.raises(RuntimeError, match="ABFP_GEMM=int8 .*oneDNN is not available"):
        abfp_linear(x, w, cfg)


def test_unknown_product_is_refused(monkeypatch):
    monkeypatch.setenv("ABFP_GEMM", "fp8")
    with pytest.raises(ValueError, match="ABFP_GEMM='fp8'"):
        abfp_linear(np.ones((2, 8)), np.ones((3, 8)), TileConfig(n=8))
    with pytest.raises(ValueError, match="unknown product"):
        _kernels.fused_linear((8, 7), (8, 7), (8, 7), (8, 23), (8, 7), 1, "fp8")
