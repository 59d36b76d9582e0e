"""Numba array kernels of the forward pass. Private: use ``simulator.model``.

Every kernel is a loop over independent elements (``prange`` over rows), each element's
arithmetic being the scalar functions of ``_scalar``; no reduction crosses threads, so results
do not depend on the thread count or on how the batch is split.
"""

import math

import numpy as np
from numba import njit, prange

from simulator._scalar import (
    NOISE_NONE,
    accumulate,
    adc,
    noise_from_word,
    noise_words,
    rescale,
    round_fmt,
    round_fp32_value,
)


@njit(parallel=True, cache=True)
def noise_block(seed, stream, batch_offset, kind, amplitude, out):
    """Noise ``e[b, i, j]`` for ``out`` of shape (B, N, T), batch rows from ``batch_offset``."""
    nb, ni, nt = out.shape
    for b in prange(nb):
        for j in range(nt):
            for i0 in range(0, ni, 4):
                words = noise_words(seed, stream, batch_offset + b, i0, j)
                for w in range(min(4, ni - i0)):
                    out[b, i0 + w, j] = noise_from_word(words[w], kind, amplitude)


@njit(parallel=True, cache=True)
def adc_block(mac, noise, gain_constant, code_max, analog, out):
    """SPEC steps 5-7 on whole (B, N, T) arrays; ``analog`` gets ``mac * kA``."""
    nb, ni, nt = mac.shape
    for b in prange(nb):
        for i in range(ni):
            for j in range(nt):
                analog[b, i, j] = np.float64(mac[b, i, j]) * gain_constant
                out[b, i, j] = adc(mac[b, i, j], gain_constant, noise[b, i, j], code_max)


@njit(parallel=True, cache=True)
def rescale_block(adc_code, x_scale, w_scale, k_const, fmts, partial, acc, y):
    """SPEC steps 8-10 on whole arrays: ``partial`` and running ``acc`` (B, N, T), ``y`` (B, N).

    ``fmts`` = (partial exp, man, acc exp, man, out exp, man).
    """
    nb, ni, nt = adc_code.shape
    for b in prange(nb):
        for i in range(ni):
            total = 0.0
            for j in range(nt):
                sw, sx = w_scale[i, j], x_scale[b, j]
                p = rescale(adc_code[b, i, j], sw, sx, k_const, fmts[0], fmts[1])
                partial[b, i, j] = p
                total = accumulate(total, p, j == 0, fmts[2], fmts[3])
                acc[b, i, j] = total
            y[b, i] = round_fp32_value(total, fmts[4], fmts[5])




@njit(inline="always", cache=True)
def _quantize_block(src, r, lo, hi, n, code_max, val_exp, val_man, scale_exp, scale_man, codes, c0):
    """SPEC steps 1-3 for ``src[r, lo:hi]``: returns its scale, writes ``codes[r, c0:c0+n]``.

    ``v * M`` is exact in float64 and the correctly rounded quotient cannot reach or cross a
    half-integer the exact quotient does not (docs/arithmetic.md), so ``rint`` of it is the
    exact rne. Codes past ``hi`` are zero padding; no code is a negative zero.
    """
    peak = 0.0
    for c in range(lo, hi):
        peak = max(peak, abs(round_fmt(np.float64(src[r, c]), val_exp, val_man)))
    s = round_fmt(peak, scale_exp, scale_man)
    for c in range(n):
        q = 0.0
        if lo + c < hi and s != 0.0:
            v = round_fmt(np.float64(src[r, lo + c]), val_exp, val_man)
            q = min(max(np.rint(v * code_max / s), -code_max), code_max)
        codes[r, c0 + c] = q + 0.0
    return s


@njit(parallel=True, cache=True)
def first_overflow(src, val_exp, val_man, first):
    """``first[r]``: the first column of ``src[r]`` that rounds to infinity in the format, or -1."""
    rows, k = src.shape
    for r in prange(rows):
        first[r] = -1
        for c in range(k):
            if math.isinf(round_fmt(np.float64(src[r, c]), val_exp, val_man)):
                first[r] = c
                break


@njit(inline="always", cache=True)
def _tile_epilogue(
    mac, acc, w_scale, sx, first, last, seed, stream, b, i_lo, j, kind, amplitude,
    gain_constant, code_max, k_const, pe, pm, ae, am, oe, om,
):  # fmt: skip
    """SPEC steps 5-10 of tile ``j`` for outputs ``i_lo ..`` of batch row ``b``, on row views.

    ``mac`` and ``w_scale`` (tile j's weight scales) run over the same outputs as ``acc``, the
    running accumulator (float32) that the last tile replaces with the output-format result.
    ``i_lo`` is a multiple of 4: one Philox block serves four consecutive outputs.
    """
    length = mac.shape[0]
    words = (np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0))
    for g in range(0, length, 4):
        if kind != NOISE_NONE:
            words = noise_words(seed, stream, b, i_lo + g, j)
        for w in range(min(4, length - g)):
            i = g + w
            e = 0.0
            if kind != NOISE_NONE:
                e = noise_from_word(words[w], kind, amplitude)
            q = adc(mac[i], gain_constant, e, code_max)
            p = rescale(q, w_scale[i], sx, k_const, pe, pm)
            total = accumulate(np.float64(acc[i]), p, first, ae, am)
            if last:
                total = round_fp32_value(total, oe, om)
            acc[i] = total


# Outputs per block of the in-kernel dot products: a multiple of 4 (one Philox block serves 4
# outputs) that keeps a block's weight codes and accumulators in L1/L2.
_OUT_BLOCK = 256
_ROW_BLOCK = 4

_QUANTIZERS = {}
_TILE_KERNELS = {}


def quantizer(val_fmt, scale_fmt):
    """SPEC steps 1-3 kernels with the value and scale formats, (exp, man) pairs, as constants.

    Constant format parameters let the compiler fold the rounding's shifts and masks and drop
    its unused branches, several times faster than run-time parameters. Each specialisation is
    a closure over plain ints, which numba caches on disk per closure value.
    Returns (rows, tile): ``rows(src, n, code_max, values, scales, codes)`` quantizes every tile
    of every row (``values`` (rows, K) float32 is written unless it has no rows; ``scales``
    (rows, T), ``codes`` (rows, T*n)); ``tile(src, lo, n, code_max, scales, codes)`` one tile,
    columns ``lo .. lo+n``, into ``scales`` (rows,) and ``codes`` (rows, n).
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
                    src, r, lo, hi, n, code_max, ve, vm, se, sm, codes, lo
                )
                if values.shape[0]:
                    for c in range(lo, hi):
                        values[r, c] = round_fmt(np.float64(src[r, c]), ve, vm)

    def tile_kernel(src, lo, n, code_max, scales, codes):
        hi = min(lo + n, src.shape[1])
        for r in prange(src.shape[0]):
            scales[r] = _quantize_block(src, r, lo, hi, n, code_max, ve, vm, se, sm, codes, 0)

    jit = njit(parallel=True, cache=True)
    return jit(rows_kernel), jit(tile_kernel)


def tile_kernels(partial_fmt, acc_fmt, out_fmt, kind):
    """SPEC steps 4-10 kernels with the formats and noise kind as compile-time constants.

    As :func:`quantizer`, specialised closures cached on disk. Returns (tile_pass,
    small_tiles): ``tile_pass`` runs steps 5-10 of one tile from BLAS dot products;
    ``small_tiles`` runs steps 4-10 of all tiles, dot products included (for small n).
    """
    key = (tuple(partial_fmt), tuple(acc_fmt), tuple(out_fmt), int(kind))
    if key not in _TILE_KERNELS:
        _TILE_KERNELS[key] = _build_tile_kernels(*key)
    return _TILE_KERNELS[key]


def _build_tile_kernels(partial_fmt, acc_fmt, out_fmt, kind):
    pe, pm = partial_fmt
    ae, am = acc_fmt
    oe, om = out_fmt
    def tile_pass(mac, j, last, x_scale, w_scale, seed, stream, batch_offset, amplitude,
                  gain_constant, code_max, k_const, acc):  # fmt: skip
        """SPEC steps 5-10 of tile ``j`` for every (b, i) from its dot products ``mac`` (B, N).

        ``x_scale`` (B,) and ``w_scale`` (N,) are tile j's scales as contiguous float64.
        """
        for b in prange(mac.shape[0]):
            _tile_epilogue(
                mac[b], acc[b], w_scale, x_scale[b], j == 0, last, seed, stream,
                batch_offset + b, 0, j, kind, amplitude, gain_constant, code_max, k_const,
                pe, pm, ae, am, oe, om,
            )  # fmt: skip

    def small_tiles(x_code, w_code_t, x_scale, w_scale_t, seed, stream, batch_offset, amplitude,
                    gain_constant, code_max, k_const, acc):  # fmt: skip
        """SPEC steps 4-10 over all tiles, dot products included, blocked over (b, i).

        ``x_code`` (B, T*n), ``w_code_t`` (T, n, N) codes; ``x_scale`` (B, T) and
        ``w_scale_t`` (T, N) float64; ``acc`` (B, N) float32 receives the outputs. A block of
        ``_ROW_BLOCK`` batch rows shares each weight code it loads; its accumulators stay in
        cache across all T tiles.
        """
        nb = x_code.shape[0]
        nt, n, ni = w_code_t.shape
        row_blocks = -(-nb // _ROW_BLOCK)
        out_blocks = -(-ni // _OUT_BLOCK)
        for blk in prange(row_blocks * out_blocks):
            b0 = (blk // out_blocks) * _ROW_BLOCK
            i0 = (blk % out_blocks) * _OUT_BLOCK
            rows = min(_ROW_BLOCK, nb - b0)
            width = min(_OUT_BLOCK, ni - i0)
            mac = np.empty((_ROW_BLOCK, _OUT_BLOCK), x_code.dtype)
            xk = np.zeros(_ROW_BLOCK, x_code.dtype)
            for j in range(nt):
                mac[:] = 0
                for k in range(n):
                    for r in range(rows):
                        xk[r] = x_code[b0 + r, j * n + k]
                    for c in range(width):
                        wv = w_code_t[j, k, i0 + c]
                        for r in range(_ROW_BLOCK):
                            mac[r, c] += xk[r] * wv
                for r in range(rows):
                    _tile_epilogue(
                        mac[r, :width], acc[b0 + r, i0 : i0 + width], w_scale_t[j, i0 : i0 + width],
                        x_scale[b0 + r, j], j == 0, j == nt - 1, seed, stream,
                        batch_offset + b0 + r, i0, j, kind, amplitude, gain_constant, code_max,
                        k_const, pe, pm, ae, am, oe, om,
                    )  # fmt: skip

    jit = njit(parallel=True, cache=True)
    return jit(tile_pass), jit(small_tiles)
