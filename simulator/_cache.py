"""Keep numba's on-disk kernel cache in step with the package's source.

Numba checks a cached function against the modification time of the file that defines it,
not of the files whose functions it inlines: after an edit of ``_scalar.py`` alone, the
kernels of ``_kernels.py`` and ``formats.py`` would load from the cache with the old
arithmetic. Before any kernel runs, this module compares a digest of every source file of the
package with the one recorded beside the cache and, when they differ, removes the package's
cached kernels so that they compile from the current source.
"""

import hashlib
import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CACHE = _PACKAGE / "__pycache__"
_STAMP = _CACHE / "numba-source.sha256"


def source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def drop_stale_kernels() -> None:
    """Remove the cached kernels if the source changed since they were written; a cache
    directory that cannot be written (an installed, read-only package) is left alone."""
    current = source_digest()
    try:
        if _STAMP.read_text() == current:
            return
    except OSError:
        pass
    try:
        _CACHE.mkdir(exist_ok=True)
        for cached in list(_CACHE.glob("*.nb[ic]")):
            cached.unlink(missing_ok=True)
        partial = _STAMP.with_name(f"{_STAMP.name}.{os.getpid()}.tmp")
        partial.write_text(current)
        partial.replace(_STAMP)
    except OSError:
        pass
