"""Golden test vectors of the ABFP tile's RTL units, for any simulator (docs/golden.md).

``python -m golden generate`` writes a vector set (``$readmemh`` files, ``vectors.npz`` and a
self-verifying manifest) with one set of transactions per kind of :data:`golden.kinds.KINDS`;
:func:`load` reads one back after verifying its digest, every file and everything its
configuration determines; :func:`regenerate` rebuilds one and refuses any difference; the
plain-Verilog benches in ``golden/hdl`` run a set on Icarus or Verilator
(:mod:`golden.simulate`). :mod:`golden.directed` holds the directed stimulus shared with the
cocotb benches.
"""

from golden.store import DestinationError, SetError, VectorSet, generate, load, regenerate

__all__ = ["DestinationError", "SetError", "VectorSet", "generate", "load", "regenerate"]
