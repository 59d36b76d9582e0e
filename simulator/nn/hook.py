"""A drop-in matrix-product hook for NumPy models of one's own: ``f(x, w) -> x @ w.T``."""

from __future__ import annotations

from simulator.nn.ops import TileOps

__all__ = ["TileLinear"]


class TileLinear:
    """``f(x, w)`` returning float32 ``x @ w.T`` through the bit-exact tile.

    A layer is identified by its weight **object**: the same array is the same layer (quantized
    once, one noise stream); another array, even with equal values, is another layer. Layers
    are named ``"linear0"``, ``"linear1"``, ... in order of first use unless ``name=`` is given,
    and a policy's patterns match those names. The hook keeps a reference to every weight it has
    seen, so an id is never reused by a new array while the hook lives.

    Parameters
    ----------
    config_or_policy : TileConfig or LayerPolicy
    seed : int
        Noise seed.
    stats : bool
        Collect per-layer statistics (``hook.ops.stats()``).

    Examples
    --------
    >>> f = TileLinear(TileConfig(n=64, noise="none"))
    >>> y = f(x, w)                # instead of x @ w.T
    """

    def __init__(self, config_or_policy=None, seed=0, stats=False):
        self.ops = TileOps(config_or_policy, seed=seed, stats=stats)
        self._layers: dict[int, tuple[str, object]] = {}

    @property
    def layer_names(self) -> list[str]:
        """Names of the layers seen so far, in order of first use."""
        return [name for name, _ in self._layers.values()]

    @property
    def batch_start(self) -> int:
        return self.ops.batch_start

    @batch_start.setter
    def batch_start(self, value: int) -> None:
        self.ops.batch_start = value

    def name_of(self, w, name: str | None = None) -> str:
        """The layer name of weight object ``w`` (assigned now if it is new)."""
        known = self._layers.get(id(w))
        if known is not None:
            if name is not None and name != known[0]:
                raise ValueError(f"this weight is layer {known[0]!r}; it cannot be named {name!r}")
            return known[0]
        if name is None:
            name = f"linear{len(self._layers)}"
        if name in self.layer_names:
            raise ValueError(f"layer name {name!r} already belongs to another weight array")
        self._layers[id(w)] = (name, w)  # the reference keeps id(w) from being reused
        return name

    def __call__(self, x, w, name: str | None = None):
        """``x @ w.T`` on the tile: x (..., K), w (N, K); float32 (..., N)."""
        return self.ops.linear(self.name_of(w, name), x, w)
