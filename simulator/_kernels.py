"""Numba array kernels of the forward pass. Private: use ``simulator.model``.

Every kernel is a loop over independent elements (``prange`` over rows), each element's
arithmetic being the scalar functions of ``_scalar``; no reduction crosses threads, so results
do not depend on the thread count or on how the batch is split. Step numbers are those of
docs/arithmetic.md.

Kernels that divide use numba's ``error_model="numpy"``: no divisor is ever zero, and the
default model's check of every divisor keeps loops with a division from vectorising.
"""

import contextlib
import functools
import math
import os
from pathlib import Path

import numba
import numpy as np
import scipy
import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS that numba's np.dot calls)
import threadpoolctl
from numba import njit, prange, types
from numba.extending import overload

from simulator import _int8gemm, noise_kinds
from simulator._scalar import (
    accumulate,
    adc,
    adc_value,
    bits_of,
    float_of,
    fma,
    noise_words,
    rescale,
    round_fmt,
    round_fp32,
    round_fp32_value,
)
from simulator.noise_kinds import NONE as NOISE_NONE
from simulator.noise_kinds import noise_of_uniforms, uniform_of_word


def noise_block(seed, stream, batch_offset, kind, amplitude, out):
    """Noise ``e[b, i, j]`` of the registered kind with code ``kind`` for ``out`` of shape
    (B, N, T), batch rows from ``batch_offset``; an unregistered code is a ``ValueError``."""
    _noise_block(seed, stream, batch_offset, noise_kinds.kind(kind).code, amplitude, out)


@njit(parallel=True, cache=True, error_model="numpy")
def _noise_block(seed, stream, batch_offset, kind, amplitude, out):
    nb, ni, nt = out.shape
    for b in prange(nb):
        uniforms = np.empty(ni + 3)
        scratch = np.empty(ni, np.int64)
        for j in range(nt):
            for i0 in range(0, ni, 4):
                words = noise_words(seed, stream, batch_offset + b, i0, j)
                for w in range(4):
                    uniforms[i0 + w] = uniform_of_word(words[w])
            noise_of_uniforms(uniforms[:ni], out[b, :, j], scratch, kind, amplitude)


@njit(parallel=True, cache=True)
def adc_block(mac, noise, gain_constant, code_max, analog, out):
    """Steps 5-7 on whole (B, N, T) arrays; ``analog`` gets ``mac * kA``."""
    nb, ni, nt = mac.shape
    for b in prange(nb):
        for i in range(ni):
            for j in range(nt):
                analog[b, i, j] = np.float64(mac[b, i, j]) * gain_constant
                out[b, i, j] = adc(mac[b, i, j], gain_constant, noise[b, i, j], code_max)


@njit(parallel=True, cache=True)
def rescale_block(adc_code, x_scale, w_scale, k_const, fmts, partial, acc, y):
    """Steps 8-10 on whole arrays: ``partial`` and running ``acc`` (B, N, T), ``y`` (B, N);
    the scales are float32 arrays.

    ``fmts`` = (partial exp, man, acc exp, man, out exp, man).
    """
    nb, ni, nt = adc_code.shape
    for b in prange(nb):
        for i in range(ni):
            total = np.float32(0.0)
            for j in range(nt):
                sw, sx = w_scale[i, j], x_scale[b, j]
                p = rescale(adc_code[b, i, j], sw, sx, k_const, fmts[0], fmts[1])
                partial[b, i, j] = p
                total = accumulate(total, p, j == 0, fmts[2], fmts[3])
                acc[b, i, j] = total
            y[b, i] = round_fp32(total, fmts[4], fmts[5])


def _round_operand(v, exp_bits, man_bits):
    """Round an input or weight element (float32 or float64) to its format."""


@overload(_round_operand)
def _round_operand_impl(v, exp_bits, man_bits):
    if v == types.float32:
        # a binary32 value: the branch-free rounding on its 32-bit pattern applies
        return lambda v, exp_bits, man_bits: round_fp32_value(np.float64(v), exp_bits, man_bits)
    return lambda v, exp_bits, man_bits: round_fmt(np.float64(v), exp_bits, man_bits)


@njit(cache=True, error_model="numpy")
def _quantize_block(
    src, lo, hi, n, code_max, val_exp, val_man, scale_exp, scale_man, zero_point, codes
):  # fmt: skip
    """Steps 1-3 for ``src[lo:hi]`` of one row: returns its scale, writes ``codes[:n]`` as
    ``code + zero_point`` (0, or the int8 product's 128 for unsigned codes).

    ``v * M`` is exact in float64 and the correctly rounded quotient cannot reach or cross a
    half-integer the exact quotient does not (docs/arithmetic.md), so ``rint`` of it is the
    exact rne. Codes past ``hi`` are zero padding; no code is a negative zero.
    """
    # The peak magnitude as the largest bit pattern: for non-negative floats the pattern's
    # order is the value's, and an integer maximum vectorises where a float one does not.
    # (Loops index the block's slice from 0: an index that numba cannot prove non-negative
    # costs a wraparound check per element.)
    block = src[lo:hi]
    peak_bits = 0
    for c in range(block.shape[0]):
        peak_bits = max(peak_bits, bits_of(abs(_round_operand(block[c], val_exp, val_man))))
    s = round_fp32_value(float_of(peak_bits), scale_exp, scale_man)  # peak: a binary32 value
    count = block.shape[0] if s != 0.0 else 0
    for c in range(count):
        v = _round_operand(block[c], val_exp, val_man)
        codes[c] = min(max(np.rint(v * code_max / s), -code_max), code_max) + zero_point
    codes[count:n] = zero_point
    return s


@njit(cache=True, error_model="numpy")
def _tile_epilogue(
    mac, acc, w_scale, sx, first, last, uniforms, noise, scratch, seed, stream, b, i_lo, j,
    kind, amplitude, gain_constant, code_max, k_const, pe, pm, ae, am, oe, om,
):  # fmt: skip
    """Steps 5-10 of tile ``j`` for outputs ``i_lo ..`` of batch row ``b``, on row views.

    ``mac`` and ``w_scale`` (tile j's weight scales) run over the same outputs as ``acc``, the
    running accumulator (float32) that the last tile replaces with the output-format result.
    ``uniforms`` (at least ``length + 3``), ``noise`` and ``scratch`` (int64), at least
    ``length`` each, are scratch. ``i_lo`` is a multiple of 4: one Philox block serves four
    consecutive outputs. The words are drawn in a loop of their own, transformed by the
    kind's chunk transform and then used in the arithmetic's loop, so that each loop
    vectorises.
    """
    length = mac.shape[0]
    if kind != NOISE_NONE:
        for g in range((length + 3) >> 2):
            words = noise_words(seed, stream, b, i_lo + 4 * g, j)
            uniforms[4 * g] = uniform_of_word(words[0])
            uniforms[4 * g + 1] = uniform_of_word(words[1])
            uniforms[4 * g + 2] = uniform_of_word(words[2])
            uniforms[4 * g + 3] = uniform_of_word(words[3])
        noise_of_uniforms(uniforms[:length], noise[:length], scratch, kind, amplitude)
    for i in range(length):
        e = noise[i] if kind != NOISE_NONE else 0.0
        q = adc_value(mac[i], gain_constant, e, code_max)
        p = rescale(q, w_scale[i], sx, k_const, pe, pm)
        total = accumulate(acc[i], p, first, ae, am)
        if last:
            total = round_fp32(total, oe, om)
        acc[i] = total


# Bytes of dot products per row block: the larger the block, the better BLAS amortises the
# packing of each tile's weights over its rows (2 MiB measured best on 1 MiB L2 per core).
_BLOCK_BYTES = 1 << 21
# Outputs per epilogue call, a multiple of 4 (one Philox block serves 4 outputs): its operands
# and noise stay in L1 or L2, and each call's fixed cost is spread over many outputs (1024
# measured up to 12% faster than 256 at n = 8, 32 and 128, docs/performance.md).
_OUT_CHUNK = 1024


def row_block(rows, outputs, itemsize):
    """Batch rows per block of the fused kernel: blocks of about _BLOCK_BYTES of dot products
    (``itemsize`` bytes each), as many as a multiple of the thread count, as equal as can be."""
    threads = numba.get_num_threads()
    largest = max(16, _BLOCK_BYTES // (outputs * itemsize))
    blocks = -(-rows // largest)
    blocks = -(-blocks // threads) * threads
    return max(1, -(-rows // blocks))


@functools.cache
def _kernel_blas():
    """threadpoolctl's controllers of the BLAS that numba's ``np.dot`` calls, the one that
    ``scipy.linalg.cython_blas`` links: in scipy's wheels the library bundled in scipy.libs.
    Where that cannot be told apart (scipy linked to a shared BLAS), every BLAS loaded."""
    controllers = threadpoolctl.ThreadpoolController().lib_controllers
    blas = [lib for lib in controllers if lib.user_api == "blas"]
    bundled = Path(scipy.__file__).resolve().parent.parent / "scipy.libs"
    own = [lib for lib in blas if Path(lib.filepath).resolve().is_relative_to(bundled)]
    return tuple(own or blas)


@contextlib.contextmanager
def blas_in_caller_thread():
    """The kernels' BLAS limited to one thread while the fused kernel runs: each numba thread
    calls it for its own block, and a multithreaded BLAS would serialise or oversubscribe
    those calls. numpy's own BLAS is left alone (changing its thread count costs more)."""
    libs = _kernel_blas()
    saved = [lib.num_threads for lib in libs]
    for lib in libs:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, threads in zip(libs, saved, strict=True):
            lib.set_num_threads(threads)


_QUANTIZERS = {}
_FUSED = {}


def quantizer(val_fmt, scale_fmt):
    """Steps 1-3 kernels with the value and scale formats, (exp, man) pairs, as constants.

    Constant format parameters let the compiler fold the rounding's shifts and masks and drop
    its unused branches, several times faster than run-time parameters. Each specialisation is
    a closure over plain ints, which numba caches on disk per closure value.
    Returns (rows, transposed, first_overflow): ``rows(src, n, code_max, values, scales,
    codes)`` quantizes every tile of every row (``values`` (rows, K) float32 is written unless
    it has no rows; ``scales`` (rows, T), ``codes`` (rows, T*n)); ``transposed(src, n,
    code_max, scales_t, codes_t)`` writes them transposed, ``scales_t`` (T, rows) and
    ``codes_t`` (T, n, rows); ``first_overflow(src, first)`` sets ``first[r]`` to the first
    column of row r that rounds to infinity in the value format, or -1.
    """
    key = (tuple(val_fmt), tuple(scale_fmt))
    if key not in _QUANTIZERS:
        _QUANTIZERS[key] = _build_quantizer(*key)
    return _QUANTIZERS[key]


def _build_quantizer(val_fmt, scale_fmt):
    ve, vm = val_fmt
    se, sm = scale_fmt

    def rows_kernel(src, n, code_max, values, scales, codes):
        k = src.shape[1]
        for r in prange(src.shape[0]):
            for j in range(scales.shape[1]):
                lo = j * n
                hi = min(lo + n, k)
                scales[r, j] = _quantize_block(
                    src[r], lo, hi, n, code_max, ve, vm, se, sm, 0.0, codes[r, lo : lo + n]
                )
                if values.shape[0]:
                    for c in range(lo, hi):
                        values[r, c] = _round_operand(src[r, c], ve, vm)

    def transposed_kernel(src, n, code_max, scales_t, codes_t):
        k = src.shape[1]
        for r in prange(src.shape[0]):
            for j in range(scales_t.shape[0]):
                lo = j * n
                scales_t[j, r] = _quantize_block(
                    src[r], lo, min(lo + n, k), n, code_max, ve, vm, se, sm, 0.0,
                    codes_t[j, :, r],
                )  # fmt: skip

    def first_overflow(src, first):
        for r in prange(src.shape[0]):
            first[r] = -1
            for c in range(src.shape[1]):
                if math.isinf(_round_operand(src[r, c], ve, vm)):
                    first[r] = c
                    break

    jit = njit(parallel=True, cache=True, error_model="numpy")
    return jit(rows_kernel), jit(transposed_kernel), jit(first_overflow)


# How the fused kernel computes a tile's dot products (docs/performance.md): "inline" in the
# epilogue's chunks, "int8" with oneDNN's exact integer product, "blas" with one float32 or
# float64 BLAS product per row block. All three give the exact integers, hence the same bits.
PRODUCTS = ("inline", "int8", "blas")
# Tiles up to this width take the inline products where the int8 product cannot: a BLAS call
# with an inner dimension this short is bound by storing and rereading its (rows, N) results.
# Where the int8 product is exact (VNNI) it is faster than both from n = 16 on and as fast at
# n = 8 (docs/performance.md).
_INLINE_MAX_N = 32


def product_path(n, code_max_x, code_max_w):
    """The product of :data:`PRODUCTS` that the fused kernel uses for tiles of ``n`` with
    these code maxima, as the environment variable ``ABFP_GEMM`` asks: ``auto`` (default:
    int8 where :func:`simulator._int8gemm.exact_for` allows, else inline for n <= 32, else
    blas), or one product by name, which every configuration then takes (``int8`` only where
    it is exact).

    Raises
    ------
    ValueError
        For a value of ``ABFP_GEMM`` that is neither ``auto`` nor a product.
    RuntimeError
        For ``ABFP_GEMM=int8`` where the int8 product is not usable, saying why.
    """
    wanted = os.environ.get("ABFP_GEMM", "auto").strip().lower() or "auto"
    if wanted not in ("auto",) + PRODUCTS:
        raise ValueError(f"ABFP_GEMM={wanted!r}: must be auto or one of {', '.join(PRODUCTS)}")
    if wanted in ("auto", "int8"):
        usable, reason = _int8gemm.exact_for(n, int(code_max_x), int(code_max_w))
        if usable:
            return "int8"
        if wanted == "int8":
            raise RuntimeError(f"ABFP_GEMM=int8 but the int8 product cannot be used: {reason}")
        return "inline" if n <= _INLINE_MAX_N else "blas"
    return wanted


def product_dtypes(product, dot_dtype):
    """(input codes, weight codes, dot products) dtypes of a product; ``dot_dtype`` is the
    float type whose sums are exact for the configuration (float32 or float64)."""
    if product == "int8":
        return np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.int32)
    return np.dtype(dot_dtype), np.dtype(dot_dtype), np.dtype(dot_dtype)


@njit(cache=True)
def _inline_dots(x_code, w_tile, i_lo, length, out):
    """``out[q, i] = sum_k x_code[q, k] * w_tile[k, i_lo + i]`` for the four rows q of
    ``x_code`` and ``i < length``: four rows' dot products with a short tile for one chunk of
    outputs. Two positions k at a time, and each weight loaded serves the four rows, so that
    a product costs about one fused multiply-add and no load of its own. Every partial sum is
    an exact integer (the codes' float type holds it), so neither the grouping nor the fused
    rounding changes the result."""
    n = x_code.shape[1]
    o0, o1, o2, o3 = out[0, :length], out[1, :length], out[2, :length], out[3, :length]
    out[:, :length] = 0
    for k in range(0, n - 1, 2):
        a0, a1, b0, b1 = x_code[0, k], x_code[0, k + 1], x_code[1, k], x_code[1, k + 1]
        c0, c1, d0, d1 = x_code[2, k], x_code[2, k + 1], x_code[3, k], x_code[3, k + 1]
        w0 = w_tile[k, i_lo : i_lo + length]
        w1 = w_tile[k + 1, i_lo : i_lo + length]
        for i in range(length):
            o0[i] = fma(a1, w1[i], fma(a0, w0[i], o0[i]))
            o1[i] = fma(b1, w1[i], fma(b0, w0[i], o1[i]))
            o2[i] = fma(c1, w1[i], fma(c0, w0[i], o2[i]))
            o3[i] = fma(d1, w1[i], fma(d0, w0[i], o3[i]))
    if n % 2:
        a0, b0, c0, d0 = x_code[0, n - 1], x_code[1, n - 1], x_code[2, n - 1], x_code[3, n - 1]
        w0 = w_tile[n - 1, i_lo : i_lo + length]
        for i in range(length):
            o0[i] = fma(a0, w0[i], o0[i])
            o1[i] = fma(b0, w0[i], o1[i])
            o2[i] = fma(c0, w0[i], o2[i])
            o3[i] = fma(d0, w0[i], o3[i])


def fused_linear(in_fmt, scale_fmt, partial_fmt, acc_fmt, out_fmt, kind, product):
    """The fast path's kernel (steps 1-10 for x, 4-10 for the tile) with the formats, noise
    kind and product (one of :data:`PRODUCTS`) as compile-time constants, a closure cached on
    disk like :func:`quantizer`.

    ``kernel(x, w_code_t, w_scale_t, code_max_x, seed, stream, batch_offset, amplitude,
    gain_constant, code_max, k_const, row_block, gemm_address, status, y)``: ``x`` (B, K)
    float32 or float64 checked inputs, ``w_code_t`` (T, n, N) weight codes of the product's
    dtype (:func:`product_dtypes`), ``w_scale_t`` (T, N) float32, ``row_block`` from
    :func:`row_block`, ``gemm_address`` the int8 product's function (int8 only, else 0),
    ``status`` an int32 array of one entry per row block that gets the int8 product's status,
    ``y`` (B, N) float32 receives the outputs. Call it inside :func:`blas_in_caller_thread`.
    ``kind`` is a code of :data:`simulator.noise_kinds.KINDS` (else ``ValueError``).
    """
    code = noise_kinds.kind(kind).code
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}; products are {', '.join(PRODUCTS)}")
    key = tuple(tuple(f) for f in (in_fmt, scale_fmt, partial_fmt, acc_fmt, out_fmt))
    key += (code, PRODUCTS.index(product))
    if key not in _FUSED:
        _FUSED[key] = _build_fused_linear(*key)
    return _FUSED[key]


def _build_fused_linear(in_fmt, scale_fmt, partial_fmt, acc_fmt, out_fmt, kind, product):
    ie, im = in_fmt
    se, sm = scale_fmt
    pe, pm = partial_fmt
    ae, am = acc_fmt
    oe, om = out_fmt
    inline = product == PRODUCTS.index("inline")
    int8 = product == PRODUCTS.index("int8")
    zero_point = float(_int8gemm.ZERO_POINT) if int8 else 0.0

    def kernel(x, w_code_t, w_scale_t, code_max_x, seed, stream, batch_offset, amplitude,
               gain_constant, code_max, k_const, row_block, gemm_address, status, y):  # fmt: skip
        # Threads take blocks of row_block batch rows. For each tile in turn, the block's
        # input codes of that tile are made; one matrix product (in this thread) gives the
        # block's dot products, or with inline products each chunk's are computed in cache
        # for four rows at a time before their epilogues; the epilogue folds them into the
        # running accumulators (the block's rows of y) chunk by chunk.
        nb, k = x.shape
        nt, n, ni = w_code_t.shape
        for rb in prange(-(-nb // row_block)):
            b0 = rb * row_block
            rows = min(row_block, nb - b0)
            if int8:
                x_code = np.empty((rows, n), np.uint8)
                mac = np.empty((rows, ni), np.int32)
            elif inline:
                # rows in groups of four, the last group padded with rows of zero codes
                x_code = np.zeros((-(-rows // 4) * 4, n), w_code_t.dtype)
                mac = np.empty((4, _OUT_CHUNK), w_code_t.dtype)
            else:
                x_code = np.empty((rows, n), w_code_t.dtype)
                mac = np.empty((rows, ni), w_code_t.dtype)
            x_scale = np.empty(rows, np.float32)
            c_offset = np.zeros(1, np.int32)
            uniforms = np.empty(_OUT_CHUNK + 3)
            noise = np.empty(_OUT_CHUNK)
            noise_scratch = np.empty(_OUT_CHUNK, np.int64)
            status[rb] = 0
            for j in range(nt):
                lo = j * n
                for r in range(rows):
                    x_scale[r] = _quantize_block(
                        x[b0 + r], lo, min(lo + n, k), n, code_max_x, ie, im, se, sm,
                        zero_point, x_code[r],
                    )  # fmt: skip
                if int8:
                    result = _int8gemm.gemm_u8s8s32(
                        gemm_address, rows, ni, n, x_code.ctypes.data, n,
                        w_code_t[j].ctypes.data, ni, mac.ctypes.data, ni, c_offset.ctypes.data,
                    )  # fmt: skip
                    if result != 0:
                        status[rb] = result
                elif not inline:
                    np.dot(x_code, w_code_t[j], mac)
                for i0 in range(0, ni, _OUT_CHUNK):
                    i1 = min(i0 + _OUT_CHUNK, ni)
                    for r in range(rows):
                        if inline:
                            if r % 4 == 0:
                                _inline_dots(x_code[r : r + 4], w_code_t[j], i0, i1 - i0, mac)
                            dots = mac[r % 4, : i1 - i0]
                        else:
                            dots = mac[r, i0:i1]
                        _tile_epilogue(
                            dots, y[b0 + r, i0:i1], w_scale_t[j, i0:i1], x_scale[r], j == 0,
                            j == nt - 1, uniforms, noise, noise_scratch, seed, stream,
                            batch_offset + b0 + r, i0, j, kind, amplitude, gain_constant,
                            code_max, k_const, pe, pm, ae, am, oe, om,
                        )  # fmt: skip

    return njit(parallel=True, cache=True, error_model="numpy")(kernel)
