"""The public forward pass of an ABFP tile (SPEC.md steps 1-10) and its stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import _kernels
from simulator.config import TileConfig

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


@dataclass(frozen=True)
class QuantizedWeights:
    """Weights converted offline (SPEC steps 1-3 for w), reusable across calls.

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

    @property
    def code(self) -> np.ndarray:
        """int32 (N, T, n): the weight codes of each tile."""
        return self.tile_codes.transpose(2, 0, 1).astype(np.int32)

    @property
    def shape(self) -> tuple:
        """(N, K) of the original weights."""
        return self.values.shape

    def compatible_with(self, cfg: TileConfig) -> bool:
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
    values, scales, codes = _quantize(arr, cfg, cfg.mw, cfg.w_fmt, "w", (arr.shape[0],))
    tile_codes = codes.reshape(arr.shape[0], scales.shape[1], cfg.n).transpose(1, 2, 0)
    return QuantizedWeights(cfg, values, scales, np.ascontiguousarray(tile_codes))


def quantize_inputs(x, cfg: TileConfig):
    """The input unit's job (SPEC steps 1-3 for x): values, block scales and DAC codes.

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
    _, scales, codes = _quantize(arr, cfg, cfg.mx, cfg.in_fmt, "x", (arr.shape[0],))
    return codes.astype(np.int32).reshape(arr.shape[0], -1, cfg.n), scales


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
    """Analog noise ``e[b, i, j]`` in ADC LSB (SPEC step 6), a pure function of its indices.

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
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 0:
        raise ValueError(f"shape must be (B, N, T) of non-negative ints, got {shape}")
    seed, stream, batch_offset = _check_seed_stream(cfg, seed, stream, batch_offset, shape[0])
    out = np.zeros(shape, np.float64)
    if cfg.noise != "none":
        _kernels.noise_block(
            np.uint64(seed), stream, batch_offset, cfg.noise_code, cfg.noise_amplitude, out
        )
    return out


def _check_codes(code, name, bits_max, n):
    arr = np.asarray(code)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[2] != n:
        raise ValueError(f"{name} must have shape (rows, T, n={n}), got {arr.shape}")
    if arr.size and np.abs(arr.astype(np.int64)).max() > bits_max:
        idx = tuple(int(v) for v in np.argwhere(np.abs(arr.astype(np.int64)) > bits_max)[0])
        raise ValueError(f"{name}{list(idx)} = {arr[idx]} is outside [-{bits_max}, {bits_max}]")
    return arr.astype(np.int64)


def adc_codes(x_code, w_code, cfg: TileConfig, seed=None, stream=0, batch_offset=0, trace=False):
    """The analog array (SPEC steps 4-7): integer MAC, gain, noise and ADC.

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
    """The output unit's job (SPEC steps 8-10): rescale, accumulate over tiles, output.

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
    if q.dtype.kind not in "iu" or q.ndim != 3:
        raise ValueError(f"adc_code must be an integer array (B, N, T), got {q.dtype} {q.shape}")
    if q.size and np.abs(q.astype(np.int64)).max() > cfg.my:
        raise ValueError(f"adc_code holds codes outside [-{cfg.my}, {cfg.my}]")
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
    """Every stage of one forward pass (SPEC steps 1-10).

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
    if trace:
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
    """SPEC steps 1-10 without stage arrays; ``w`` is QuantizedWeights or checked (N, K) values.

    One fused kernel takes blocks of rows; tile by tile it quantizes their inputs, computes
    their dot products with a single-threaded BLAS call in its own thread and runs steps 5-10
    in cache. Extra memory: each thread's block of dot products, and for raw weights their
    codes laid out by tile, (T, n, N) (docs/performance.md).
    """
    rows, k = x2.shape
    n, tiles = cfg.n, cfg.tiles(k)
    n_out = w.shape[0]
    if isinstance(w, QuantizedWeights):
        w_code_t = w.tile_codes
        w_scale_t = np.ascontiguousarray(w.scale.T)
    else:
        w_code_t = np.empty((tiles, n, n_out), _dot_dtype(cfg))
        w_scale_t = np.empty((tiles, n_out), np.float32)
        formats = (_fmt_pair(cfg.w_fmt), _fmt_pair(cfg.scale_fmt))
        _, quantize_transposed, _ = _kernels.quantizer(*formats)
        quantize_transposed(w, n, float(cfg.mw), w_scale_t, w_code_t)
    kernel = _kernels.fused_linear(
        _fmt_pair(cfg.in_fmt), _fmt_pair(cfg.scale_fmt), _fmt_pair(cfg.partial_fmt),
        _fmt_pair(cfg.acc_fmt), _fmt_pair(cfg.out_fmt), cfg.noise_code,
    )  # fmt: skip
    y = np.empty((rows, n_out), np.float32)
    with _kernels.blas_in_caller_thread():
        kernel(
            x2, w_code_t, w_scale_t, float(cfg.mx), np.uint64(seed), stream, batch_offset,
            cfg.noise_amplitude, cfg.gain_constant, float(cfg.my), float(cfg.rescale_constant),
            _kernels.row_block(rows, n_out, w_code_t.itemsize), y,
        )  # fmt: skip
    return y


def _traced(cfg, xv, xs, xc, qw, seed, stream, batch_offset, batch_shape):
    rows = xv.shape[0]
    x_code = xc.astype(np.int32).reshape(rows, -1, cfg.n)
    adc, analog_stages = adc_codes(
        x_code, qw.code, cfg, seed=seed, stream=stream, batch_offset=batch_offset, trace=True
    )
    y, digital = rescale_accumulate(adc, xs, qw.scale, cfg, trace=True)
    n_out = qw.shape[0]
    stages = Trace(
        x_fmt=xv, w_fmt=qw.values, x_scale=xs, w_scale=qw.scale, x_code=x_code, w_code=qw.code,
        adc_code=adc, y=y, **analog_stages, **digital,
    )  # fmt: skip
    return y.reshape(batch_shape + (n_out,)), stages
