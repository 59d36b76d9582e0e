"""Numba array kernels of the forward pass. Private: use ``simulator.model``.

Every kernel is a loop over independent elements (``prange`` over rows), each element's
arithmetic being the scalar functions of ``_scalar``; no reduction crosses threads, so results
do not depend on the thread count or on how the batch is split.
"""

import numpy as np
from numba import njit, prange

from simulator._scalar import (
    NOISE_NONE,
    add_fmt,
    adc,
    noise_from_word,
    noise_words,
    rescale,
    round_fmt,
)


@njit(parallel=True, cache=True)
def quantize_rows(src, n, code_max, val_exp, val_man, scale_exp, scale_man, values, scales, codes):
    """SPEC steps 1-3 for each row of ``src`` (rows, K) float64.

    Writes ``values`` (rows, K) float32: the operands in their format; ``scales`` (rows, T)
    float32: block max-abs in the scale format; ``codes`` (rows, T*n): the signed codes
    ``clamp(rne(v * M / s), M)``, zero-padded past K. ``v * M`` is exact in float64 and the
    correctly rounded quotient cannot reach or cross a half-integer the exact quotient does
    not (docs/arithmetic.md), so ``rint`` of it is the exact rne.
    """
    rows, k = src.shape
    tiles = scales.shape[1]
    for r in prange(rows):
        for j in range(tiles):
            lo = j * n
            hi = min(lo + n, k)
            peak = 0.0
            for c in range(lo, hi):
                v = round_fmt(src[r, c], val_exp, val_man)
                values[r, c] = v
                peak = max(peak, abs(v))
            s = round_fmt(peak, scale_exp, scale_man)
            scales[r, j] = s
            for c in range(lo, lo + n):
                q = 0.0
                if c < hi and s != 0.0:
                    q = np.rint(np.float64(values[r, c]) * code_max / s)
                    q = min(max(q, -code_max), code_max)
                codes[r, c] = q + 0.0  # no negative zero codes


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
                p = rescale(adc_code[b, i, j], w_scale[i, j], x_scale[b, j], k_const, fmts[0], fmts[1])
                partial[b, i, j] = p
                total = p if j == 0 else add_fmt(total, p, fmts[2], fmts[3])
                acc[b, i, j] = total
            y[b, i] = round_fmt(total, fmts[4], fmts[5])


@njit(parallel=True, cache=True)
def fused_tile(
    mac, j, last, x_scale, w_scale, seed, stream, batch_offset, kind, amplitude,
    gain_constant, code_max, k_const, fmts, acc,
):  # fmt: skip
    """SPEC steps 5-10 for tile ``j`` of every (b, i): one pass over ``mac`` (B, N).

    ``x_scale`` (B,) and ``w_scale`` (N,) are tile j's scales as contiguous float64 (a
    strided column would defeat vectorisation). ``acc`` (B, N) float32 holds the running
    accumulator; at the last tile it is replaced by the output-format result. Noise words are
    drawn once per four output rows.
    """
    nb, ni = mac.shape
    words = (np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0))
    for b in prange(nb):
        sx = x_scale[b]
        for i0 in range(0, ni, 4):
            if kind != NOISE_NONE:
                words = noise_words(seed, stream, batch_offset + b, i0, j)
            for w in range(min(4, ni - i0)):
                i = i0 + w
                e = 0.0
                if kind != NOISE_NONE:
                    e = noise_from_word(words[w], kind, amplitude)
                q = adc(mac[b, i], gain_constant, e, code_max)
                p = rescale(q, w_scale[i], sx, k_const, fmts[0], fmts[1])
                total = p if j == 0 else add_fmt(np.float64(acc[b, i]), p, fmts[2], fmts[3])
                if last:
                    total = round_fmt(total, fmts[4], fmts[5])
                acc[b, i] = total
