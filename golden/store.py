"""Writing, loading and verifying a vector set: hex files, ``vectors.npz`` and the manifest.

A vector set is a directory, written whole into a temporary sibling (under a lock on a sibling
lock file, so concurrent writers of one destination fail clearly) and renamed into place at the
end: a failed or interrupted run leaves nothing behind. The manifest records every file's
SHA-256 and a digest over its own canonical form; :func:`load` refuses a set whose digest or
files do not match, or whose derivable entries (formats, constants, HDL parameters, layouts,
counts, versions) differ from what its configuration and generator settings give.
:func:`regenerate` rebuilds a set from its manifest and refuses any difference. What this can
and cannot prove is in docs/golden.md ("Trust").
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import shutil
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

import simulator
from golden import layout as lay
from golden.kinds import KINDS, RTL_EXTRA
from simulator import FloatFormat, TileConfig

__all__ = ["FORMAT", "FORMAT_VERSION", "VectorSet", "generate", "regenerate", "load",
           "read_manifest", "default_beat_elements", "SetError", "DestinationError",
           "manifest_digest"]  # fmt: skip

FORMAT = "abfp-golden-vectors"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
NPZ = "vectors.npz"
DEFAULT_LANES = 4
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: regeneration is byte-identical
_PROGRESS_MIN = 20000  # transactions from which a run shows a progress bar
# The kinds' counts as generate()'s keyword arguments.
_COUNT_ARGS = {"input": "input_count", "output": "count", "tile": "tile_count"}


class SetError(ValueError):
    """A vector set that is incomplete, malformed or does not match its manifest."""


class DestinationError(OSError):
    """A destination directory that cannot receive a set (the message names it)."""


def default_beat_elements(n: int) -> int:
    """The input unit's default P: the largest divisor of n not above 16."""
    return max(d for d in range(1, min(n, 16) + 1) if n % d == 0)


class _Progress:
    """A plain-text progress bar on stderr for runs of at least ``_PROGRESS_MIN`` items."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total = label, max(total, 1)
        self.enabled = enabled and total >= _PROGRESS_MIN
        self._last = 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and done < self.total):
            return
        self._last = now
        frac = min(done / self.total, 1.0)
        bar = "#" * int(30 * frac)
        sys.stderr.write(f"\r{self.label:8s} [{bar:30s}] {100 * frac:5.1f}% {done}/{self.total}")
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's canonical form: sorted-key compact JSON without ``digest``.

    The manifest holds every file's SHA-256, so the digest covers the files too.
    """
    body = {k: v for k, v in manifest.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _write_npz(path: Path, arrays: dict) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


# ---- what a configuration and generator settings determine -----------------------------


def _check_settings(cfg: TileConfig, settings: dict) -> None:
    """Raise ``ValueError`` naming the first generator setting outside its range."""
    checks = [("seed", settings["seed"], 0, (1 << 63) - 1)]
    checks += [(_COUNT_ARGS.get(name, name), settings["counts"][name], 1, k.max_count)
               for name, k in KINDS.items()]  # fmt: skip
    checks += [("lanes", settings["lanes"], 1, 256), ("p", settings["p"], 1, cfg.n)]
    for name, value, lo, hi in checks:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {value!r}")
    if cfg.n % settings["p"]:
        raise ValueError(f"p = {settings['p']} must divide n = {cfg.n} (the input unit's beats)")


def _hdl_parameters(cfg: TileConfig, settings: dict) -> dict:
    """Verilog parameters of every RTL unit the kinds use, by unit."""
    units = dict.fromkeys(u for k in KINDS.values() for u in k.rtl_units)
    return {u: cfg.hdl_parameters(u, **{param: settings[key]
                                        for param, key in RTL_EXTRA.get(u, {}).items()})
            for u in units}  # fmt: skip


def _layouts(hdl: dict) -> dict:
    """Every hex file's layout, by file name."""
    return {spec.name: spec.layout(hdl[spec.rtl_unit]) for k in KINDS.values()
            for spec in k.files}  # fmt: skip


def _format_entry(fmt) -> dict:
    return {"name": fmt.name, "exp_bits": fmt.exp_bits, "man_bits": fmt.man_bits,
            "width": fmt.width}  # fmt: skip


def _derived(cfg: TileConfig, settings: dict) -> dict:
    """The manifest entries that follow from the configuration and the generator settings."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "project_version": simulator.__version__,
        "config": cfg.to_dict(),
        "formats": {name: _format_entry(value) for name, value in vars(cfg).items()
                    if isinstance(value, FloatFormat)},  # fmt: skip
        "constants": {
            "mx": cfg.mx, "my": cfg.my, "mw": cfg.mw,
            "rescale_constant": float(cfg.rescale_constant),
            "rescale_constant_bits": f"{cfg.rescale_constant_bits:08x}",
        },  # fmt: skip
        "generator": {**settings, "command": f"python -m golden regenerate {MANIFEST} --out DIR"},
        "noise": {"kind": cfg.noise, "amplitude": cfg.noise_amplitude, "seed": cfg.seed,
                  "streams": "tile layer l draws noise stream l (batch offset 0)"},
        "hdl_parameters": _hdl_parameters(cfg, settings),
    }  # fmt: skip


# ---- the destination -------------------------------------------------------------------


class _Destination:
    """The checked, locked destination of one set: a temporary sibling directory made before
    any work and renamed onto ``out`` by :meth:`commit`; on any failure everything it made
    (the temporary directory, missing parents, the lock file) is removed."""

    def __init__(self, out: Path, force: bool):
        self.out, self.force = out, force
        self.tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        self.lock_path = out.parent / f".{out.name}.lock"
        self._fd = None
        self._made: list[Path] = []
        self._committed = False

    def _fail(self, problem: str) -> DestinationError:
        return DestinationError(f"{self.out}: {problem}")

    def _check_target(self) -> None:
        if self.out.is_symlink() or (self.out.exists() and not self.out.is_dir()):
            raise self._fail("exists and is not a directory")
        if self.out.exists() and not self.force:
            raise self._fail("exists; choose a new directory or pass --force to replace it")

    def __enter__(self) -> Path:
        self._check_target()
        missing = []
        for parent in (self.out.parent, *self.out.parent.parents):
            if parent.exists() or parent.is_symlink():
                if not parent.is_dir():
                    raise self._fail(f"{parent} is not a directory")
                break
            missing.append(parent)
        try:
            for parent in reversed(missing):
                parent.mkdir()
                self._made.append(parent)
            self._lock()
            self._check_target()  # another run may have finished it while we waited
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp.mkdir()
        except DestinationError:
            self.__exit__(None, None, None)
            raise
        except OSError as exc:
            self.__exit__(None, None, None)
            raise self._fail(f"cannot create or write {exc.filename or self.out.parent}: "
                             f"{exc.strerror or exc}") from None  # fmt: skip
        return self.tmp

    def _lock(self) -> None:
        fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The file may have been unlinked by its previous holder after we opened it.
            if os.fstat(fd).st_ino != os.stat(self.lock_path).st_ino:
                raise BlockingIOError(errno.EAGAIN, "lock file replaced")
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            raise self._fail(f"another run is writing this set (lock {self.lock_path})") from None
        self._fd = fd

    def commit(self) -> None:
        """Move the finished temporary directory onto ``out`` (replacing it under force)."""
        try:
            if self.out.exists():
                self._check_target()
                old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
                self.out.rename(old)
                try:
                    self.tmp.rename(self.out)
                except OSError:
                    old.rename(self.out)  # put the replaced set back
                    raise
                shutil.rmtree(old)
            else:
                self.tmp.rename(self.out)
        except OSError as exc:
            raise self._fail(f"cannot move the set into place: {exc.strerror or exc}") from None
        self._committed = True

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self._fd is not None:
            os.unlink(self.lock_path)
            os.close(self._fd)
            self._fd = None
        if not self._committed:
            for parent in reversed(self._made):
                try:
                    parent.rmdir()
                except OSError:
                    break


# ---- size guard ------------------------------------------------------------------------


def _available_memory() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable``; physical otherwise)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _check_size(cfg: TileConfig, settings: dict, where: Path) -> None:
    """Refuse up front a set whose generation cannot fit in memory or whose files the disk
    at ``where`` cannot hold, with both figures."""
    counts, lanes = settings["counts"], settings["lanes"]
    memory = sum(counts[name] * k.memory_per_transaction(cfg, lanes) for name, k in KINDS.items())
    layouts = _layouts(_hdl_parameters(cfg, settings))
    # At most one line per random transaction in every file, plus about 4 bytes per field
    # element in vectors.npz.
    disk = sum(counts[name] * (layouts[s.name].digits + 1 + 4 * sum(
        f.count for f in layouts[s.name].fields)) for name, k in KINDS.items() for s in k.files)
    available, free = _available_memory(), shutil.disk_usage(where).free
    what = ", ".join(f"{_COUNT_ARGS.get(n, n)}={c}" for n, c in counts.items())
    if memory > available:
        raise ValueError(f"{what} needs about {memory / 1e9:.3g} GB of memory to generate; "
                         f"{available / 1e9:.3g} GB is available")  # fmt: skip
    if disk > free:
        raise ValueError(f"{what} needs about {disk / 1e9:.3g} GB of disk in {where.parent}; "
                         f"{free / 1e9:.3g} GB is free")  # fmt: skip


# ---- generating ------------------------------------------------------------------------


def _build(cfg: TileConfig, settings: dict, show_progress: bool) -> dict:
    """Every kind's transactions, kind ``i`` from random stream ``i`` of the stimulus seed."""
    streams = np.random.SeedSequence(settings["seed"]).spawn(len(KINDS))
    sets = {}
    for stream, (name, k) in zip(streams, KINDS.items(), strict=True):
        rng = np.random.Generator(np.random.PCG64(stream))
        count = settings["counts"][name]
        sets[name] = k.build(cfg, rng, count, settings, _Progress(name, count, show_progress))
    return sets


def generate(cfg: TileConfig, out, *, seed: int = 0, count: int = 1000,
             input_count: int | None = None, tile_count: int | None = None,
             lanes: int = DEFAULT_LANES, p: int | None = None, force: bool = False,
             progress: bool = True, counts: dict | None = None) -> Path:  # fmt: skip
    """Generate a vector set for ``cfg`` into the directory ``out``.

    Parameters
    ----------
    cfg : TileConfig
        The tile; ``cfg.seed`` is the analog noise seed.
    out : path-like
        Directory to create (it must not exist unless ``force``).
    seed : int
        Seed of the random stimulus (independent of the noise seed).
    count : int
        Random output-unit beats (whole rows of T beats: the count is rounded up).
    input_count : int, optional
        Random input-unit vectors (default ``count``; one vector is n elements).
    tile_count : int, optional
        End-to-end beats: whole layers are added until there are at least this many
        (default ``count``).
    lanes : int
        ``LANES`` of the output unit (1 to 256).
    p : int, optional
        ``P`` of the input unit (must divide n; default :func:`default_beat_elements`).
    force : bool
        Replace an existing ``out``.
    progress : bool
        Show a progress bar on stderr for long runs.
    counts : dict, optional
        Random-transaction counts by kind name (any kind of :data:`golden.kinds.KINDS`),
        overriding the ones above; a kind given nowhere takes ``count``.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        A setting out of range, or a set that would not fit in memory or on disk (with the
        figures), before any work.
    DestinationError
        ``out`` cannot be written (a file, an unwritable place, another run writing it),
        before any work.
    """
    if not isinstance(cfg, TileConfig):
        raise TypeError(f"cfg must be a TileConfig, got {type(cfg).__name__}")
    unknown = sorted(set(counts or {}) - set(KINDS))
    if unknown:
        raise ValueError(f"counts names unknown kinds {unknown}; known: {sorted(KINDS)}")
    given = {"input": input_count, "tile": tile_count, **(counts or {})}
    settings = {
        "seed": seed,
        "counts": {name: count if given.get(name) is None else given[name] for name in KINDS},
        "lanes": lanes,
        "p": default_beat_elements(cfg.n) if p is None else p,
    }
    _check_settings(cfg, settings)
    return _write_set(cfg, settings, Path(out), force, progress, None)


def _write_set(cfg, settings, out: Path, force, progress, expected: dict | None) -> Path:
    """Build and write the set; with ``expected`` (a manifest), refuse any difference."""
    hdl = _hdl_parameters(cfg, settings)  # refuses parameters the RTL cannot take
    dest = _Destination(out, force)
    with dest as tmp:
        _check_size(cfg, settings, tmp)
        # The sets come from many small model calls, for which waking the kernels' thread
        # pool costs more than it saves; results do not depend on the thread count.
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            sets = _build(cfg, settings, progress)
        finally:
            numba.set_num_threads(threads)
        manifest = _write_files(tmp, cfg, sets, settings, hdl)
        if expected is not None:
            _compare(manifest, expected, out)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        dest.commit()
    return out


def _write_files(tmp, cfg, sets, settings, hdl) -> dict:
    files, units, arrays = {}, {}, {}
    layouts = _layouts(hdl)
    for name, k in KINDS.items():
        unit_set = sets[name]
        for spec in k.files:
            layout = layouts[spec.name]
            values = unit_set.files[spec.role]
            (tmp / spec.name).write_bytes(layout.pack(values))
            rows = len(next(iter(values.values())))
            files[spec.name] = {"sha256": _sha256(tmp / spec.name), "lines": rows,
                                "layout": layout.to_dict()}  # fmt: skip
            for field_name, arr in values.items():
                f = layout.field(field_name)
                dtype = np.int32 if f.signed else np.uint32
                arrays[f"{name}/{spec.role}/{field_name}"] = np.asarray(arr).astype(dtype)
        units[name] = {"files": {s.role: s.name for s in k.files}, "cases": unit_set.cases,
                       **unit_set.details,
                       **{c: files[k.file(role).name]["lines"] for c, role in k.counts.items()}}
    _write_npz(tmp / NPZ, arrays)
    files[NPZ] = {"sha256": _sha256(tmp / NPZ), "arrays": sorted(arrays)}
    for fname in files:
        files[fname]["bytes"] = (tmp / fname).stat().st_size
    manifest = {**_derived(cfg, settings), "numpy_version": np.__version__, "units": units,
                "files": files}  # fmt: skip
    manifest["digest"] = manifest_digest(manifest)
    return manifest


def _compare(built: dict, expected: dict, out: Path) -> None:
    """Refuse a regenerated set that differs from the manifest it was made from."""
    differ = sorted(f for f in set(built["files"]) | set(expected["files"])
                    if built["files"].get(f, {}).get("sha256")
                    != expected["files"].get(f, {}).get("sha256"))  # fmt: skip
    if differ:
        raise SetError(f"{out}: the regenerated {', '.join(differ)} differ from the manifest's "
                       f"SHA-256; the set was not made by these settings and this version")
    if built["digest"] != expected["digest"]:
        keys = sorted(k for k in set(built) | set(expected) if k != "digest"
                      and built.get(k) != expected.get(k))  # fmt: skip
        raise SetError(f"{out}: the regenerated manifest differs from the given one in "
                       f"{keys or ['digest']}")  # fmt: skip


# ---- reading ---------------------------------------------------------------------------


@dataclass
class VectorSet:
    """A loaded, verified vector set.

    Attributes
    ----------
    path : pathlib.Path
    manifest : dict
    config : TileConfig
    arrays : dict
        ``"<kind>/<role>/<field>"`` to (rows, count) int32/uint32 arrays (``vectors.npz``).
    """

    path: Path
    manifest: dict
    config: TileConfig
    arrays: dict

    def file(self, unit: str, role: str) -> Path:
        """Path of a kind's vector file (``unit`` input/output/tile, ``role`` e.g. stimulus)."""
        return self.path / self.manifest["units"][unit]["files"][role]

    def layout(self, fname: str) -> lay.Layout:
        """The layout of a hex file, rebuilt from the manifest."""
        fields = self.manifest["files"][fname]["layout"]["fields"]
        return lay.Layout(*[(f["name"], f["width"], f["count"], f["signed"]) for f in fields])


_REQUIRED = {"format": str, "format_version": int, "project_version": str, "config": dict,
             "generator": dict, "hdl_parameters": dict, "units": dict, "files": dict,
             "digest": str}  # fmt: skip


def _field(mpath: Path, data, keys: tuple, kind: type):
    """``data[keys[0]][keys[1]]...``, refusing a missing or mistyped field (named a.b.c)."""
    value = data
    path = ".".join(keys)
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            at = ".".join(keys[:depth + 1])
            raise SetError(f"{mpath}: malformed manifest, field {at} is missing")
        value = value[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SetError(f"{mpath}: malformed manifest, field {path} must be a {kind.__name__}, "
                       f"got {value!r}")  # fmt: skip
    return value


def _first_difference(got, want, path: str) -> str | None:
    """The dotted path of the first place two JSON values differ, or None."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want), key=str):
            if key not in got or key not in want:
                return f"{path}.{key}"
            found = _first_difference(got[key], want[key], f"{path}.{key}")
            if found:
                return found
        return None
    if type(got) is not type(want) or got != want:
        return path
    return None


def _verify_manifest(mpath: Path, manifest) -> tuple[TileConfig, dict]:
    """Check a manifest against everything its configuration and settings determine."""
    if not isinstance(manifest, dict):
        raise SetError(f"{mpath}: malformed manifest, not a JSON object")
    for key, kind in _REQUIRED.items():
        if key not in manifest:
            raise SetError(f"{mpath}: incomplete manifest, missing {key!r}")
        _field(mpath, manifest, (key,), kind)
    if manifest["format"] != FORMAT or manifest["format_version"] != FORMAT_VERSION:
        raise SetError(f"{mpath}: format {manifest['format']!r} v{manifest['format_version']}"
                       f" is not {FORMAT!r} v{FORMAT_VERSION}")  # fmt: skip
    try:
        cfg = TileConfig.from_dict(manifest["config"])
    except (TypeError, ValueError) as exc:
        raise SetError(f"{mpath}: manifest field config is not a valid TileConfig: {exc}") from None
    settings = {
        "seed": _field(mpath, manifest, ("generator", "seed"), int),
        "counts": {name: _field(mpath, manifest, ("generator", "counts", name), int)
                   for name in KINDS},
        "lanes": _field(mpath, manifest, ("generator", "lanes"), int),
        "p": _field(mpath, manifest, ("generator", "p"), int),
    }  # fmt: skip
    try:
        _check_settings(cfg, settings)
        derived = _derived(cfg, settings)
    except ValueError as exc:
        raise SetError(f"{mpath}: manifest field generator: {exc}") from None
    for key, want in derived.items():
        where = _first_difference(manifest.get(key), want, key)
        if where:
            raise SetError(f"{mpath}: manifest field {where} does not match what the "
                           f"configuration and generator settings give")  # fmt: skip
    layouts = _layouts(derived["hdl_parameters"])
    names = {*layouts, NPZ}
    if set(manifest["files"]) != names:
        missing, extra = sorted(names - set(manifest["files"])), sorted(set(manifest["files"])
                                                                        - names)  # fmt: skip
        raise SetError(f"{mpath}: incomplete manifest, no entry for {missing}" if missing else
                       f"{mpath}: manifest lists unknown files {extra}")  # fmt: skip
    for fname, layout in layouts.items():
        lines = _field(mpath, manifest, ("files", fname, "lines"), int)
        size = _field(mpath, manifest, ("files", fname, "bytes"), int)
        _field(mpath, manifest, ("files", fname, "sha256"), str)
        if _first_difference(manifest["files"][fname].get("layout"), layout.to_dict(), ""):
            raise SetError(f"{mpath}: manifest field files.{fname}.layout does not match the "
                           f"layout of the HDL parameters")  # fmt: skip
        if size != lines * (layout.digits + 1):
            raise SetError(f"{mpath}: manifest field files.{fname}: {lines} lines of "
                           f"{layout.digits} digits are not {size} bytes")  # fmt: skip
    arrays = sorted(f"{name}/{s.role}/{f.name}" for name, k in KINDS.items() for s in k.files
                    for f in layouts[s.name].fields)  # fmt: skip
    if manifest["files"][NPZ].get("arrays") != arrays:
        raise SetError(f"{mpath}: manifest field files.{NPZ}.arrays is not {arrays}")
    for name, k in KINDS.items():
        files = _field(mpath, manifest, ("units", name, "files"), dict)
        if files != {s.role: s.name for s in k.files}:
            raise SetError(f"{mpath}: manifest field units.{name}.files does not name the "
                           f"files of kind {name!r}")  # fmt: skip
        _field(mpath, manifest, ("units", name, "cases"), dict)
        for count, role in k.counts.items():
            lines = manifest["files"][k.file(role).name]["lines"]
            if _field(mpath, manifest, ("units", name, count), int) != lines:
                raise SetError(f"{mpath}: manifest field units.{name}.{count} is not the "
                               f"{lines} lines of {k.file(role).name}")  # fmt: skip
    if manifest["digest"] != manifest_digest(manifest):
        raise SetError(f"{mpath}: manifest digest does not match its content (the manifest "
                       f"was edited)")  # fmt: skip
    return cfg, settings


def _manifest_path(path) -> Path:
    path = Path(path)
    return path / MANIFEST if path.is_dir() or not path.suffix else path


def read_manifest(path) -> dict:
    """The verified manifest of the set at ``path`` (a directory or its manifest).

    Raises
    ------
    SetError
        If it is missing, not JSON, lacks or mistypes a field, its digest does not match, or
        a derivable entry differs from what its configuration and settings give (the message
        names the field).
    """
    return _read_verified(path)[0]


def _read_verified(path) -> tuple[dict, TileConfig, dict]:
    """The manifest at ``path``, its configuration and its generator settings, verified."""
    mpath = _manifest_path(path)
    if not mpath.is_file():
        raise SetError(f"{mpath}: no manifest; {mpath.parent} is not a complete vector set")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SetError(f"{mpath}: manifest is not valid JSON ({exc})") from None
    return (manifest, *_verify_manifest(mpath, manifest))


def load(path) -> VectorSet:
    """Load a vector set, verifying its manifest and every file.

    Parameters
    ----------
    path : path-like
        The set's directory (or its ``manifest.json``).

    Returns
    -------
    VectorSet

    Raises
    ------
    SetError
        If the manifest fails :func:`read_manifest`, or a file is missing or does not match
        its SHA-256, size or line count (the message names the file).
    """
    manifest = read_manifest(path)
    root = _manifest_path(path).parent
    for fname, entry in sorted(manifest["files"].items()):
        fpath = root / fname
        if not fpath.is_file():
            raise SetError(f"{fpath}: listed in the manifest but missing")
        digest = _sha256(fpath)
        if digest != entry["sha256"]:
            raise SetError(f"{fpath}: SHA-256 {digest} does not match the manifest's "
                           f"{entry['sha256']}")  # fmt: skip
    with np.load(root / NPZ, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for key, arr in arrays.items():
        name, role, field_name = key.split("/")
        fname = KINDS[name].file(role).name
        fields = {f["name"]: f["count"] for f in manifest["files"][fname]["layout"]["fields"]}
        want = (manifest["files"][fname]["lines"], fields[field_name])
        if arr.shape != want:
            raise SetError(f"{root / NPZ}: {key} has shape {arr.shape}, the manifest gives "
                           f"{want}")  # fmt: skip
    return VectorSet(root, manifest, TileConfig.from_dict(manifest["config"]), arrays)


def regenerate(manifest_path, out, *, force: bool = False, progress: bool = True) -> Path:
    """Regenerate the set a manifest describes into ``out`` and verify it is the same set.

    Raises
    ------
    SetError
        If the manifest is malformed, or any regenerated file or manifest entry differs from
        the given manifest (nothing is left at ``out`` then).
    DestinationError
        If ``out`` cannot be written.
    """
    manifest, cfg, settings = _read_verified(manifest_path)
    return _write_set(cfg, settings, Path(out), force, progress, manifest)
