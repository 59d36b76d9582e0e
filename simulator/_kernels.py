"""Numba array kernels of the forward pass. Private: use ``simulator.model``.

Every kernel is a loop over independent elements (``prange`` over rows), each element's
arithmetic being the scalar functions of ``_scalar``; no reduction crosses threads, so results
do not depend on the thread count or on how the batch is split. Step numbers are those of
docs/arithmetic.md.
"""

import contextlib
import functools
import math
from pathlib import Path

import numba
import numpy as np
import scipy
import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS that numba's np.dot calls)
import threadpoolctl
from numba import njit, prange, types
from numba.extending import overload

from simulator import noise_kinds
from simulator._scalar import (
    accumulate,
    adc,
    adc_value,
    bits_of,
    float_of,
    noise_words,
    rescale,
    round_fmt,
    round_fp32,
    round_fp32_value,
)
from simulator.noise_kinds import NONE as NOISE_NONE
from simulator.noise_kinds import noise_from_word


def noise_block(seed, stream, batch_offset, kind, amplitude, out):
    """Noise ``e[b, i, j]`` of the registered kind with code ``kind`` for ``out`` of shape
    (B, N, T), batch rows from ``batch_offset``; an unregistered code is a ``ValueError``."""
    _noise_block(seed, stream, batch_offset, noise_kinds.kind(kind).code, amplitude, out)


@njit(parallel=True, cache=True)
def _noise_block(seed, stream, batch_offset, kind, amplitude, out):
    nb, ni, nt = out.shape
    for b in prange(nb):
        for j in range(nt):
            for i0 in range(0, ni, 4):
                words = noise_words(seed, stream, batch_offset + b, i0, j)
                for w in range(min(4, ni - i0)):
                    out[b, i0 + w, j] = noise_from_word(words[w], kind, amplitude)


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


@njit(cache=True)
def _quantize_block(src, lo, hi, n, code_max, val_exp, val_man, scale_exp, scale_man, codes):
    """Steps 1-3 for ``src[lo:hi]`` of one row: returns its scale, writes ``codes[:n]``.

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
        codes[c] = min(max(np.rint(v * code_max / s), -code_max), code_max) + 0.0
    codes[count:n] = 0.0
    return s


@njit(cache=True)
def _tile_epilogue(
    mac, acc, w_scale, sx, first, last, noise, seed, stream, b, i_lo, j, kind, amplitude,
    gain_constant, code_max, k_const, pe, pm, ae, am, oe, om,
):  # fmt: skip
    """Steps 5-10 of tile ``j`` for outputs ``i_lo ..`` of batch row ``b``, on row views.

    ``mac`` and ``w_scale`` (tile j's weight scales) run over the same outputs as ``acc``, the
    running accumulator (float32) that the last tile replaces with the output-format result.
    ``noise`` is scratch of at least ``length + 3`` values. ``i_lo`` is a multiple of 4: one
    Philox block serves four consecutive outputs. The noise is drawn in a loop of its own, so
    that both loops vectorise.
    """
    length = mac.shape[0]
    if kind != NOISE_NONE:
        for g in range((length + 3) >> 2):
            words = noise_words(seed, stream, b, i_lo + 4 * g, j)
            noise[4 * g] = noise_from_word(words[0], kind, amplitude)
            noise[4 * g + 1] = noise_from_word(words[1], kind, amplitude)
            noise[4 * g + 2] = noise_from_word(words[2], kind, amplitude)
            noise[4 * g + 3] = noise_from_word(words[3], kind, amplitude)
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
# Outputs per epilogue call, a multiple of 4 (one Philox block serves 4 outputs), so that its
# operands and noise stay in L1.
_OUT_CHUNK = 256


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
                    src[r], lo, hi, n, code_max, ve, vm, se, sm, codes[r, lo : lo + n]
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
                    src[r], lo, min(lo + n, k), n, code_max, ve, vm, se, sm, codes_t[j, :, r]
                )

    def first_overflow(src, first):
        for r in prange(src.shape[0]):
            first[r] = -1
            for c in range(src.shape[1]):
                if math.isinf(_round_operand(src[r, c], ve, vm)):
                    first[r] = c
                    break

    jit = njit(parallel=True, cache=True)
    return jit(rows_kernel), jit(transposed_kernel), jit(first_overflow)


def fused_linear(in_fmt, scale_fmt, partial_fmt, acc_fmt, out_fmt, kind):
    """The fast path's kernel (steps 1-10 for x, 4-10 for the tile) with the formats and
    noise kind as compile-time constants, a closure cached on disk like :func:`quantizer`.

    ``kernel(x, w_code_t, w_scale_t, code_max_x, seed, stream, batch_offset, amplitude,
    gain_constant, code_max, k_const, row_block, y)``: ``x`` (B, K) float32 or float64 checked
    inputs, ``w_code_t`` (T, n, N) weight codes (float32 when every dot product stays below
    2**24, else float64), ``w_scale_t`` (T, N) float32, ``row_block`` from :func:`row_block`,
    ``y`` (B, N) float32 receives the outputs. Call it inside :func:`blas_in_caller_thread`.
    ``kind`` is a code of :data:`simulator.noise_kinds.KINDS` (else ``ValueError``).
    """
    code = noise_kinds.kind(kind).code
    key = tuple(tuple(f) for f in (in_fmt, scale_fmt, partial_fmt, acc_fmt, out_fmt)) + (code,)
    if key not in _FUSED:
        _FUSED[key] = _build_fused_linear(*key)
    return _FUSED[key]


def _build_fused_linear(in_fmt, scale_fmt, partial_fmt, acc_fmt, out_fmt, kind):
    ie, im = in_fmt
    se, sm = scale_fmt
    pe, pm = partial_fmt
    ae, am = acc_fmt
    oe, om = out_fmt

    def kernel(x, w_code_t, w_scale_t, code_max_x, seed, stream, batch_offset, amplitude,
               gain_constant, code_max, k_const, row_block, y):  # fmt: skip
        # Threads take blocks of row_block batch rows. For each tile in turn, the block's
        # input codes of that tile are made, one matrix product (BLAS, in this thread) gives
        # the block's dot products, and the epilogue folds them into the running accumulators
        # (the block's rows of y) chunk by chunk.
        nb, k = x.shape
        nt, n, ni = w_code_t.shape
        for rb in prange(-(-nb // row_block)):
            b0 = rb * row_block
            rows = min(row_block, nb - b0)
            x_code = np.empty((rows, n), w_code_t.dtype)
            x_scale = np.empty(rows, np.float32)
            mac = np.empty((rows, ni), w_code_t.dtype)
            noise = np.empty(_OUT_CHUNK + 3)
            for j in range(nt):
                lo = j * n
                for r in range(rows):
                    x_scale[r] = _quantize_block(
                        x[b0 + r], lo, min(lo + n, k), n, code_max_x, ie, im, se, sm, x_code[r]
                    )  # fmt: skip
                np.dot(x_code, w_code_t[j], mac)
                for r in range(rows):
                    for i0 in range(0, ni, _OUT_CHUNK):
                        i1 = min(i0 + _OUT_CHUNK, ni)
                        _tile_epilogue(
                            mac[r, i0:i1], y[b0 + r, i0:i1], w_scale_t[j, i0:i1], x_scale[r],
                            j == 0, j == nt - 1, noise, seed, stream, batch_offset + b0 + r, i0,
                            j, kind, amplitude, gain_constant, code_max, k_const, pe, pm, ae,
                            am, oe, om,
                        )  # fmt: skip

    return njit(parallel=True, cache=True)(kernel)
