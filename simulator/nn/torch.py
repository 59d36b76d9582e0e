"""PyTorch adapter: run a torch module's linear layers and convolutions on the bit-exact tile.

``convert(module, policy)`` replaces every ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` (and,
with ``attention=True``, every ``nn.MultiheadAttention``) by a module whose forward calls
:class:`simulator.nn.TileOps` on the layer's NumPy inputs, so its output is
:func:`simulator.abfp_linear`'s, bit for bit. The converted modules share the original
parameters (state-dict keys are unchanged) and run in inference mode: their forward is computed
without autograd (no gradient flows through them) and with no dropout. ``restore(module)`` puts
the original modules back.

Layer names are the modules' qualified names (``"encoder.0.fc"``; ``"root"`` if the module
passed in is itself converted); an attention module ``attn`` becomes the layers ``attn.q``,
``attn.k``, ``attn.v`` (input projections), ``attn.qk`` (``Q K^T``), ``attn.av`` (attention
times ``V``) and ``attn.out_proj``. ``attn.qk`` and ``attn.av`` are activation products: they
run on the tile only where the policy sets ``matmul = true`` for them.

A module that calls ``torch.nn.functional.scaled_dot_product_attention`` itself keeps its
class: named in ``convert(..., sdpa=[name])``, its calls of that function during its own forward
are routed to :func:`scaled_dot_product_attention` here (a ``TorchFunctionMode`` entered for the
length of the submodule's forward), whose two products are the layers ``name.qk`` and
``name.av``. Code may also call :func:`scaled_dot_product_attention` directly under a name
listed in ``sdpa``.

A linear layer's axis 0 is taken as the batch (``ops.batch_start``, see
:mod:`simulator.nn.ops`); attention inputs are put batch-first before their products.

PyTorch is imported only when a function of this module is called: ``pip install
torch==2.13.0`` (the project's ``torch`` extra) provides it.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from simulator.nn.ops import TileOps
from simulator.nn.policy import as_policy
from simulator.nn.stats import format_table

__all__ = ["convert", "import_torch", "restore", "scaled_dot_product_attention", "summary",
           "tile_ops"]

_INSTALL_HINT = (
    "simulator.nn.torch needs PyTorch: pip install torch==2.13.0 "
    "(or the project's extra: pip install -e '.[torch]')"
)
ROOT_NAME = "root"


def import_torch():
    """The ``torch`` module, or an ImportError that names the install command."""
    try:
        import torch
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None
    return torch


def _numpy(tensor):
    return None if tensor is None else tensor.detach().to("cpu", import_torch().float32).numpy()


@cache
def _modules():
    """The tile module classes, defined on first use so that torch loads only then."""
    torch = import_torch()
    nn = torch.nn

    class _TileModule(nn.Module):
        def __init__(self, original, name, ops):
            super().__init__()
            self.__dict__["original"] = original  # not a submodule: keys stay as they were
            self.layer_name = name
            self.ops = ops

        def layers(self) -> list[tuple[str, bool]]:
            """(layer name, is an activation product) of each product this module runs."""
            return [(self.layer_name, False)]

        def extra_repr(self) -> str:
            return f"{self.layer_name!r}, {type(self.original).__name__}"

        def _to_torch(self, y, like):
            return torch.from_numpy(np.ascontiguousarray(y)).to(like.device, like.dtype)

    class TileLinearModule(_TileModule):
        def __init__(self, original, name, ops):
            super().__init__(original, name, ops)
            self.weight, self.bias = original.weight, original.bias

        def forward(self, x):
            with torch.no_grad():
                y = self.ops.linear(self.layer_name, _numpy(x), _numpy(self.weight),
                                    _numpy(self.bias))  # fmt: skip
            return self._to_torch(y, x)

    class TileConvModule(_TileModule):
        def __init__(self, original, name, ops):
            super().__init__(original, name, ops)
            if original.padding_mode != "zeros":
                raise ValueError(
                    f"layer {name!r}: padding_mode {original.padding_mode!r} is not supported "
                    "on the tile (only 'zeros')"
                )
            self.weight, self.bias = original.weight, original.bias
            self._method = "conv1d" if isinstance(original, nn.Conv1d) else "conv2d"

        def forward(self, x):
            c = self.original
            with torch.no_grad():
                y = getattr(self.ops, self._method)(
                    self.layer_name, _numpy(x), _numpy(self.weight), _numpy(self.bias),
                    stride=c.stride, padding=c.padding, dilation=c.dilation, groups=c.groups,
                )  # fmt: skip
            return self._to_torch(y, x)

    class TileMultiheadAttention(_TileModule):
        def __init__(self, original, name, ops):
            super().__init__(original, name, ops)
            if original.bias_k is not None or original.add_zero_attn:
                raise ValueError(
                    f"layer {name!r}: MultiheadAttention with add_bias_kv or add_zero_attn is "
                    "not supported on the tile"
                )
            for key in ("in_proj_weight", "in_proj_bias", "q_proj_weight", "k_proj_weight",
                        "v_proj_weight"):  # fmt: skip
                setattr(self, key, getattr(original, key))
            self.out_proj = original.out_proj

        def layers(self) -> list[tuple[str, bool]]:
            return [(f"{self.layer_name}.{p}", p in ("qk", "av"))
                    for p in ("q", "k", "v", "qk", "av", "out_proj")]  # fmt: skip

        def _projections(self):
            m = self.original
            e = m.embed_dim
            if m._qkv_same_embed_dim:
                w = _numpy(self.in_proj_weight)
                weights = (w[:e], w[e:2 * e], w[2 * e:])
            else:
                weights = tuple(_numpy(p) for p in (m.q_proj_weight, m.k_proj_weight,
                                                    m.v_proj_weight))  # fmt: skip
            b = _numpy(self.in_proj_bias)
            biases = (None,) * 3 if b is None else (b[:e], b[e:2 * e], b[2 * e:])
            return weights, biases

        def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                    attn_mask=None, average_attn_weights=True, is_causal=False):  # fmt: skip
            m, ops, name = self.original, self.ops, self.layer_name
            unbatched = query.dim() == 2
            with torch.no_grad():
                q, k, v = (_numpy(t) for t in (query, key, value))
                if unbatched:
                    q, k, v = q[None], k[None], v[None]
                elif not m.batch_first:
                    q, k, v = (np.swapaxes(t, 0, 1) for t in (q, k, v))
                (wq, wk, wv), (bq, bk, bv) = self._projections()
                heads, batch, length, source = m.num_heads, q.shape[0], q.shape[1], k.shape[1]
                dim = m.embed_dim // heads

                def split(t, length):
                    return t.reshape(batch, length, heads, dim).transpose(0, 2, 1, 3)

                qh = split(ops.linear(f"{name}.q", q, wq, bq), length)
                kh = split(ops.linear(f"{name}.k", k, wk, bk), source)
                vh = split(ops.linear(f"{name}.v", v, wv, bv), source)
                mask = _mha_mask(attn_mask, key_padding_mask, is_causal, batch, heads, length,
                                 source)  # fmt: skip
                out, weights = _attend(ops, name, qh, kh, vh, mask, 1.0 / math.sqrt(dim))
                out = out.transpose(0, 2, 1, 3).reshape(batch, length, m.embed_dim)
                out = ops.linear(f"{name}.out_proj", out, _numpy(self.out_proj.weight),
                                 _numpy(self.out_proj.bias))  # fmt: skip
                if unbatched:
                    out, weights = out[0], weights[0]
                elif not m.batch_first:
                    out = np.swapaxes(out, 0, 1)
            attn = None
            if need_weights:
                attn = weights.mean(axis=-3) if average_attn_weights else weights
                attn = self._to_torch(attn, query)
            return self._to_torch(out, query), attn

    replacements = {nn.Linear: TileLinearModule, nn.Conv1d: TileConvModule,
                    nn.Conv2d: TileConvModule}  # fmt: skip
    return _TileModule, replacements, TileMultiheadAttention


def _additive(mask, true_excludes: bool) -> np.ndarray:
    """A PyTorch attention mask as an additive float32 one (-inf where excluded)."""
    arr = mask.detach().cpu().numpy()
    if arr.dtype != bool:
        return arr.astype(np.float32)
    return np.where(arr if true_excludes else ~arr, -np.inf, 0).astype(np.float32)


def _causal(length: int, source: int) -> np.ndarray:
    """Additive mask excluding the keys after each query (top-left aligned, as PyTorch's)."""
    return np.where(np.triu(np.ones((length, source), bool), 1), -np.inf, 0).astype(np.float32)


def _mha_mask(attn_mask, key_padding_mask, is_causal, batch, heads, length, source):
    """nn.MultiheadAttention's masks (True excludes) as one additive mask for (B, H, L, S)."""
    total = np.zeros((1, 1, 1, 1), np.float32)
    if attn_mask is None and is_causal:
        total = total + _causal(length, source)
    elif attn_mask is not None:
        arr = _additive(attn_mask, True)
        total = total + arr.reshape((1, 1) + arr.shape if arr.ndim == 2 else
                                    (batch, heads, length, source))  # fmt: skip
    if key_padding_mask is not None:
        total = total + _additive(key_padding_mask, True).reshape(batch, 1, 1, source)
    return total


def _softmax(scores):
    top = np.max(scores, axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(top), top, 0))
    return (e / np.sum(e, axis=-1, keepdims=True)).astype(np.float32)


def _attend(ops, name, q, k, v, mask, scale):
    """``softmax(q k^T * scale + mask) v``: the products are layers ``name.qk`` and
    ``name.av``; scaling, mask and softmax are digital. Returns (output, weights)."""
    scores = ops.matmul(f"{name}.qk", ops.digital(q) * np.float32(scale), np.swapaxes(k, -1, -2))
    weights = _softmax(ops.digital(scores) + mask)
    return ops.matmul(f"{name}.av", ops.digital(weights), v), weights


def scaled_dot_product_attention(ops, name, query, key, value, attn_mask=None, is_causal=False,
                                 scale=None):  # fmt: skip
    """``torch.nn.functional.scaled_dot_product_attention`` through ``ops``, for inference.

    Call it where a module calls PyTorch's function (``ops`` is e.g. ``tile_ops(model)``): the
    two products are the layers ``name.qk`` and ``name.av`` (on the tile where the policy sets
    ``matmul``), the rest is digital as in :class:`nn.MultiheadAttention`'s conversion. No
    dropout. ``attn_mask`` as PyTorch's: boolean True takes part, a float mask is added.
    """
    torch = import_torch()
    q, k, v = (_numpy(t) for t in (query, key, value))
    length, source = q.shape[-2], k.shape[-2]
    mask = _causal(length, source) if is_causal else np.zeros((1, 1), np.float32)
    if attn_mask is not None:
        mask = mask + _additive(attn_mask, False)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    with torch.no_grad():
        out, _ = _attend(ops, name, q, k, v, mask, scale)
    return torch.from_numpy(np.ascontiguousarray(out)).to(query.device, query.dtype)


_SDPA_PARAMETERS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale",
                    "enable_gqa")  # fmt: skip


def _sdpa_router(name: str, ops):
    """Forward pre-hook and hook of submodule ``name``: for the length of its forward, its calls
    of PyTorch's scaled_dot_product_attention run :func:`scaled_dot_product_attention`."""
    torch = import_torch()
    sdpa = torch.nn.functional.scaled_dot_product_attention

    class Route(torch.overrides.TorchFunctionMode):
        calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is not sdpa:
                return func(*args, **kwargs)
            call = {**dict(zip(_SDPA_PARAMETERS, args, strict=False)), **kwargs}
            if call.pop("dropout_p", 0.0) or call.pop("enable_gqa", False):
                raise ValueError(f"layer {name!r}: scaled_dot_product_attention with dropout_p "
                                 "or enable_gqa is not supported on the tile (call it with "
                                 "dropout_p=0, e.g. in eval mode)")  # fmt: skip
            self.calls += 1
            if self.calls > 1:  # a second call would share the layer's noise stream
                raise ValueError(f"layer {name!r}: its forward calls scaled_dot_product_attention "
                                 "more than once; one call per named module")  # fmt: skip
            return scaled_dot_product_attention(ops, name, **call)

    active = []

    def enter(_module, _inputs):
        active.append(Route())
        active[-1].__enter__()

    def leave(_module, _inputs, _output):
        active.pop().__exit__(None, None, None)

    return enter, leave


def _route_sdpa(module, names, ops) -> list:
    """Hook the named submodules of ``module`` (see :func:`_sdpa_router`); their handles."""
    handles = []
    for name in names:
        try:
            target = module.get_submodule(name)
        except AttributeError:
            continue  # a name for direct calls of scaled_dot_product_attention only
        enter, leave = _sdpa_router(name, ops)
        handles.append(target.register_forward_pre_hook(enter))
        handles.append(target.register_forward_hook(leave, always_call=True))
    return handles


def _targets(module, attention: bool):
    """(qualified name, module, tile class) of every module to convert, outermost first."""
    base, replacements, mha = _modules()
    nn = import_torch().nn
    found, inside = [], []
    for name, child in module.named_modules():
        if any(name.startswith(p + ".") for p in inside) or isinstance(child, base):
            continue
        if isinstance(child, nn.MultiheadAttention):
            inside.append(name)  # its out_proj is read by its own forward, never called
            if attention:
                found.append((name, child, mha))
            continue
        cls = next((c for t, c in replacements.items() if type(child) is t), None)
        if cls is not None:
            found.append((name, child, cls))
    return found


def _replace(root, name, new):
    if not name:
        return new
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)
    return root


def convert(module, policy, seed=0, attention=False, stats=False, sdpa=()):
    """Replace the module's linear layers and convolutions by tile modules, in place.

    Parameters
    ----------
    module : torch.nn.Module
    policy : LayerPolicy or TileConfig
        Bound to the converted layers' names: a pattern that matches none is an error.
    seed : int
        Noise seed of the run.
    attention : bool
        Also convert ``nn.MultiheadAttention`` (see the module docstring).
    stats : bool
        Collect per-layer statistics (``tile_ops(module).stats()``).
    sdpa : iterable of str
        Attention layer names: ``name.qk`` and ``name.av`` join the bound policy's layer names.
        Where ``name`` is a submodule, its own calls of PyTorch's
        ``scaled_dot_product_attention`` run on the tile (module docstring); other names are for
        direct calls of :func:`scaled_dot_product_attention`.

    Returns
    -------
    torch.nn.Module
        ``module`` (or its replacement, if ``module`` itself is a converted type).
    """
    if isinstance(sdpa, str):
        raise TypeError("convert: sdpa is a list of names, not one string")
    sdpa = list(sdpa)
    targets = _targets(module, attention)
    if not targets:
        raise ValueError("convert: the module holds no nn.Linear, nn.Conv1d or nn.Conv2d")
    tiles = []
    ops = TileOps(as_policy(policy), seed=seed, stats=stats)
    for name, child, cls in targets:
        tiles.append((name, cls(child, name or ROOT_NAME, ops)))
    names = [layer for _, tile in tiles for layer, _ in tile.layers()]
    names += [f"{prefix}.{product}" for prefix in sdpa for product in ("qk", "av")]
    ops.policy = ops.policy.bind(names)
    routes = _route_sdpa(module, sdpa, ops)
    for name, tile in tiles:
        module = _replace(module, name, tile)
    if routes:
        tiles[0][1].__dict__["sdpa_routes"] = routes  # removed by restore()
    return module


def _tile_modules(module):
    base, _, _ = _modules()
    return [(name, m) for name, m in module.named_modules() if isinstance(m, base)]


def restore(module):
    """Put back the original modules of every tile module and remove the routes of
    scaled_dot_product_attention; returns the (root) module."""
    for name, tile in _tile_modules(module):
        for handle in tile.__dict__.pop("sdpa_routes", ()):
            handle.remove()
        module = _replace(module, name, tile.original)
    return module


def tile_ops(module) -> TileOps:
    """The :class:`TileOps` shared by a converted module's layers (``batch_start``, stats)."""
    found = _tile_modules(module)
    if not found:
        raise ValueError("tile_ops: the module holds no converted layer")
    return found[0][1].ops


def summary(module) -> str:
    """A table of the converted layers: module, type and each layer's configuration."""
    rows = []
    for name, tile in _tile_modules(module):
        for layer, is_matmul in tile.layers():
            s = tile.ops.policy.settings(layer)
            c = s.config
            on_tile = not s.float32 and (s.matmul or not is_matmul)
            rows.append({"module": name or ROOT_NAME, "type": type(tile.original).__name__,
                         "layer": layer, "on": "tile" if on_tile else "float32", "n": c.n,
                         "bits": f"{c.bx}/{c.bw}/{c.by}", "gain": c.gain,
                         "noise": f"{c.noise}:{c.noise_amplitude:g}"})  # fmt: skip
    return format_table(rows)
