"""Writing, loading and verifying a vector set: hex files, ``vectors.npz`` and the manifest.

A vector set is a directory. It is written whole into a temporary sibling directory that is
renamed into place at the end, so an interrupted run leaves no partial set under the final
name; ``manifest.json`` records the SHA-256 of every other file, and :func:`load` refuses a
set whose manifest is missing or incomplete or whose files do not match it.
"""

from __future__ import annotations

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
from golden.vectors import input_set, output_set, tile_set
from simulator import FloatFormat, TileConfig

__all__ = ["FORMAT", "FORMAT_VERSION", "VectorSet", "generate", "regenerate", "load",
           "read_manifest", "default_beat_elements", "SetError"]  # fmt: skip

FORMAT = "abfp-golden-vectors"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
NPZ = "vectors.npz"
DEFAULT_LANES = 4
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: regeneration is byte-identical
_PROGRESS_MIN = 20000  # transactions from which a run shows a progress bar


class SetError(ValueError):
    """A vector set that is incomplete, malformed or does not match its manifest."""


def default_beat_elements(n: int) -> int:
    """The input unit's default P: the largest divisor of n not above 16."""
    return max(d for d in range(1, min(n, 16) + 1) if n % d == 0)


# The files of each unit: (file name, role, layout builder, HDL parameters of the layout).
_UNIT_FILES = {
    "input": (("input_stimulus.hex", "stimulus", lay.input_stimulus, "input"),
              ("input_expected.hex", "expected", lay.input_expected, "input")),
    "output": (("output_stimulus.hex", "stimulus", lay.output_stimulus, "output"),
               ("output_expected.hex", "expected", lay.output_expected, "output")),
    "tile": (("tile_x.hex", "x", lay.input_stimulus, "input"),
             ("tile_x_expected.hex", "x_expected", lay.input_expected, "input"),
             ("tile_beats.hex", "beats", lay.tile_beats, "output"),
             ("tile_expected.hex", "expected", lay.output_expected, "output")),
}  # fmt: skip


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


def _write_npz(path: Path, arrays: dict) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def _format_entry(fmt) -> dict:
    return {"name": fmt.name, "exp_bits": fmt.exp_bits, "man_bits": fmt.man_bits,
            "width": fmt.width}  # fmt: skip


def _build(cfg, seed, counts, lanes, p, show_progress):
    """The three unit sets, each from its own random stream of ``seed``."""
    streams = np.random.SeedSequence(seed).spawn(3)
    rngs = [np.random.Generator(np.random.PCG64(s)) for s in streams]
    sets = {}
    sets["input"] = input_set(cfg, rngs[0], counts["input"])
    bar = _Progress("output", counts["output"], show_progress)
    sets["output"] = output_set(cfg, rngs[1], counts["output"], lanes, bar)
    bar = _Progress("tile", counts["tile"], show_progress)
    sets["tile"] = tile_set(cfg, rngs[2], counts["tile"], lanes, bar)
    return sets


def generate(cfg: TileConfig, out, *, seed: int = 0, count: int = 1000,
             input_count: int | None = None, tile_count: int | None = None,
             lanes: int = DEFAULT_LANES, p: int | None = None, force: bool = False,
             progress: bool = True) -> Path:  # fmt: skip
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

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    if not isinstance(cfg, TileConfig):
        raise TypeError(f"cfg must be a TileConfig, got {type(cfg).__name__}")
    p = default_beat_elements(cfg.n) if p is None else p
    input_count = count if input_count is None else input_count
    tile_count = count if tile_count is None else tile_count
    for name, value, lo, hi in (("seed", seed, 0, (1 << 63) - 1), ("count", count, 1, 1 << 28),
                                ("input_count", input_count, 1, 1 << 24),
                                ("tile_count", tile_count, 1, 1 << 24),
                                ("lanes", lanes, 1, 256), ("p", p, 1, cfg.n)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {value!r}")
    if cfg.n % p:
        raise ValueError(f"p = {p} must divide n = {cfg.n} (the input unit's beats)")
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; choose a new directory or pass force")
    counts = {"input": input_count, "output": count, "tile": tile_count}
    # The sets come from many small model calls, for which waking the kernels' thread pool
    # costs more than it saves; results do not depend on the thread count (SPEC).
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        sets = _build(cfg, seed, counts, lanes, p, progress)
    finally:
        numba.set_num_threads(threads)
    hdl = {"input": cfg.hdl_parameters("input", P=p),
           "output": cfg.hdl_parameters("output", LANES=lanes)}  # fmt: skip

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        manifest = _write_files(tmp, cfg, sets, hdl, seed, counts, lanes, p)
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        (tmp / MANIFEST).write_text(text)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _write_files(tmp, cfg, sets, hdl, seed, counts, lanes, p) -> dict:
    files, units, arrays = {}, {}, {}
    for unit, specs in _UNIT_FILES.items():
        unit_set = sets[unit]
        unit_files = {}
        for fname, role, builder, hdl_unit in specs:
            layout = builder(hdl[hdl_unit])
            values = unit_set.files[role]
            (tmp / fname).write_bytes(layout.pack(values))
            rows = len(next(iter(values.values())))
            files[fname] = {"sha256": _sha256(tmp / fname), "lines": rows,
                            "layout": layout.to_dict()}  # fmt: skip
            unit_files[role] = fname
            for field_name, arr in values.items():
                f = layout.field(field_name)
                dtype = np.int32 if f.signed else np.uint32
                arrays[f"{unit}/{role}/{field_name}"] = np.asarray(arr).astype(dtype)
        units[unit] = {"files": unit_files, "cases": unit_set.cases, **unit_set.details}
    units["input"]["transactions"] = files["input_stimulus.hex"]["lines"]
    units["output"]["transactions"] = files["output_stimulus.hex"]["lines"]
    units["output"]["outputs"] = files["output_expected.hex"]["lines"]
    units["tile"]["transactions"] = files["tile_beats.hex"]["lines"]
    units["tile"]["vectors"] = files["tile_x.hex"]["lines"]
    units["tile"]["outputs"] = files["tile_expected.hex"]["lines"]
    _write_npz(tmp / NPZ, arrays)
    files[NPZ] = {"sha256": _sha256(tmp / NPZ), "arrays": sorted(arrays)}
    for fname in files:
        files[fname]["bytes"] = (tmp / fname).stat().st_size
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "project_version": simulator.__version__,
        "numpy_version": np.__version__,
        "config": cfg.to_dict(),
        "formats": {name: _format_entry(value) for name, value in vars(cfg).items()
                    if isinstance(value, FloatFormat)},  # fmt: skip
        "constants": {
            "mx": cfg.mx, "my": cfg.my, "mw": cfg.mw,
            "rescale_constant": float(cfg.rescale_constant),
            "rescale_constant_bits": f"{cfg.rescale_constant_bits:08x}",
        },  # fmt: skip
        "generator": {"seed": seed, "counts": counts, "lanes": lanes, "p": p,
                      "command": f"python -m golden regenerate {MANIFEST} --out DIR"},
        "noise": {"kind": cfg.noise, "amplitude": cfg.noise_amplitude, "seed": cfg.seed,
                  "streams": "tile layer l draws noise stream l (batch offset 0)"},
        "hdl_parameters": hdl,
        "units": units,
        "files": files,
    }  # fmt: skip


@dataclass
class VectorSet:
    """A loaded, verified vector set.

    Attributes
    ----------
    path : pathlib.Path
    manifest : dict
    config : TileConfig
    arrays : dict
        ``"<unit>/<role>/<field>"`` to (rows, count) int32/uint32 arrays (``vectors.npz``).
    """

    path: Path
    manifest: dict
    config: TileConfig
    arrays: dict

    def file(self, unit: str, role: str) -> Path:
        """Path of a unit's vector file (``unit`` input/output/tile, ``role`` e.g. stimulus)."""
        return self.path / self.manifest["units"][unit]["files"][role]

    def layout(self, fname: str) -> lay.Layout:
        """The layout of a hex file, rebuilt from the manifest."""
        fields = self.manifest["files"][fname]["layout"]["fields"]
        return lay.Layout(*[(f["name"], f["width"], f["count"], f["signed"]) for f in fields])


_REQUIRED = ("format", "format_version", "project_version", "config", "generator",
             "hdl_parameters", "units", "files")  # fmt: skip


def read_manifest(path) -> dict:
    """The manifest of the set at ``path`` (a directory or its manifest), checked for shape."""
    path = Path(path)
    mpath = path / MANIFEST if path.is_dir() or not path.suffix else path
    if not mpath.is_file():
        raise SetError(f"{mpath}: no manifest; {mpath.parent} is not a complete vector set")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise SetError(f"{mpath}: manifest is not valid JSON ({exc})") from None
    missing = [k for k in _REQUIRED if k not in manifest] if isinstance(manifest, dict) else [
        "(object)"]  # fmt: skip
    if missing:
        raise SetError(f"{mpath}: incomplete manifest, missing {missing}")
    if manifest["format"] != FORMAT or manifest["format_version"] != FORMAT_VERSION:
        raise SetError(f"{mpath}: format {manifest['format']!r} v{manifest['format_version']}"
                       f" is not {FORMAT!r} v{FORMAT_VERSION}")  # fmt: skip
    for unit, specs in _UNIT_FILES.items():
        for fname, *_ in specs:
            if fname not in manifest["files"]:
                raise SetError(f"{mpath}: incomplete manifest, no entry for {fname} ({unit})")
    if NPZ not in manifest["files"]:
        raise SetError(f"{mpath}: incomplete manifest, no entry for {NPZ}")
    return manifest


def load(path) -> VectorSet:
    """Load a vector set, verifying every file against the manifest's SHA-256.

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
        If the manifest is missing or incomplete, or a file is missing or does not match its
        SHA-256 (the message names the file).
    """
    manifest = read_manifest(path)
    root = Path(path) if Path(path).is_dir() else Path(path).parent
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
    return VectorSet(root, manifest, TileConfig.from_dict(manifest["config"]), arrays)


def regenerate(manifest_path, out, *, force: bool = False, progress: bool = True) -> Path:
    """Regenerate the set a manifest describes into ``out`` (byte-identical files)."""
    manifest = read_manifest(manifest_path)
    gen = manifest["generator"]
    counts = gen["counts"]
    return generate(TileConfig.from_dict(manifest["config"]), out, seed=gen["seed"],
                    count=counts["output"], input_count=counts["input"],
                    tile_count=counts["tile"], lanes=gen["lanes"],
                    p=gen["p"], force=force, progress=progress)  # fmt: skip
