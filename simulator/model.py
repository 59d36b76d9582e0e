"""The public forward pass of an ABFP tile (docs/arithmetic.md steps 1-10) and its stages."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numba
import numpy as np

from simulator import _int8gemm, _kernels
from simulator.config import TileConfig, _is_int
from simulator.formats import round_to

__all__ = [
    "QuantizedWeights",
    "Trace",
    "quantize_inputs",
    "quantize_weights",
    "noise",
    "adc_codes",
    "rescale_accumulate",
    "abfp_linear",
]

_MAX_STREAM = 1 << 32
_MAX_BATCH_ROW = 1 << 32


def _check_config(cfg) -> TileConfig:
    if not isinstance(cfg, TileConfig):
        raise TypeError(f"cfg must be a TileConfig, got {type(cfg).__name__}")
    return cfg


def _real_matrix(a, name: str, min_ndim: int) -> np.ndarray:
    """``a`` as a float64 array of at least ``min_ndim`` dims, all finite."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got {arr.shape}")
    if arr.shape[-1] == 0:
        raise ValueError(f"{name} has an empty last dimension (K = 0), shape {arr.shape}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        idx = tuple(int(v) for v in np.argwhere(~finite)[0])
        raise ValueError(f"{name}{list(idx)} = {arr[idx]} is not finite; {name} must be finite")
    return arr


def _fmt_pair(fmt):
    return (fmt.exp_bits, fmt.man_bits)


def _quantize(arr2d, cfg, bits_max, fmt, name, batch_shape):
    rows, k = arr2d.shape
    _check_overflow(arr2d, fmt, name, batch_shape)
    values = np.empty((rows, k), np.float32)
    scales = np.empty((rows, cfg.tiles(k)), np.float32)
    codes = np.empty((rows, scales.shape[1] * cfg.n), _dot_dtype(cfg))
    quantize_rows, _, _ = _kernels.quantizer(_fmt_pair(fmt), _fmt_pair(cfg.scale_fmt))
    quantize_rows(np.ascontiguousarray(arr2d), cfg.n, float(bits_max), values, scales, codes)
    return values, scales, codes


def _check_overflow(arr2d, fmt, name, batch_shape):
    """Refuse a value that rounds to infinity in ``fmt``, naming its index in the caller's shape."""
    first = np.empty(arr2d.shape[0], np.int64)
    # only the value format matters to this kernel
    _, _, first_overflow = _kernels.quantizer(_fmt_pair(fmt), _fmt_pair(fmt))
    first_overflow(np.ascontiguousarray(arr2d), first)
    bad_rows = np.flatnonzero(first >= 0)
    if bad_rows.size:
        row = int(bad_rows[0])
        col = int(first[row])
        idx = np.unravel_index(row, batch_shape) + (col,) if batch_shape else (col,)
        raise ValueError(
            f"{name}{[int(v) for v in idx]} = {arr2d[row, col]} overflows "
            f"{fmt.name} (largest finite {fmt.max_finite})"
        )


def _dot_dtype(cfg):
    """Type of the integer dot products: float32 sums are exact while every partial sum stays
    below 2**24, float64 below 2**53 (docs/performance.md)."""
    return np.float32 if cfg.mac_bound < 1 << 24 else np.float64


def _free_memory():
    """Free physical memory in bytes (cheap to ask), or None where the system does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _available_memory():
    """Bytes that a new allocation can take: /proc/meminfo's MemAvailable (which counts
    reclaimable caches too), else the free physical memory, else None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return _free_memory()


def _require_memory(needed, what):
    """Refuse, before allocating, a computation whose arrays need more than the memory
    available (``needed`` bytes, an estimate of its largest arrays)."""
    free = _free_memory()
    if free is not None and needed <= free:
        return
    available = _available_memory()
    if available is not None and needed > available:
        raise MemoryError(
            f"{what} needs about {needed / 2**30:.4g} GiB but {available / 2**30:.4g} GiB "
            "of memory is available; split the batch or the output rows"
        )


def _outside(arr, limit):
    """Mask of the elements of the integer array ``arr`` outside [-limit, limit], compared in
    ``arr``'s own dtype with bounds clipped to it (``abs`` or a cast to int64 would wrap at
    the dtype's extremes)."""
    info = np.iinfo(arr.dtype)
    mask = arr > arr.dtype.type(min(limit, info.max))
    if info.min < -limit:
        mask |= arr < arr.dtype.type(-limit)
    return mask


def _check_code_range(arr, name, limit):
    """Refuse a code outside [-limit, limit], naming its first index."""
    bad = _outside(arr, limit)
    if bad.any():
        idx = tuple(int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name}{list(idx)} = {arr[idx]} is outside [-{limit}, {limit}]")


def _read_only(arr):
    view = arr.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True)
class QuantizedWeights:
    """Weights converted offline (steps 1-3 for w), reusable across calls.

    Attributes
    ----------
    config : TileConfig
        The configuration they were quantized for (n, bw, w_fmt and scale_fmt matter).
    values : numpy.ndarray
        float32 (N, K): the weights rounded to ``w_fmt``.
    scale : numpy.ndarray
        float32 (N, T): per (row, tile) scales in ``scale_fmt``.
    tile_codes : numpy.ndarray
        (T, n, N) float32 or float64: tile t's codes as an (n, N) matrix, zero past K, the
        layout that the fast path's matrix products read.
    """

    config: TileConfig
    values: np.ndarray
    scale: np.ndarray
    tile_codes: np.ndarray

    def __post_init__(self):
        """Refuse fields that :func:`quantize_weights` could not have produced for ``config``
        (shapes, dtypes, codes, scales and values of their formats), naming the field; the
        arrays are kept as read-only views."""
        cfg = self.config
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"QuantizedWeights.config must be a TileConfig, got {cfg!r}")
        for name, dtypes, ndim in (
            ("values", (np.float32,), 2),
            ("scale", (np.float32,), 2),
            ("tile_codes", (np.float32, np.float64), 3),
        ):
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.dtype not in dtypes or arr.ndim != ndim:
                got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else repr(arr)
                kinds = " or ".join(np.dtype(d).name for d in dtypes)
                raise TypeError(
                    f"QuantizedWeights.{name} must be a {ndim}-D numpy array of {kinds}, got {got}"
                )
            object.__setattr__(self, name, _read_only(np.ascontiguousarray(arr)))
        n_out, k = self.values.shape
        if k == 0:
            raise ValueError("QuantizedWeights.values has an empty last dimension (K = 0)")
        tiles = cfg.tiles(k)
        for name, shape in (("scale", (n_out, tiles)), ("tile_codes", (tiles, cfg.n, n_out))):
            if getattr(self, name).shape != shape:
                raise ValueError(
                    f"QuantizedWeights.{name} has shape {getattr(self, name).shape}; values "
                    f"{self.values.shape} with n = {cfg.n} need {shape}"
                )
        self._check_values("values", cfg.w_fmt, np.isfinite(self.values), "finite")
        scale = self.scale
        self._check_values("scale", cfg.scale_fmt, (scale >= 0) & ~np.signbit(scale), ">= +0")
        codes = self.tile_codes
        bad = ~(np.abs(codes) <= cfg.mw) | (codes != np.rint(codes))
        last_k = k - (tiles - 1) * cfg.n  # elements of the last tile; codes past them pad
        bad[tiles - 1, last_k:] |= codes[tiles - 1, last_k:] != 0
        if bad.any():
            j, c, i = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(
                f"QuantizedWeights.tile_codes[{j}, {c}, {i}] = {codes[j, c, i]} is not an "
                f"integer code in [-{cfg.mw}, {cfg.mw}] (zero past K = {k})"
            )

    def _check_values(self, name, fmt, legal, rule):
        arr = getattr(self, name)
        bad = ~legal | (round_to(arr, fmt).view(np.uint32) != arr.view(np.uint32))
        if bad.any():
            idx = [int(v) for v in np.argwhere(bad)[0]]
            raise ValueError(
                f"QuantizedWeights.{name}{idx} = {arr[tuple(idx)]!r} is not a {rule} value "
                f"of {fmt.name}"
            )

    def product_codes(self, dtype) -> np.ndarray:
        """:attr:`tile_codes` as ``dtype`` (the codes of the fast path's product: int8, or
        float64 where float32 sums are not exact), converted once and kept."""
        dtype = np.dtype(dtype)
        if dtype == self.tile_codes.dtype:
            return self.tile_codes
        cache = self.__dict__.setdefault("_product_codes", {})
        if dtype not in cache:
            cache[dtype] = _read_only(self.tile_codes.astype(dtype))
        return cache[dtype]

    @property
    def code(self) -> np.ndarray:
        """int32 (N, T, n): the weight codes of each tile."""
        return self.tile_codes.transpose(2, 0, 1).astype(np.int32)

    @property
    def shape(self) -> tuple:
        """(N, K) of the original weights."""
        return self.values.shape

    def compatible_with(self, cfg: TileConfig) -> bool:
        """Whether ``cfg`` quantizes weights as :attr:`config` does (same n, bw, w_fmt and
        scale_fmt), so that these weights give exactly the raw weights' results under it."""
        c = self.config
        return (c.n, c.bw, c.w_fmt, c.scale_fmt) == (cfg.n, cfg.bw, cfg.w_fmt, cfg.scale_fmt)


def quantize_weights(w, cfg: TileConfig) -> QuantizedWeights:
    """Convert weights offline: round to ``w_fmt``, per-(row, tile) scales and codes.

    Parameters
    ----------
    w : array_like, shape (N, K)
        Real, finite weights.
    cfg : TileConfig

    Returns
    -------
    QuantizedWeights

    Raises
    ------
    ValueError
        If ``w`` is not 2-D, holds a non-finite value or a value that overflows ``w_fmt``
        (the message names the first index).
    """
    cfg = _check_config(cfg)
    arr = _real_matrix(w, "w", 2)
    if arr.ndim != 2:
        raise ValueError(f"w must have shape (N, K), got {arr.shape}")
    _require_memory(2 * _quantized_bytes(arr.shape, cfg), "quantize_weights")
    values, scales, codes = _quantize(arr, cfg, cfg.mw, cfg.w_fmt, "w", (arr.shape[0],))
    tile_codes = codes.reshape(arr.shape[0], scales.shape[1], cfg.n).transpose(1, 2, 0)
    return QuantizedWeights(cfg, values, scales, np.ascontiguousarray(tile_codes))


def quantize_inputs(x, cfg: TileConfig):
    """The input unit's job (steps 1-3 for x): values, block scales and DAC codes.

    Parameters
    ----------
    x : array_like, shape (B, K)
        Real, finite inputs.
    cfg : TileConfig

    Returns
    -------
    x_code : numpy.ndarray
        int32 (B, T, n) DAC codes, zero past K.
    x_scale : numpy.ndarray
        float32 (B, T) block scales in ``scale_fmt``.
    """
    cfg = _check_config(cfg)
    arr = _real_matrix(x, "x", 2)
    if arr.ndim != 2:
        raise ValueError(f"x must have shape (B, K), got {arr.shape}")
    _require_memory(_quantized_bytes(arr.shape, cfg), "quantize_inputs")
    _, scales, codes = _quantize(arr, cfg, cfg.mx, cfg.in_fmt, "x", (arr.shape[0],))
    return codes.astype(np.int32).reshape(scales.shape + (cfg.n,)), scales


def _quantized_bytes(shape, cfg):
    """Bytes of :func:`_quantize`'s results for ``shape`` (rows, K), codes also as int32."""
    rows, k = shape
    tiles = cfg.tiles(k)
    return rows * (4 * k + 4 * tiles + tiles * cfg.n * (np.dtype(_dot_dtype(cfg)).itemsize + 4))


def _check_seed_stream(cfg, seed, stream, batch_offset, rows):
    seed = cfg.seed if seed is None else seed
    for name, value, limit in (
        ("seed", seed, 1 << 64),
        ("stream", stream, _MAX_STREAM),
        ("batch_offset", batch_offset, _MAX_BATCH_ROW),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if not 0 <= value < limit:
            raise ValueError(f"{name} must be in [0, {limit}), got {value}")
    if batch_offset + rows > _MAX_BATCH_ROW:
        raise ValueError(f"batch rows up to {batch_offset + rows} exceed the 2**32 noise counter")
    return int(seed), int(stream), int(batch_offset)


def noise(shape, cfg: TileConfig, seed=None, stream=0, batch_offset=0) -> np.ndarray:
    """Analog noise ``e[b, i, j]`` in ADC LSB (step 6), a pure function of its indices.

    Parameters
    ----------
    shape : tuple of int
        (B, N, T).
    cfg : TileConfig
        ``noise`` and ``noise_amplitude`` choose the distribution.
    seed : int, optional
        Defaults to ``cfg.seed``.
    stream : int
        Stream id in [0, 2**32), e.g. one per layer.
    batch_offset : int
        Batch index of the first row (noise depends on absolute indices).

    Returns
    -------
    numpy.ndarray
        float64 (B, N, T); zeros when ``cfg.noise == "none"``.
    """
    cfg = _check_config(cfg)
    entries = tuple(shape) if isinstance(shape, (tuple, list)) else None
    if (
        entries is None
        or len(entries) != 3
        or not all(_is_int(s) for s in entries)
        or min(entries) < 0
    ):
        raise ValueError(f"shape must be (B, N, T) of non-negative ints, got {shape!r}")
    shape = tuple(int(s) for s in entries)
    seed, stream, batch_offset = _check_seed_stream(cfg, seed, stream, batch_offset, shape[0])
    _require_memory(8 * int(np.prod(shape)), f"noise of shape {shape}")
    out = np.empty(shape, np.float64)
    _kernels.noise_block(
        np.uint64(seed), stream, batch_offset, cfg.noise_code, cfg.noise_amplitude, out
    )
    return out


def _check_codes(code, name, bits_max, n):
    arr = np.asarray(code)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[2] != n or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (rows, T >= 1, n={n}), got {arr.shape}")
    _check_code_range(arr, name, bits_max)
    return arr.astype(np.int64)


def adc_codes(x_code, w_code, cfg: TileConfig, seed=None, stream=0, batch_offset=0, trace=False):
    """The analog array (steps 4-7): integer MAC, gain, noise and ADC.

    Parameters
    ----------
    x_code : array_like of int, shape (B, T, n)
        DAC codes (e.g. from the RTL input unit).
    w_code : array_like of int, shape (N, T, n)
        Weight codes.
    cfg : TileConfig
    seed, stream, batch_offset : int
        Noise identity, as in :func:`noise`.
    trace : bool
        Also return the intermediate ``mac``, ``analog`` and ``noise`` arrays.

    Returns
    -------
    adc_code : numpy.ndarray
        int32 (B, N, T).
    stages : dict, only with ``trace=True``
        ``mac`` int64 (B, N, T), ``analog`` float64 ``mac * kA``, ``noise`` float64.
    """
    cfg = _check_config(cfg)
    xc = _check_codes(x_code, "x_code", cfg.mx, cfg.n)
    wc = _check_codes(w_code, "w_code", cfg.mw, cfg.n)
    if xc.shape[1] != wc.shape[1]:
        raise ValueError(f"x_code has {xc.shape[1]} tiles but w_code has {wc.shape[1]}")
    shape = (xc.shape[0], wc.shape[0], xc.shape[1])
    _require_memory(_ANALOG_BYTES * int(np.prod(shape)), f"adc_codes of shape {shape}")
    mac = np.einsum("btk,itk->bit", xc, wc)
    e = noise(mac.shape, cfg, seed, stream, batch_offset)
    analog = np.empty(mac.shape, np.float64)
    out = np.empty(mac.shape, np.int32)
    _kernels.adc_block(mac, e, cfg.gain_constant, float(cfg.my), analog, out)
    if trace:
        return out, {"mac": mac, "analog": analog, "noise": e}
    return out


def _fmt_tuple(cfg):
    p, a, o = cfg.partial_fmt, cfg.acc_fmt, cfg.out_fmt
    return (p.exp_bits, p.man_bits, a.exp_bits, a.man_bits, o.exp_bits, o.man_bits)


def rescale_accumulate(adc_code, x_scale, w_scale, cfg: TileConfig, trace=False):
    """The output unit's job (steps 8-10): rescale, accumulate over tiles, output.

    Parameters
    ----------
    adc_code : array_like of int, shape (B, N, T)
    x_scale : array_like, shape (B, T)
        Input block scales (values of ``scale_fmt``).
    w_scale : array_like, shape (N, T)
        Weight block scales (values of ``scale_fmt``).
    cfg : TileConfig
    trace : bool
        Also return ``partial`` and the running ``acc`` (B, N, T).

    Returns
    -------
    y : numpy.ndarray
        float32 (B, N) values of ``out_fmt``.
    stages : dict, only with ``trace=True``
    """
    cfg = _check_config(cfg)
    q = np.asarray(adc_code)
    if q.dtype.kind not in "iu" or q.ndim != 3 or q.shape[2] == 0:
        raise ValueError(
            f"adc_code must be an integer array (B, N, T >= 1), got {q.dtype} {q.shape}"
        )
    _check_code_range(q, "adc_code", cfg.my)
    nb, ni, nt = q.shape
    sx = np.asarray(x_scale, np.float32)
    sw = np.asarray(w_scale, np.float32)
    if sx.shape != (nb, nt) or sw.shape != (ni, nt):
        raise ValueError(
            f"x_scale {sx.shape} and w_scale {sw.shape} must be {(nb, nt)} and {(ni, nt)}"
        )
    partial = np.empty(q.shape, np.float32)
    acc = np.empty(q.shape, np.float32)
    y = np.empty((nb, ni), np.float32)
    _kernels.rescale_block(
        q.astype(np.int32), sx, sw, float(cfg.rescale_constant), _fmt_tuple(cfg), partial, acc, y,
    )  # fmt: skip
    if trace:
        return y, {"partial": partial, "acc": acc}
    return y


@dataclass(frozen=True)
class Trace:
    """Every stage of one forward pass (steps 1-10).

    B is the flattened batch, N the output rows, K the inner dimension, T = ceil(K/n).

    Attributes
    ----------
    x_fmt : float32 (B, K)
        Step 1: inputs rounded to ``in_fmt``.
    w_fmt : float32 (N, K)
        Step 1: weights rounded to ``w_fmt``.
    x_scale : float32 (B, T)
        Step 2: input block scales.
    w_scale : float32 (N, T)
        Step 2: weight block scales.
    x_code : int32 (B, T, n)
        Step 3: DAC codes.
    w_code : int32 (N, T, n)
        Step 3: weight codes.
    mac : int64 (B, N, T)
        Step 4: integer dot products.
    analog : float64 (B, N, T)
        Step 5: ``mac * kA`` in ADC LSB.
    noise : float64 (B, N, T)
        Step 6: noise in ADC LSB.
    adc_code : int32 (B, N, T)
        Step 7: ADC codes.
    partial : float32 (B, N, T)
        Step 8: rescaled per-tile results in ``partial_fmt``.
    acc : float32 (B, N, T)
        Step 9: the accumulator after each tile, in ``acc_fmt``.
    y : float32 (B, N)
        Step 10: outputs in ``out_fmt``.
    """

    x_fmt: np.ndarray
    w_fmt: np.ndarray
    x_scale: np.ndarray
    w_scale: np.ndarray
    x_code: np.ndarray
    w_code: np.ndarray
    mac: np.ndarray
    analog: np.ndarray
    noise: np.ndarray
    adc_code: np.ndarray
    partial: np.ndarray
    acc: np.ndarray
    y: np.ndarray


def abfp_linear(x, w, cfg: TileConfig, seed=None, stream=0, batch_offset=0, trace=False):
    """ABFP linear layer ``y = x @ w.T`` as the analog tile computes it, bit for bit.

    Parameters
    ----------
    x : array_like, shape (..., K)
        Real, finite inputs (any real dtype).
    w : array_like of shape (N, K), or QuantizedWeights
        Weights, or weights converted once with :func:`quantize_weights` for this ``cfg``.
    cfg : TileConfig
    seed : int, optional
        Noise seed; defaults to ``cfg.seed``.
    stream : int
        Noise stream id in [0, 2**32), e.g. the layer index.
    batch_offset : int
        Absolute batch index of the first row of ``x`` (flattened), so that a batch computed
        in chunks gets the same noise as computed whole.
    trace : bool
        Also return a :class:`Trace` of every stage (memory grows with B*N*T).

    Returns
    -------
    y : numpy.ndarray
        float32 (..., N) holding exact ``out_fmt`` values.
    trace : Trace, only with ``trace=True``

    Raises
    ------
    ValueError, TypeError
        Wrong shapes or dtypes, NaN or inf in x or w (naming tensor and first index),
        weights quantized for another configuration. Nothing is computed.
    MemoryError
        When the arrays the call needs (the stages with ``trace=True``) exceed the memory
        available, stating both figures; nothing is allocated.
    """
    cfg = _check_config(cfg)
    xarr = _real_matrix(x, "x", 1)
    batch_shape = xarr.shape[:-1]
    k = xarr.shape[-1]
    if isinstance(w, QuantizedWeights):
        if not w.compatible_with(cfg):
            raise ValueError("w was quantized for a configuration with another n, bw or formats")
        qw = w
    else:
        warr = _real_matrix(w, "w", 2)
        if warr.ndim != 2:
            raise ValueError(f"w must have shape (N, K), got {warr.shape}")
        if warr.shape[1] != k:
            raise ValueError(f"x has K = {k} but w has shape {warr.shape}")
        qw = None
    if qw is not None and qw.shape[1] != k:
        raise ValueError(f"x has K = {k} but the quantized weights have shape {qw.shape}")
    rows = int(np.prod(batch_shape))
    seed, stream, batch_offset = _check_seed_stream(cfg, seed, stream, batch_offset, rows)
    x2 = np.ascontiguousarray(xarr.reshape(rows, k))
    n_out = (qw if qw is not None else warr).shape[0]
    if trace:
        _require_memory(_trace_bytes(cfg, rows, n_out, k), "abfp_linear(trace=True)")
        xv, xs, xc = _quantize(x2, cfg, cfg.mx, cfg.in_fmt, "x", batch_shape)
        if qw is None:
            qw = quantize_weights(warr, cfg)
        return _traced(cfg, xv, xs, xc, qw, seed, stream, batch_offset, batch_shape)
    _check_overflow(x2, cfg.in_fmt, "x", batch_shape)
    if qw is None:
        warr = np.ascontiguousarray(warr)
        _check_overflow(warr, cfg.w_fmt, "w", (warr.shape[0],))
    y = _fast_linear(cfg, x2, qw if qw is not None else warr, seed, stream, batch_offset)
    return y.reshape(batch_shape + (y.shape[1],))


def _fast_linear(cfg, x2, w, seed, stream, batch_offset):
    """Steps 1-10 without stage arrays; ``w`` is QuantizedWeights or checked (N, K) values.

    One fused kernel takes blocks of rows; tile by tile it quantizes their inputs, computes
    their dot products with a single-threaded BLAS call in its own thread and runs steps 5-10
    in cache. Extra memory: each thread's block of dot products, and for raw weights their
    codes laid out by tile, (T, n, N) (docs/performance.md).
    """
    rows, k = x2.shape
    n, tiles = cfg.n, cfg.tiles(k)
    n_out = w.shape[0]
    if rows == 0 or n_out == 0:
        return np.empty((rows, n_out), np.float32)
    product = _kernels.product_path(n, cfg.mx, cfg.mw)
    x_dtype, w_dtype, dot_dtype = _kernels.product_dtypes(product, _dot_dtype(cfg))
    quantized = isinstance(w, QuantizedWeights)
    # weights quantized under a configuration with float32 dot products may need float64 ones
    convert = quantized and w.tile_codes.dtype != w_dtype
    block = _kernels.row_block(rows, n_out, dot_dtype.itemsize)
    weight_bytes = tiles * n_out * (4 + n * w_dtype.itemsize) if convert or not quantized else 0
    dot_bytes = _kernels._OUT_CHUNK if product == "inline" else n_out
    block_bytes = min(rows, block * numba.get_num_threads()) * (
        n * x_dtype.itemsize + dot_bytes * dot_dtype.itemsize
    )
    _require_memory(weight_bytes + block_bytes + 4 * rows * n_out, "abfp_linear")
    if quantized:
        w_code_t = w.product_codes(w_dtype) if convert else w.tile_codes
        w_scale_t = np.ascontiguousarray(w.scale.T)
    else:
        w_code_t = np.empty((tiles, n, n_out), w_dtype)
        w_scale_t = np.empty((tiles, n_out), np.float32)
        formats = (_fmt_pair(cfg.w_fmt), _fmt_pair(cfg.scale_fmt))
        _, quantize_transposed, _ = _kernels.quantizer(*formats)
        quantize_transposed(w, n, float(cfg.mw), w_scale_t, w_code_t)
    kernel = _kernels.fused_linear(
        _fmt_pair(cfg.in_fmt), _fmt_pair(cfg.scale_fmt), _fmt_pair(cfg.partial_fmt),
        _fmt_pair(cfg.acc_fmt), _fmt_pair(cfg.out_fmt), cfg.noise_code, product,
    )  # fmt: skip
    gemm_address = _int8gemm.library()[0] if product == "int8" else 0
    status = np.zeros(-(-rows // block), np.int32)
    y = np.empty((rows, n_out), np.float32)
    with _kernels.blas_in_caller_thread():
        kernel(
            x2, w_code_t, w_scale_t, float(cfg.mx), np.uint64(seed), stream, batch_offset,
            cfg.noise_amplitude, cfg.gain_constant, float(cfg.my), float(cfg.rescale_constant),
            block, gemm_address, status, y,
        )  # fmt: skip
    if status.any():
        raise RuntimeError(f"oneDNN's dnnl_gemm_u8s8s32 failed with status {status.max()}")
    return y


# Bytes per (b, i, j): adc_codes' mac, analog and noise (8 each) and adc_code (4); then
# rescale_accumulate's int32 copy of the codes, partial and acc (4 each).
_ANALOG_BYTES = 28
_DIGITAL_BYTES = 12


def _trace_bytes(cfg, rows, n_out, k):
    """Bytes that a traced pass allocates: its (B, N, T) stages, and the codes of x and w in
    the dot product type, as int32 and as int64, plus the (B, N) outputs."""
    tiles = cfg.tiles(k)
    codes = (rows + n_out) * tiles * cfg.n * (np.dtype(_dot_dtype(cfg)).itemsize + 4 + 8)
    stages = (_ANALOG_BYTES + _DIGITAL_BYTES) * rows * n_out * tiles
    return stages + codes + 4 * rows * n_out


def _traced(cfg, xv, xs, xc, qw, seed, stream, batch_offset, batch_shape):
    x_code = xc.astype(np.int32).reshape(xs.shape + (cfg.n,))
    w_code = qw.code
    adc, analog_stages = adc_codes(
        x_code, w_code, cfg, seed=seed, stream=stream, batch_offset=batch_offset, trace=True
    )
    y, digital = rescale_accumulate(adc, xs, qw.scale, cfg, trace=True)
    n_out = qw.shape[0]
    stages = Trace(
        x_fmt=xv, w_fmt=qw.values, x_scale=xs, w_scale=qw.scale, x_code=x_code, w_code=w_code,
        adc_code=adc, y=y, **analog_stages, **digital,
    )  # fmt: skip
    return y.reshape(batch_shape + (n_out,)), stages
