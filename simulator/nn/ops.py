"""The operations a network's forward pass calls: float32 reference and bit-exact tile.

A model's forward is NumPy code that calls an ``ops`` object for every matrix product and for
the operands of its digital operations. :class:`Float32Ops` computes in float32;
:class:`TileOps` runs every product through :func:`simulator.abfp_linear` (docs/arithmetic.md
steps 1-10) with the layer's configuration from a :class:`~simulator.nn.LayerPolicy`. Both share
the lowering below, so the two runs differ only in the products and in :meth:`Ops.digital`.

Layer identity on the tile
    A layer is its ``name``. Its weights are quantized once (:func:`simulator.quantize_weights`)
    and cached; calling the name again with other weight values is an error. Its noise stream is
    :func:`stream_id` of the name: the first 4 bytes of SHA-256 of the UTF-8 name read as a
    little-endian uint32 (group ``g > 0`` of a grouped convolution uses the name
    ``f"{name}/group{g}"``). A layer's noise therefore depends on neither call order nor on
    which other layers exist.

Batch rows
    ``ops.batch_start`` is the absolute index of the batch's first sample (axis 0). A product
    whose input has ``r`` rows per sample (``prod(x.shape[1:-1])`` for a linear, the output
    positions of a convolution) passes ``batch_offset = batch_start * r`` to ``abfp_linear``, so
    an evaluation in chunks equals the same evaluation whole, bit for bit.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from simulator.config import TileConfig
from simulator.formats import BF16, FloatFormat, round_to
from simulator.model import abfp_linear, quantize_weights
from simulator.nn.policy import as_policy
from simulator.nn.stats import LayerStats, format_table

__all__ = ["Float32Ops", "Ops", "TileOps", "conv_output_shape", "round_float32", "stream_id"]


def stream_id(name: str) -> int:
    """Noise stream of layer ``name``: SHA-256 of its UTF-8 bytes, first 4 bytes little-endian."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "little")


def round_float32(x, fmt: FloatFormat) -> np.ndarray:
    """float32 ``x`` rounded to ``fmt``, equal to :func:`simulator.formats.round_to` bit for bit.

    A format with binary32's 8 exponent bits (bf16) has its exponent range, so rounding is
    round-half-to-even of the binary32 pattern at the format's last mantissa bit, subnormals
    and overflow to infinity included; NaN becomes the canonical NaN. That is done here with
    integer operations, an order of magnitude faster than the general kernel, which serves
    every other format.
    """
    x = np.asarray(x, np.float32)
    if fmt.exp_bits != 8:
        return round_to(x, fmt)
    shift = np.uint32(23 - fmt.man_bits)
    if shift == 0:
        return np.where(np.isnan(x), np.float32(np.nan), x)
    bits = x.view(np.uint32)
    below = (np.uint32(1) << shift) - np.uint32(1)
    carry = (below >> np.uint32(1)) + ((bits >> shift) & np.uint32(1))
    rounded = ((bits + carry) & ~below).view(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), rounded)


def _as_float32(name: str, what: str, value, min_ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"layer {name!r}: {what} must be a real array, got dtype {arr.dtype}")
    if arr.ndim < min_ndim:
        raise ValueError(
            f"layer {name!r}: {what} must have at least {min_ndim} dimension(s), got {arr.shape}"
        )
    arr = np.asarray(arr, np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        idx = [int(v) for v in np.argwhere(~finite)[0]]
        raise ValueError(f"layer {name!r}: {what}{idx} = {arr[tuple(idx)]} is not finite")
    return arr


def _tuple(name: str, what: str, value, dims: int, minimum: int) -> tuple:
    values = (value,) * dims if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != dims or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum
        for v in values
    ):
        raise ValueError(
            f"layer {name!r}: {what} must be an int >= {minimum} or {dims} of them, got {value!r}"
        )
    return tuple(int(v) for v in values)


def conv_output_shape(name, spatial, kernel, stride=1, padding=0, dilation=1):
    """Output size and the (before, after) padding of each spatial dimension of a convolution.

    ``padding`` is an int, one int per dimension, ``"valid"`` (none) or ``"same"`` (output
    ``ceil(size / stride)``; an odd total pads one more after, as TensorFlow does).
    """
    dims = len(spatial)
    stride = _tuple(name, "stride", stride, dims, 1)
    dilation = _tuple(name, "dilation", dilation, dims, 1)
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    if padding == "valid":
        pads = [(0, 0)] * dims
    elif padding == "same":
        totals = [max((-(-s // st) - 1) * st + e - s, 0)
                  for s, st, e in zip(spatial, stride, extent, strict=True)]
        pads = [(t // 2, t - t // 2) for t in totals]
    elif isinstance(padding, str):
        raise ValueError(
            f"layer {name!r}: padding must be an int, 'same' or 'valid', got {padding!r}"
        )
    else:
        pads = [(p, p) for p in _tuple(name, "padding", padding, dims, 0)]
    out = []
    for axis, (s, e, st, (lo, hi)) in enumerate(zip(spatial, extent, stride, pads, strict=True)):
        size = (s + lo + hi - e) // st + 1
        if s + lo + hi < e:
            raise ValueError(
                f"layer {name!r}: the kernel spans {e} positions (dilated) on spatial axis {axis} "
                f"but the padded input has only {s + lo + hi}"
            )
        out.append(size)
    return tuple(out), pads, stride, dilation


def _im2col(x, kernel, pads, stride, dilation, out_shape):
    """Patches of ``x`` (B, C, *S) as rows (B * prod(out), C * prod(kernel)), C-major."""
    dims = len(kernel)
    x = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))
    windows = np.lib.stride_tricks.sliding_window_view(x, extent, axis=tuple(range(2, 2 + dims)))
    picks = (slice(None), slice(None))
    picks += tuple(slice(None, o * s, s) for o, s in zip(out_shape, stride, strict=True))
    picks += tuple(slice(None, None, d) for d in dilation)
    windows = windows[picks]  # (B, C, *out, *kernel)
    order = (0,) + tuple(range(2, 2 + dims)) + (1,) + tuple(range(2 + dims, 2 + 2 * dims))
    patches = windows.transpose(order)
    return np.ascontiguousarray(patches).reshape(x.shape[0] * math.prod(out_shape), -1)


class Ops:
    """The shared interface and lowering; subclasses supply the two matrix products.

    Attributes
    ----------
    batch_start : int
        Absolute index of the current batch's first sample (see the module docstring).
    """

    def __init__(self):
        self.batch_start = 0

    # ---- the interface -----------------------------------------------------------------
    def linear(self, name: str, x, w, b=None) -> np.ndarray:
        """``x @ w.T (+ b)``: x (..., K), w (N, K), b (N,) added digitally; float32 (..., N)."""
        x = _as_float32(name, "input x", x, 1)
        w = _as_float32(name, "weight w", w, 2)
        if w.ndim != 2 or w.shape[1] != x.shape[-1]:
            raise ValueError(f"layer {name!r}: weight shape {w.shape} is not (N, K={x.shape[-1]})")
        per_sample = math.prod(x.shape[1:-1]) if x.ndim > 1 else 1
        y = self._weight_product(name, name, x.reshape(-1, x.shape[-1]), w, per_sample)
        return self._add_bias(name, y.reshape(x.shape[:-1] + (w.shape[0],)), b, -1)

    def conv1d(self, name, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        """1-D convolution: x (B, C, L), w (O, C // groups, k), b (O,); float32 (B, O, L')."""
        return self._conv(name, x, w, b, stride, padding, dilation, groups, 1)

    def conv2d(self, name, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        """2-D convolution, NCHW: x (B, C, H, W), w (O, C // groups, kh, kw); (B, O, H', W')."""
        return self._conv(name, x, w, b, stride, padding, dilation, groups, 2)

    def matmul(self, name: str, a, b) -> np.ndarray:
        """Activation x activation ``a @ b``: a (..., M, K), b (..., K, N), leading dims
        broadcast; float32 unless the policy sets ``matmul`` for this layer."""
        a = _as_float32(name, "operand a", a, 2)
        b = _as_float32(name, "operand b", b, 2)
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"layer {name!r}: a {a.shape} @ b {b.shape}: inner sizes differ")
        try:
            lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"layer {name!r}: leading dims of a {a.shape} and b {b.shape} do not broadcast"
            ) from None
        a = np.broadcast_to(a, lead + a.shape[-2:])
        b = np.broadcast_to(b, lead + b.shape[-2:])
        return self._activation_product(name, a, b)

    def digital(self, x) -> np.ndarray:
        """The operand of a digital operation as this run reads it (float32 array)."""
        return np.asarray(x, np.float32)

    # ---- what subclasses supply --------------------------------------------------------
    def _weight_product(self, name, key, x2, w, per_sample) -> np.ndarray:
        """(rows, K) @ (N, K).T for layer ``name``; ``key`` names the weight (and stream)."""
        raise NotImplementedError

    def _activation_product(self, name, a, b) -> np.ndarray:
        raise NotImplementedError

    # ---- shared lowering ---------------------------------------------------------------
    def _add_bias(self, name, y, b, axis):
        if b is None:
            return y
        b = _as_float32(name, "bias b", b, 1)
        if b.shape != (y.shape[axis],):
            raise ValueError(f"layer {name!r}: bias shape {b.shape} is not ({y.shape[axis]},)")
        shape = [1] * y.ndim
        shape[axis] = -1
        return self.digital(y) + self.digital(b).reshape(shape)

    def _conv(self, name, x, w, b, stride, padding, dilation, groups, dims):
        x = _as_float32(name, "input x", x, 1)
        w = _as_float32(name, "weight w", w, 1)
        layout = "(B, C, L)" if dims == 1 else "(B, C, H, W)"
        if x.ndim != dims + 2 or w.ndim != dims + 2:
            raise ValueError(
                f"layer {name!r}: conv{dims}d takes x {layout} and w (O, C // groups, "
                f"{'k' if dims == 1 else 'kh, kw'}), got x {x.shape} and w {w.shape}"
            )
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"layer {name!r}: groups must be an int >= 1, got {groups!r}")
        channels, outputs = x.shape[1], w.shape[0]
        if channels % groups or outputs % groups or w.shape[1] * groups != channels:
            raise ValueError(
                f"layer {name!r}: {channels} input and {outputs} output channels with groups="
                f"{groups} need both divisible by groups and w.shape[1] = {channels // groups}, "
                f"got w {w.shape}"
            )
        if min(x.shape[2:]) < 1 or min(w.shape) < 1:
            raise ValueError(f"layer {name!r}: empty input {x.shape} or weight {w.shape}")
        kernel = w.shape[2:]
        out_shape, pads, stride, dilation = conv_output_shape(
            name, x.shape[2:], kernel, stride, padding, dilation
        )
        per_sample = math.prod(out_shape)
        cin, cout = channels // groups, outputs // groups
        parts = []
        for g in range(groups):
            patches = _im2col(x[:, g * cin:(g + 1) * cin], kernel, pads, stride, dilation,
                              out_shape)  # fmt: skip
            wg = w[g * cout:(g + 1) * cout].reshape(cout, -1)
            key = name if g == 0 else f"{name}/group{g}"
            parts.append(self._weight_product(name, key, patches, wg, per_sample))
        y = np.concatenate(parts, axis=1) if groups > 1 else parts[0]
        y = y.reshape((x.shape[0],) + out_shape + (outputs,))
        y = np.moveaxis(y, -1, 1)
        return self._add_bias(name, np.ascontiguousarray(y), b, 1)

    def _products(self, name, a, b):
        """Each (M, K) @ (K, N) of the broadcast leading dims with its absolute first row."""
        lead = a.shape[:-2]
        m = a.shape[-2]
        per_sample = math.prod(lead[1:]) if lead else 1
        a3 = a.reshape((-1,) + a.shape[-2:])
        b3 = b.reshape((-1,) + b.shape[-2:])
        first = self.batch_start * per_sample if lead else self.batch_start
        return [(a3[p], b3[p], (first + p) * m if lead else first) for p in range(a3.shape[0])]


class Float32Ops(Ops):
    """The float32 reference: float32 products (convolutions by the same im2col lowering)."""

    def _weight_product(self, name, key, x2, w, per_sample):
        return x2 @ w.T

    def _activation_product(self, name, a, b):
        return np.matmul(a, b)


class TileOps(Ops):
    """Every matrix product through the bit-exact tile, :func:`simulator.abfp_linear`.

    Parameters
    ----------
    policy : LayerPolicy or TileConfig
        Each layer's configuration (a TileConfig applies to every layer).
    seed : int, optional
        Noise seed of the run; defaults to the policy default's ``seed``.
    digital_format : FloatFormat or str
        Format in which digital operations read their operands (:meth:`digital`), bf16.
    stats : bool
        Collect per-layer statistics (:meth:`stats`; definitions in :mod:`simulator.nn.stats`).
    sample_rows : int
        Rows of each call traced for the ADC and input-scale statistics.
    """

    def __init__(self, policy, seed=None, digital_format=BF16, stats=False, sample_rows=256):
        super().__init__()
        self.policy = as_policy(policy)
        self.seed = self.policy.default.seed if seed is None else seed
        TileConfig(seed=self.seed)  # validates the seed's range now, not at the first product
        self.digital_format = FloatFormat.parse(digital_format)
        self.collect_stats = bool(stats)
        self.sample_rows = int(sample_rows)
        self._weights: dict = {}
        self._stats: dict = {}

    def digital(self, x) -> np.ndarray:
        """``x`` rounded to the digital format (bf16): what a digital op reads on the tile."""
        return round_float32(x, self.digital_format)

    def stats(self) -> list[dict]:
        """Per-layer statistics so far, one dict per layer in order of first use."""
        if not self.collect_stats:
            raise RuntimeError("statistics are off: create TileOps(policy, stats=True)")
        return [s.row() for s in self._stats.values()]

    def stats_table(self) -> str:
        return format_table(self.stats())

    # ---- products ----------------------------------------------------------------------
    def _weight_product(self, name, key, x2, w, per_sample):
        settings = self.policy.settings(name)
        if settings.float32:
            return x2 @ w.T
        cfg = settings.config
        qw = self._quantized(name, key, w, cfg)
        offset = self.batch_start * per_sample
        y = self._run(name, x2, qw, cfg, key, offset)
        if self.collect_stats:
            self._record(name, cfg, x2, qw, key, offset, y, x2 @ w.T)
        return y

    def _activation_product(self, name, a, b):
        settings = self.policy.settings(name)
        if settings.float32 or not settings.matmul:
            return np.matmul(a, b)
        cfg = settings.config
        out = np.empty(a.shape[:-1] + b.shape[-1:], np.float32)
        flat = out.reshape((-1,) + out.shape[-2:])
        for p, (ap, bp, offset) in enumerate(self._products(name, a, b)):
            wt = np.ascontiguousarray(bp.T)
            flat[p] = self._run(name, ap, wt, cfg, name, offset)
            if self.collect_stats:
                self._record(name, cfg, ap, wt, name, offset, flat[p], ap @ bp)
        return out

    def _run(self, name, x2, w, cfg, key, offset, trace=False):
        try:
            return abfp_linear(x2, w, cfg, seed=self.seed, stream=stream_id(key),
                               batch_offset=offset, trace=trace)  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise ValueError(f"layer {name!r}: {exc}") from None

    def _quantized(self, name, key, w, cfg):
        cached = self._weights.get(key)
        if cached is None:
            try:
                qw = quantize_weights(w, cfg)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"layer {name!r}: {exc}") from None
            self._weights[key] = (np.array(w, copy=True), qw)
            return qw
        original, qw = cached
        if original.shape != w.shape or not np.array_equal(original, w):
            raise ValueError(
                f"layer {key!r}: weights {w.shape} differ from the weights {original.shape} "
                "first quantized under this name; one name is one layer with one weight"
            )
        return qw

    def _record(self, name, cfg, x2, w, key, offset, y, reference):
        st = self._stats.get(name)
        if st is None:
            st = self._stats[name] = LayerStats(name, cfg)
        _, trace = self._run(name, x2[: self.sample_rows], w, cfg, key, offset, trace=True)
        st.add_trace(trace)
        st.add_weight_scales(trace.w_scale)
        st.add_output(y, reference)
