"""Numba array kernels of the forward pass. Private: use ``simulator.model``.

Every kernel is a loop over independent elements (``prange`` over rows), each element's
arithmetic being the scalar functions of ``_scalar``; no reduction crosses threads, so results
do not depend on the thread count or on how the batch is split.
"""

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

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
    """SPEC steps 1-3 for ``src[lo:hi]`` of one row: returns its scale, writes ``codes[:n]``.

    ``v * M`` is exact in float64 and the correctly rounded quotient cannot reach or cross a
    half-integer the exact quotient does not (docs/arithmetic.md), so ``rint`` of it is the
    exact rne. Codes past ``hi`` are zero padding; no code is a negative zero.
    """
    peak = 0.0
    for c in range(lo, hi):
        peak = max(peak, abs(_round_operand(src[c], val_exp, val_man)))
    s = round_fmt(peak, scale_exp, scale_man)
    for c in range(n):
        q = 0.0
        if lo + c < hi and s != 0.0:
            v = _round_operand(src[lo + c], val_exp, val_man)
            q = min(max(np.rint(v * code_max / s), -code_max), code_max)
        codes[c] = q + 0.0
    return s


@njit(cache=True)
def _tile_epilogue(
    mac, acc, w_scale, sx, first, last, noise, seed, stream, b, i_lo, j, kind, amplitude,
    gain_constant, code_max, k_const, pe, pm, ae, am, oe, om,
):  # fmt: skip
    """SPEC steps 5-10 of tile ``j`` for outputs ``i_lo ..`` of batch row ``b``, on row views.

    ``mac`` and ``w_scale`` (tile j's weight scales) run over the same outputs as ``acc``, the
    running accumulator (float32) that the last tile replaces with the output-format result.
    ``noise`` is scratch of at least ``2 * length + 6`` values. ``i_lo`` is a multiple of 4:
    one Philox block serves four consecutive outputs. The noise is drawn in a loop of its own,
    each block's four words stored in four planes (contiguous stores), then interleaved into
    row order in a copy loop, so that all three loops vectorise (a gather from the planes in
    the arithmetic loop would not).
    """
    length = mac.shape[0]
    groups = (length + 3) >> 2
    rows_noise = noise[4 * groups :]
    if kind != NOISE_NONE:
        for g in range(groups):
            words = noise_words(seed, stream, b, i_lo + 4 * g, j)
            noise[g] = noise_from_word(words[0], kind, amplitude)
            noise[groups + g] = noise_from_word(words[1], kind, amplitude)
            noise[2 * groups + g] = noise_from_word(words[2], kind, amplitude)
            noise[3 * groups + g] = noise_from_word(words[3], kind, amplitude)
        for g in range(groups):
            rows_noise[4 * g] = noise[g]
            rows_noise[4 * g + 1] = noise[groups + g]
            rows_noise[4 * g + 2] = noise[2 * groups + g]
            rows_noise[4 * g + 3] = noise[3 * groups + g]
    for i in range(length):
        e = rows_noise[i] if kind != NOISE_NONE else 0.0
        q = adc(mac[i], gain_constant, e, code_max)
        p = rescale(q, w_scale[i], sx, k_const, pe, pm)
        total = accumulate(np.float64(acc[i]), p, first, ae, am)
        if last:
            total = round_fp32_value(total, oe, om)
        acc[i] = total


@njit(cache=True)
def _block_dot(x_code, w_code, i0, width, rows, mac):
    """``mac[r, c] = sum_k x_code[r, k] * w_code[k, i0 + c]`` for a block, exactly.

    Four products are summed per pass over a row of ``mac`` (four times fewer loads and
    stores of it). Any order of summation gives the same result: every partial sum is an
    integer below the float type's exact range (``n * M(bx) * M(bw)``, see ``_dot_dtype``).
    """
    n = w_code.shape[0]
    mac[:] = 0
    quads = n & ~3
    for k in range(0, quads, 4):
        w0 = w_code[k, i0 : i0 + width]
        w1 = w_code[k + 1, i0 : i0 + width]
        w2 = w_code[k + 2, i0 : i0 + width]
        w3 = w_code[k + 3, i0 : i0 + width]
        for r in range(rows):
            x0, x1, x2, x3 = x_code[r, k], x_code[r, k + 1], x_code[r, k + 2], x_code[r, k + 3]
            mac_row = mac[r]
            for c in range(width):
                mac_row[c] += (x0 * w0[c] + x1 * w1[c]) + (x2 * w2[c] + x3 * w3[c])
    for k in range(quads, n):
        w0 = w_code[k, i0 : i0 + width]
        for r in range(rows):
            x0 = x_code[r, k]
            mac_row = mac[r]
            for c in range(width):
                mac_row[c] += x0 * w0[c]


# Blocking of the fused kernel: outputs per block, a multiple of 4 (one Philox block serves 4
# outputs), and batch rows per block, sized so a block's dot products stay in L1.
_OUT_BLOCK = 128
_ROW_BLOCK = 16

_QUANTIZERS = {}
_FUSED = {}


def quantizer(val_fmt, scale_fmt):
    """SPEC steps 1-3 kernels with the value and scale formats, (exp, man) pairs, as constants.

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
    """The fast path's kernel (SPEC steps 1-10 for x, 4-10 for the tile) with the formats and
    noise kind as compile-time constants, a closure cached on disk like :func:`quantizer`.

    ``kernel(x, w_code_t, w_scale_t, code_max_x, seed, stream, batch_offset, amplitude,
    gain_constant, code_max, k_const, y)``: ``x`` (B, K) float32 or float64 checked inputs,
    ``w_code_t`` (T, n, N) weight codes (float32 when every dot product stays below 2**24,
    else float64), ``w_scale_t`` (T, N) float64, ``y`` (B, N) float32 receives the outputs.
    """
    key = tuple(tuple(f) for f in (in_fmt, scale_fmt, partial_fmt, acc_fmt, out_fmt)) + (
        int(kind),
    )
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
               gain_constant, code_max, k_const, y):  # fmt: skip
        # Threads take blocks of _ROW_BLOCK batch rows: the block's input codes are made once
        # and reused for every block of _OUT_BLOCK outputs, whose dot products (each row of
        # weight codes loaded once per block and reused from L1 for its rows) and running
        # accumulators stay in cache across all T tiles.
        nb, k = x.shape
        nt, n, ni = w_code_t.shape
        for rb in prange(-(-nb // _ROW_BLOCK)):
            b0 = rb * _ROW_BLOCK
            rows = min(_ROW_BLOCK, nb - b0)
            x_code = np.zeros((_ROW_BLOCK, nt * n), w_code_t.dtype)
            x_scale = np.empty((_ROW_BLOCK, nt))
            for r in range(rows):
                for j in range(nt):
                    lo = j * n
                    x_scale[r, j] = _quantize_block(
                        x[b0 + r], lo, min(lo + n, k), n, code_max_x, ie, im, se, sm,
                        x_code[r, lo : lo + n],
                    )  # fmt: skip
            mac = np.empty((_ROW_BLOCK, _OUT_BLOCK), w_code_t.dtype)
            noise = np.empty(2 * _OUT_BLOCK + 6)
            for i0 in range(0, ni, _OUT_BLOCK):
                width = min(_OUT_BLOCK, ni - i0)
                for j in range(nt):
                    _block_dot(x_code[:, j * n : (j + 1) * n], w_code_t[j], i0, width, rows, mac)
                    for r in range(rows):
                        _tile_epilogue(
                            mac[r, :width], y[b0 + r, i0 : i0 + width],
                            w_scale_t[j, i0 : i0 + width], x_scale[r, j], j == 0, j == nt - 1,
                            noise, seed, stream, batch_offset + b0 + r, i0, j, kind, amplitude,
                            gain_constant, code_max, k_const, pe, pm, ae, am, oe, om,
                        )  # fmt: skip

    return njit(parallel=True, cache=True)(kernel)
