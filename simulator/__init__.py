"""Bit-accurate golden model of an Adaptive Block Floating-Point (ABFP) analog matrix tile.

The arithmetic contract is ``docs/arithmetic.md``. Public API:

- :class:`TileConfig`: every width, format and constant of a tile;
- :mod:`simulator.formats`: floating-point formats and their exact arithmetic;
- :mod:`simulator.noise_kinds`: the table of analog noise kinds;
- :func:`abfp_linear`: the whole forward pass (optionally traced stage by stage);
- :func:`quantize_weights`, :func:`quantize_inputs`, :func:`noise`, :func:`adc_codes`,
  :func:`rescale_accumulate`: its stages, as the RTL units and the analog array split them.
"""

from simulator._cache import drop_stale_kernels

drop_stale_kernels()  # before any kernel loads from numba's cache

from simulator import noise_kinds  # noqa: E402
from simulator.config import NOISE_KINDS, TileConfig  # noqa: E402
from simulator.formats import BF16, FP16, FP32, FloatFormat  # noqa: E402
from simulator.model import (  # noqa: E402
    QuantizedWeights,
    Trace,
    abfp_linear,
    adc_codes,
    noise,
    quantize_inputs,
    quantize_weights,
    rescale_accumulate,
)

__version__ = "0.1.0"

__all__ = [
    "BF16",
    "FP16",
    "FP32",
    "NOISE_KINDS",
    "FloatFormat",
    "QuantizedWeights",
    "TileConfig",
    "Trace",
    "abfp_linear",
    "noise_kinds",
    "adc_codes",
    "noise",
    "quantize_inputs",
    "quantize_weights",
    "rescale_accumulate",
]
