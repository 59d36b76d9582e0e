"""The fast path of ``abfp_linear`` equals its traced path bit for bit.

The traced path runs docs/arithmetic.md steps 4-10 stage by stage on whole (B, N, T) arrays;
the fast path fuses them per tile (or computes small tiles' dot products inside the kernel).
Both must give the same output bits for every configuration, thread count and batch chunking.
"""

import zlib

import numba
import numpy as np
import pytest
import threadpoolctl
from numba import njit

from simulator import FloatFormat, TileConfig, _kernels, abfp_linear, quantize_weights
from simulator._scalar import add_fmt, round_fp32_value
from tests import reference

E5M2 = FloatFormat(5, 2)
E4M3 = FloatFormat(4, 3)


def _operands(rng, batch, outputs, k, n, kind):
    """Inputs and weights of a given kind, with zero blocks and a spread of magnitudes."""
    x = rng.standard_normal((batch, k)) * np.exp2(rng.integers(-6, 7, (batch, 1)))
    w = rng.standard_normal((outputs, k)) * np.exp2(rng.integers(-6, 7, (outputs, 1)))
    x[0, : min(n, k)] = 0.0  # a whole zero block of x
    w[1 % outputs, :] = 0.0  # a zero weight row
    x[-1, -1] = -0.0
    if kind == "overflowing-scales":
        # sx * sw overflows fp32: rescale gives inf, or NaN where the ADC code is 0
        x[: batch // 2] *= 1e30
        w[: outputs // 2] *= 1e20
    elif kind == "subnormal":
        x *= 1e-38
        w *= 1e-3
    return x, w


CONFIGS = [
    dict(n=1),
    dict(n=8),
    dict(n=32),
    dict(n=128),
    dict(n=8, bx=6, bw=6, by=8, gain=1.86),
    dict(n=32, bx=10, bw=7, by=11, gain=8.0, noise="gaussian", noise_amplitude=2.5),
    dict(n=128, bx=10, bw=7, by=11, gain=1.86, noise="none"),
    dict(n=128, bx=6, bw=6, by=8, gain=8.0, noise="gaussian"),
    dict(n=128, bx=12, bw=12, by=10),  # n*M*M >= 2**24: float64 dot products
    dict(n=8, noise="none", gain=8.0),
    dict(
        n=32,
        in_fmt="fp16",
        w_fmt="fp16",
        scale_fmt="fp16",
        partial_fmt="fp16",
        acc_fmt="fp16",
        out_fmt="fp16",
        gain=1.86,
    ),  # fmt: skip
    dict(
        n=128,
        in_fmt="fp32",
        w_fmt="fp32",
        scale_fmt="fp32",
        partial_fmt="fp32",
        acc_fmt="fp32",
        out_fmt="fp32",
        noise="gaussian",
    ),  # fmt: skip
    dict(
        n=8,
        in_fmt=E5M2,
        w_fmt=E4M3,
        scale_fmt=E5M2,
        partial_fmt=E4M3,
        acc_fmt="fp16",
        out_fmt=E5M2,
        gain=8.0,
    ),  # fmt: skip
    dict(
        n=32,
        in_fmt=E4M3,
        w_fmt=E5M2,
        scale_fmt="bf16",
        partial_fmt=E5M2,
        acc_fmt="bf16",
        out_fmt=E4M3,
        noise="gaussian",
    ),  # fmt: skip
    dict(n=128, partial_fmt="fp32", out_fmt="fp32", gain=1.86, seed=2**64 - 1),
]


def _config_id(params):
    return "-".join(f"{k}={getattr(v, 'name', v)}" for k, v in params.items())


def _bits(y):
    return np.asarray(y, np.float32).view(np.uint32)


@pytest.mark.slow
@pytest.mark.parametrize("params", CONFIGS, ids=_config_id)
@pytest.mark.parametrize("kind", ["normal", "overflowing-scales", "subnormal"])
def test_fast_path_equals_trace(params, kind):
    cfg = TileConfig(**params)
    rng = np.random.default_rng(zlib.crc32(f"{_config_id(params)}/{kind}".encode()))
    n = cfg.n
    k = 3 * n + max(1, n // 3) if n > 1 else 7  # ragged last tile
    fmt_max = min(cfg.in_fmt.max_finite, cfg.w_fmt.max_finite)
    if kind == "overflowing-scales" and fmt_max < 1e38:
        pytest.skip("operands cannot reach an fp32 overflow in a format this narrow")
    x, w = _operands(rng, 9, 11, k, n, kind)
    if kind == "normal":
        x, w = x.astype(np.float32), w.astype(np.float32)  # binary32 operands round on bits
    _, trace = abfp_linear(x, w, cfg, stream=3, trace=True)
    if kind == "overflowing-scales":
        assert not np.isfinite(trace.partial).all()
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            y = abfp_linear(x, w, cfg, stream=3)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        np.testing.assert_array_equal(_bits(y), _bits(trace.y), err_msg=f"threads={threads}")
    y_qw = abfp_linear(x, quantize_weights(w, cfg), cfg, stream=3)
    np.testing.assert_array_equal(_bits(y_qw), _bits(trace.y))


@pytest.mark.parametrize("n", [8, 128])
def test_batch_chunks_equal_whole(n):
    cfg = TileConfig(n=n, gain=4.0)
    rng = np.random.default_rng(n)
    x = rng.standard_normal((70, 5 * n + 3))
    w = rng.standard_normal((37, 5 * n + 3))
    whole = abfp_linear(x, w, cfg, seed=11, stream=2)
    qw = quantize_weights(w, cfg)
    bounds = [0, 1, 17, 50, 70]
    parts = [
        abfp_linear(x[lo:hi], qw, cfg, seed=11, stream=2, batch_offset=lo)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    np.testing.assert_array_equal(_bits(np.concatenate(parts)), _bits(whole))


@pytest.mark.parametrize("block_bytes", [None, 4096])
def test_large_shape_equals_trace(block_bytes, monkeypatch):
    """Several row blocks (the last one short) split across threads, and rows of outputs
    longer than one epilogue chunk with a short last chunk; 4096 bytes per block forces the
    smallest blocks."""
    cfg = TileConfig(n=8, gain=8.0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 67, 200)).astype(np.float32)
    w = rng.standard_normal((2 * _kernels._OUT_CHUNK + 46, 200)).astype(np.float32)
    if block_bytes:
        monkeypatch.setattr(_kernels, "_BLOCK_BYTES", block_bytes)
        assert _kernels.row_block(201, w.shape[0], 4) <= 16
    y, trace = abfp_linear(x, w, cfg, trace=True)
    assert y.shape == (3, 67, w.shape[0])
    np.testing.assert_array_equal(_bits(abfp_linear(x, w, cfg)), _bits(y))


def test_kernel_blas_is_single_threaded_only_during_the_call():
    """Each numba thread calls BLAS for its own block: the kernels' BLAS runs one thread
    while the kernel runs, gets its thread count back afterwards, and numpy's BLAS (where it
    is another library) is never changed."""
    kernel_libs = _kernels._kernel_blas()
    assert kernel_libs
    before = [lib.num_threads for lib in kernel_libs]

    def others():
        kernel_files = {lib.filepath for lib in kernel_libs}
        return [
            (info["filepath"], info["num_threads"])
            for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas" and info["filepath"] not in kernel_files
        ]

    others_before = others()
    with _kernels.blas_in_caller_thread():
        assert [lib.num_threads for lib in kernel_libs] == [1] * len(kernel_libs)
        assert others() == others_before
    assert [lib.num_threads for lib in kernel_libs] == before
    abfp_linear(np.ones((4, 16)), np.ones((8, 16)), TileConfig(n=8))
    assert [lib.num_threads for lib in kernel_libs] == before


@njit
def _round_fp32_values(values, exp_bits, man_bits, out):
    for k in range(values.size):
        out[k] = round_fp32_value(np.float64(values[k]), exp_bits, man_bits)


@njit
def _add_values(a, b, exp_bits, man_bits, out):
    for k in range(a.size):
        out[k] = add_fmt(np.float64(a[k]), np.float64(b[k]), exp_bits, man_bits)


def _fp32_samples(rng, count):
    """binary32 values spread over every exponent, with the boundary cases of every format."""
    bits = rng.integers(0, 2**32, count, dtype=np.uint64).astype(np.uint32)
    special = np.array(
        [0, 0x80000000, 1, 0x80000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x7F7F8000,
         0x7F7F7FFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x00008000, 0x00018000,
         0x3F808000, 0x3F818000, 0x3F80FFFF],
        np.uint32,
    )  # fmt: skip
    return np.concatenate([special, bits]).view(np.float32)


def _reference_bits(values, fmt):
    out = np.array([reference.round_value(float(v), fmt) for v in values])
    out[np.isnan(out)] = np.nan
    return _bits(out.astype(np.float32))


@pytest.mark.parametrize("man_bits", [1, 2, 7, 10, 22, 23])
def test_round_fp32_value_equals_reference(man_bits):
    """The branch-free rounding of binary32 values to (8, M) formats, against the Fractions."""
    values = _fp32_samples(np.random.default_rng(man_bits), 4000)
    out = np.empty(values.size)
    _round_fp32_values(values, 8, man_bits, out)
    want = _reference_bits(values, (8, man_bits))
    got = _bits(out.astype(np.float32))
    nan = np.isnan(out)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    assert (got[nan] == 0x7FC00000).all()  # canonical NaN


def test_fp32_add_equals_reference():
    rng = np.random.default_rng(7)
    a = _fp32_samples(rng, 3000)
    b = np.concatenate([_fp32_samples(rng, 3000)[: a.size - 200], -a[:100], a[100:200]])
    out = np.empty(a.size)
    _add_values(a, b, 8, 23, out)
    want = np.array([reference.add(float(x), float(y), (8, 23)) for x, y in zip(a, b, strict=True)])
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(out), nan)
    np.testing.assert_array_equal(_bits(out[~nan].astype(np.float32)), _bits(want[~nan]))
    assert (_bits(out[nan].astype(np.float32)) == 0x7FC00000).all()
