"""Real networks on the bit-exact tile (docs/networks.md).

A model's forward pass is NumPy code over an ``ops`` object: :class:`Float32Ops` (the float32
reference) or :class:`TileOps` (every matrix product through :func:`simulator.abfp_linear`,
per-layer configurations from a :class:`LayerPolicy`). :class:`TileLinear` is a drop-in
``f(x, w) = x @ w.T`` hook for models of one's own; :func:`calibrate` chooses per-layer gains
from one batch; :mod:`simulator.nn.torch` converts PyTorch modules (torch is imported only
there); ``python -m simulator.nn evaluate`` evaluates a model from the command line.
"""

from simulator.nn.calibrate import POWERS_OF_TWO, CalibrationResult, RecordingOps, calibrate
from simulator.nn.hook import TileLinear
from simulator.nn.ops import Float32Ops, Ops, TileOps, stream_id
from simulator.nn.policy import LayerPolicy, LayerSettings, PolicyError, escape_pattern
from simulator.nn.stats import LayerStats, format_table, sqnr_db

__all__ = [
    "POWERS_OF_TWO",
    "CalibrationResult",
    "Float32Ops",
    "LayerPolicy",
    "LayerSettings",
    "LayerStats",
    "Ops",
    "PolicyError",
    "RecordingOps",
    "TileLinear",
    "TileOps",
    "calibrate",
    "escape_pattern",
    "format_table",
    "sqnr_db",
    "stream_id",
]
