"""Exact int8 matrix products for the fused kernel, from oneDNN's ``dnnl_gemm_u8s8s32``.

A tile's dot products are exact small integers (docs/arithmetic.md step 4). When both codes
fit in 8 bits, oneDNN multiplies unsigned 8-bit inputs by signed 8-bit weights into int32 sums
with integer instructions (VNNI where the CPU has it). The fused kernel stores the input codes
with a zero point of 128 (``qx + 128`` in 1..255) and passes ``ao = 128``, so the library
subtracts ``128 * (column sums of the weight codes)`` in int32 and returns the exact dot
products. The library is optional: the library comes from the ``onednn-cpu-gomp`` wheel (its
OpenMP runtime is the one numba's ``omp`` layer runs, so a call inside a numba thread stays in
that thread); when it is absent, fails to load, or is not exact for a configuration on this
CPU, the kernels use their float BLAS products, which give the same bits.

Some CPUs' int8 kernels add pairs of u8 x s8 products in saturating 16-bit arithmetic (AVX2
without VNNI), which is not exact for the largest codes: :func:`exact_for` runs the library
once per (n, code maxima) on the worst-case operands and on random ones, in shapes that reach
its different kernels, and compares with NumPy's int64 product; only an exact library is used.

``ABFP_DNNL_LIBRARY`` names the library file to load instead of the installed one (tests point
it at a missing file); ``simulator._kernels.product_path`` decides where the int8 product runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

ZERO_POINT = 128  # input codes are stored as qx + ZERO_POINT, unsigned
_LIBRARY_NAME = "libdnnl.so.3"
# Every partial sum of a tile stays below 2**24 (the config's mac_bound), so the int32 sums
# are exact whichever way the library scales or converts them.
_EXACT_BOUND = 1 << 24


def _library_candidates(override):
    if override:
        return [override]
    installed = Path(sys.prefix) / "lib" / _LIBRARY_NAME  # where the wheel puts it
    if installed.exists():
        return [str(installed)]
    found = ctypes.util.find_library("dnnl")  # runs ldconfig: only where the wheel is absent
    return [found] if found else []


@functools.cache
def _load(override):
    """(address of dnnl_gemm_u8s8s32, None) from the first candidate library that loads, else
    (None, reason)."""
    reasons = []
    for path in _library_candidates(override):
        try:
            function = ctypes.CDLL(path).dnnl_gemm_u8s8s32
        except (OSError, AttributeError) as error:
            reasons.append(f"{path}: {error}")
            continue
        return ctypes.cast(function, ctypes.c_void_p).value, None
    return None, "; ".join(reasons) or "no oneDNN library found"


def library():
    """(address, reason): the address of ``dnnl_gemm_u8s8s32``, or None and why not."""
    return _load(os.environ.get("ABFP_DNNL_LIBRARY", ""))


_I8, _I32, _I64, _F32 = ir.IntType(8), ir.IntType(32), ir.IntType(64), ir.FloatType()
_GEMM_TYPE = ir.FunctionType(
    _I32,
    [_I8, _I8, _I8, _I64, _I64, _I64, _F32, _I8.as_pointer(), _I64, _I8, _I8.as_pointer(), _I64,
     _I8, _F32, _I32.as_pointer(), _I64, _I32.as_pointer()],
)  # fmt: skip


@intrinsic
def gemm_u8s8s32(typingctx, address, m, n, k, a, lda, b, ldb, c, ldc, c_offset):
    """``C = (A - 128) B`` for row-major u8 ``A`` (m, k), s8 ``B`` (k, n), int32 ``C`` (m, n):
    oneDNN's ``dnnl_gemm_u8s8s32`` at ``address`` (an int64), every pointer an int64
    (``array.ctypes.data``), ``c_offset`` one int32 zero; returns the library's status."""
    sig = types.int32(*([types.int64] * 11))

    def codegen(context, builder, signature, args):
        address, m, n, k, a, lda, b, ldb, c, ldc, c_offset = args
        function = builder.inttoptr(address, _GEMM_TYPE.as_pointer())
        no_transpose = ir.Constant(_I8, ord("N"))
        fixed_offset = ir.Constant(_I8, ord("F"))
        return builder.call(
            function,
            [no_transpose, no_transpose, fixed_offset, m, n, k, ir.Constant(_F32, 1.0),
             builder.inttoptr(a, _I8.as_pointer()), lda, ir.Constant(_I8, ZERO_POINT),
             builder.inttoptr(b, _I8.as_pointer()), ldb, ir.Constant(_I8, 0),
             ir.Constant(_F32, 0.0), builder.inttoptr(c, _I32.as_pointer()), ldc,
             builder.inttoptr(c_offset, _I32.as_pointer())],
        )  # fmt: skip

    return sig, codegen


def _call(address, x_code, w_code):
    """The library's product of int codes ``x_code`` (m, k) and ``w_code`` (k, n), from Python."""
    gemm = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.c_char, ctypes.c_char, ctypes.c_char, ctypes.c_int64,
        ctypes.c_int64, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p, ctypes.c_int64,
        ctypes.c_uint8, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int8, ctypes.c_float,
        ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
    )(address)  # fmt: skip
    a = np.ascontiguousarray(x_code + ZERO_POINT, np.uint8)
    b = np.ascontiguousarray(w_code, np.int8)
    (m, k), n = a.shape, b.shape[1]
    c = np.empty((m, n), np.int32)
    offset = np.zeros(1, np.int32)
    status = gemm(b"N", b"N", b"F", m, n, k, 1.0, a.ctypes.data, k, ZERO_POINT, b.ctypes.data,
                  n, 0, 0.0, c.ctypes.data, n, offset.ctypes.data)  # fmt: skip
    return status, c


def _test_operands(n, mx, mw):
    """(x_code, w_code) pairs: every sign of the extreme codes, which any saturating 16-bit
    pair sum overflows first, and random codes; in shapes of one row, one column and a
    block, which oneDNN serves with different kernels."""
    rng = np.random.default_rng(n * 65536 + mx * 256 + mw)
    extremes_x = np.array([mx, -mx, mx, -mx, 0, 1])[:, None] * np.ones(n, np.int64)
    extremes_w = np.array([mw, mw, -mw, -mw, 1, 0])[None, :] * np.ones((n, 1), np.int64)
    extremes_w = np.concatenate([extremes_w, rng.integers(-mw, mw + 1, (n, 1))], axis=1)
    pairs = [(extremes_x, extremes_w)]
    for m, cols in ((1, 67), (37, 1), (70, 129), (260, 96)):
        pairs.append((rng.integers(-mx, mx + 1, (m, n)), rng.integers(-mw, mw + 1, (n, cols))))
    return pairs


@functools.cache
def _exact(address, n, mx, mw):
    for x_code, w_code in _test_operands(n, mx, mw):
        status, c = _call(address, x_code, w_code)
        if status != 0 or not np.array_equal(c, x_code @ w_code):
            return False
    return True


def exact_for(n, mx, mw):
    """(usable, reason): whether the int8 product gives the exact dot products of tiles of
    ``n`` with input codes up to ``mx`` and weight codes up to ``mw`` (codes of at most 8
    bits, sums below 2**24, the library loaded and checked exact on this CPU)."""
    if mx > 127 or mw > 127:
        return False, f"codes up to {mx} and {mw} need more than 8 bits"
    if n * mx * mw >= _EXACT_BOUND:
        return False, f"n * M(bx) * M(bw) = {n * mx * mw} reaches 2**24"
    address, reason = library()
    if address is None:
        return False, f"oneDNN is not available ({reason})"
    if not _exact(address, n, mx, mw):
        return False, f"oneDNN's int8 product is not exact on this CPU for codes up to {mx} x {mw}"
    return True, ""

