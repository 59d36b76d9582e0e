"""What every vector-set kind is made of: the :class:`Kind` record, its files, the built
transactions (:class:`UnitSet`) and the output-unit beat helpers shared by the kinds that
drive ``abfp_output_unit``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from golden.layout import Layout
from golden.values import bits_of
from simulator import TileConfig

__all__ = ["FileSpec", "Kind", "UnitSet", "assemble", "concat", "Groups", "as_groups", "beats"]

RANDOM = "random"


@dataclass(frozen=True)
class FileSpec:
    """One ``$readmemh`` file of a kind.

    Attributes
    ----------
    name : str
        File name in the set (``input_stimulus.hex``).
    role : str
        Its key in :attr:`UnitSet.files` and the manifest (``stimulus``, ``expected``, ...).
    layout : callable
        ``hdl_parameters -> Layout`` of its lines.
    rtl_unit : str
        The RTL unit (``simulator.hdl``) whose Verilog parameters define the layout.
    """

    name: str
    role: str
    layout: Callable[[dict], Layout]
    rtl_unit: str


@dataclass(frozen=True)
class Kind:
    """A kind of vector set: how it is built, its files, and how its bench runs it.

    Attributes
    ----------
    name : str
        Key of the kind in the manifest and on the command line (``input``).
    build : callable
        ``(cfg, rng, count, generator, progress) -> UnitSet``; ``generator`` holds the
        generator settings (``lanes``, ``p``), ``progress(done)`` is called as it goes.
    files : tuple of FileSpec
    counts : mapping
        Manifest count (``transactions``, ``outputs``, ...) to the file role whose lines it is.
    max_count : int
        Largest random-transaction count the generator accepts.
    memory_per_transaction : callable
        ``(cfg, lanes) -> int``: peak bytes the generator holds per random transaction (an
        estimate from measurement, used to refuse sets that cannot fit).
    bench_top : str
        Top module of the kind's bench (``golden/hdl/<bench_top>.v``).
    rtl_units : tuple of str
        The RTL units the bench instantiates: their sources and Verilog parameters.
    rescale_constant : bool
        Whether the bench takes ``K_BITS`` (``k_i`` of the output unit).
    depths : mapping
        Bench memory-depth parameter (``MAX_TRANSACTIONS``) to the count it must hold.
    file_plusargs : mapping
        Plusarg (``STIMULUS``) to the file role it names.
    count_plusargs : mapping
        Plusarg (``TRANSACTIONS``) to the count it carries.
    """

    name: str
    build: Callable
    files: tuple[FileSpec, ...]
    counts: Mapping[str, str]
    max_count: int
    memory_per_transaction: Callable[[TileConfig, int], int]
    bench_top: str
    rtl_units: tuple[str, ...]
    rescale_constant: bool
    depths: Mapping[str, str]
    file_plusargs: Mapping[str, str]
    count_plusargs: Mapping[str, str]

    def file(self, role: str) -> FileSpec:
        for spec in self.files:
            if spec.role == role:
                return spec
        raise KeyError(f"kind {self.name!r} has no file role {role!r}")


@dataclass
class UnitSet:
    """The transactions of one kind: arrays per vector file and the directed case ranges.

    Attributes
    ----------
    files : dict
        File role (e.g. ``"stimulus"``) to field name to (rows, count) integer array.
    cases : dict
        Case name to ``[first, stop)`` transaction range of the set's primary file.
    details : dict
        Further facts for the manifest (e.g. the tile set's layer shapes and noise streams).
    """

    files: dict = field(default_factory=dict)
    cases: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)


def assemble(random_rows, directed, expected_fn, field_name: str, role: str) -> UnitSet:
    """Random rows then each directed block, with the case ranges and expected values."""
    stimulus = np.concatenate([random_rows] + [block for _, block in directed])
    out = UnitSet()
    out.files[role] = {field_name: stimulus}
    out.cases[RANDOM] = [0, len(random_rows)]
    start = len(random_rows)
    for name, block in directed:
        out.cases[name] = [start, start + len(block)]
        start += len(block)
    out.files["expected"] = expected_fn(stimulus)
    return out


def concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclass
class Groups:
    """Rows of T beats: ``qy`` (G, T, L), ``sw`` (G, T, L), ``sx`` (G, T) as float32 values."""

    qy: np.ndarray
    sw: np.ndarray
    sx: np.ndarray


def as_groups(qy, sx, sw, lanes: int) -> Groups:
    """``rescale_accumulate`` inputs (B, N, T), (B, T), (N, T) as rows in (b, lane group) order."""
    nb, ni, nt = qy.shape
    ng = ni // lanes
    return Groups(
        qy.reshape(nb, ng, lanes, nt).transpose(0, 1, 3, 2).reshape(nb * ng, nt, lanes),
        np.broadcast_to(sw.reshape(ng, lanes, nt).transpose(0, 2, 1), (nb, ng, nt, lanes)).reshape(
            nb * ng, nt, lanes
        ),
        np.broadcast_to(sx[:, None, :], (nb, ng, nt)).reshape(nb * ng, nt),
    )


def beats(cfg: TileConfig, groups: Groups) -> dict:
    """The output unit's beats of the rows, row after row, tile after tile."""
    ng, nt, lanes = groups.qy.shape
    j = np.tile(np.arange(nt), ng)
    return {
        "qy": groups.qy.reshape(-1, lanes).astype(np.int64),
        "sw": bits_of(groups.sw.reshape(-1, lanes), cfg.scale_fmt),
        "sx": bits_of(groups.sx.reshape(-1), cfg.scale_fmt)[:, None],
        "first": (j == 0).astype(np.int64)[:, None],
        "last": (j == nt - 1).astype(np.int64)[:, None],
    }
