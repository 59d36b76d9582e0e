"""Golden test vectors of the ABFP tile's RTL units, for any simulator (docs/golden.md).

``python -m golden generate`` writes a vector set (``$readmemh`` files, ``vectors.npz`` and a
manifest); :func:`load` reads one back after checking every file's SHA-256; the plain-Verilog
benches in ``golden/hdl`` run a set on Icarus or Verilator (:mod:`golden.simulate`).
"""

from golden.store import SetError, VectorSet, generate, load, regenerate

__all__ = ["SetError", "VectorSet", "generate", "load", "regenerate"]
