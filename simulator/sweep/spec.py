"""A sweep: models x grid of axes x calibration on/off x seeds, from flags or a sweep file.

A sweep file (TOML, or YAML with PyYAML) holds the same as the flags::

    models = ["fmnist-cnn"]        # shipped names or module:function
    seeds = 3                      # seeds first_seed .. first_seed + seeds - 1
    first_seed = 0
    calibrate = [false, true]      # calibration off and on
    criterion = "output"           # simulator.nn.calibrate's criterion
    limit = 200                    # samples evaluated per cell (all if omitted)
    batch_size = 100
    policy = "policy.toml"         # base layer policy (its default is what the grid changes)

    [grid]                         # one list per axis (simulator.sweep.grid.AXES)
    n = [8, 32, 128]
    gain = [1, 2, 4, 8, 16]
    bits = ["6,6,8", "8,8,8"]
    noise = ["uniform:1"]

Flags given on the command line replace the file's value of the same key (an axis flag replaces
that axis). :attr:`SweepSpec.digest` identifies the sweep (everything that changes a result), so
``--resume`` can refuse another sweep's results.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from simulator.nn.calibrate import CRITERIA
from simulator.nn.policy import LayerPolicy, PolicyError
from simulator.sweep.grid import AXES, GridError, axis, config_for

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Cell", "SweepSpec", "load_file"]

_FILE_KEYS = ("models", "seeds", "first_seed", "calibrate", "criterion", "limit", "batch_size",
              "policy", "grid")  # fmt: skip
_SWITCH_WORDS = {"on": True, "off": False, "true": True, "false": False, "yes": True,
                 "no": False, "1": True, "0": False}  # fmt: skip


@dataclass(frozen=True)
class Cell:
    """One unit of work: a model at one grid point, one seed, calibration on or off.

    ``key`` names the cell uniquely within its sweep (``--resume`` skips the keys a results
    file holds); ``fields`` are the ``TileConfig`` fields the grid point sets, ``config`` the
    resulting default configuration as :meth:`TileConfig.to_dict` gives it.
    """

    index: int
    model: str
    axes: dict
    seed: int
    calibrate: bool
    fields: dict
    config: dict

    @property
    def key(self) -> str:
        parts = [self.model, *(f"{k}={v}" for k, v in self.axes.items()),
                 f"calibrate={'on' if self.calibrate else 'off'}", f"seed={self.seed}"]
        return " ".join(parts)


def _switch(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in _SWITCH_WORDS:
        raise GridError(f"{where}: {value!r} is not on/off (true/false)")
    return _SWITCH_WORDS[word]


def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GridError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass
class SweepSpec:
    """What a sweep runs; validated on construction (:class:`GridError` naming the problem).

    Parameters
    ----------
    models : list of str
        Shipped model names (:data:`simulator.nn.models.MODELS`) or ``module:function``.
    grid : dict
        Axis name -> list of values (text or numbers); every combination is a grid point.
    seeds, first_seed : int
        The noise seeds ``first_seed .. first_seed + seeds - 1``.
    calibrate : list of bool
        Calibration states per grid point (``[False]``: never calibrate).
    criterion : str
        :func:`simulator.nn.calibrate` criterion when calibrating.
    limit, batch_size : int, optional
        Samples evaluated per cell (all if None) and samples per forward pass.
    policy : dict, optional
        A base :class:`LayerPolicy` as ``to_dict()`` gives it; the grid changes its default.
    """

    models: list
    grid: dict = field(default_factory=dict)
    seeds: int = 1
    first_seed: int = 0
    calibrate: list = field(default_factory=lambda: [False])
    criterion: str = "output"
    limit: int | None = None
    batch_size: int | None = None
    policy: dict | None = None

    def __post_init__(self):
        from simulator.nn.models import MODELS

        if not self.models:
            raise GridError("empty grid: no model given")
        for name in self.models:
            if ":" not in name and name not in MODELS:
                raise GridError(f"unknown model {name!r}; known models: {', '.join(MODELS)} "
                                "(or module:function)")  # fmt: skip
        if len(set(self.models)) != len(self.models):
            raise GridError(f"a model is given twice in {self.models}")
        self.seeds = _count(self.seeds, "seeds", 1)
        self.first_seed = _count(self.first_seed, "first_seed", 0)
        if self.limit is not None:
            self.limit = _count(self.limit, "limit", 1)
        if self.batch_size is not None:
            self.batch_size = _count(self.batch_size, "batch_size", 1)
        if self.criterion not in CRITERIA:
            raise GridError(f"criterion must be one of {CRITERIA}, got {self.criterion!r}")
        self.calibrate = [_switch(v, "calibrate") for v in self.calibrate]
        if not self.calibrate:
            raise GridError("empty grid: calibrate has no value")
        if len(set(self.calibrate)) != len(self.calibrate):
            raise GridError("calibrate: a state is given twice")
        try:
            self.base_policy = LayerPolicy.from_dict(self.policy or {})
        except PolicyError as exc:
            raise GridError(f"policy: {exc}") from None
        self.policy = self.base_policy.to_dict()
        self._points = self._grid_points()

    def _grid_points(self) -> list[tuple[dict, dict]]:
        """Every grid point as (axis labels, TileConfig fields), each checked by the tile."""
        parsed = {}
        for name, values in self.grid.items():
            ax = axis(name)
            if ax.name in parsed:
                raise GridError(f"axis {ax.name} is given twice")
            values = list(values) if isinstance(values, (list, tuple)) else [values]
            if not values:
                raise GridError(f"empty grid: axis {ax.name} has no value")
            labelled = [ax.parse(v) for v in values]
            labels = [label for label, _ in labelled]
            repeated = sorted({x for x in labels if labels.count(x) > 1})
            if repeated:
                raise GridError(f"axis {ax.name}: value(s) {repeated} given twice")
            parsed[ax.name] = labelled
        self.grid = {name: [label for label, _ in values] for name, values in parsed.items()}
        self._check_overlap(parsed)
        points = []
        for combo in itertools.product(*parsed.values()):
            labels = dict(zip(parsed, (label for label, _ in combo), strict=True))
            fields = {k: v for _, f in combo for k, v in f.items()}
            where = "grid point " + " ".join(f"{k}={v}" for k, v in labels.items())
            config_for(self.base_policy.default, fields, where)
            points.append((labels, fields))
        return points

    @staticmethod
    def _check_overlap(parsed: dict) -> None:
        owners = {}
        for name, values in parsed.items():
            for tile_field in {k for _, f in values for k in f}:
                if tile_field in owners:
                    raise GridError(f"axes {owners[tile_field]} and {name} both set "
                                    f"TileConfig.{tile_field}")  # fmt: skip
                owners[tile_field] = name

    # ---- what the sweep runs -----------------------------------------------------------
    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def cells(self) -> list[Cell]:
        """Every cell, in a fixed order: model, grid point, calibration, seed."""
        out = []
        for model in self.models:
            for labels, fields in self._points:
                config = config_for(self.base_policy.default, fields, model).to_dict()
                for state in self.calibrate:
                    for seed in self.seed_list:
                        out.append(Cell(len(out), model, labels, seed, state, fields, config))
        return out

    def shape(self) -> str:
        """The grid's size as a product (``1 model x 3 n x 5 gain x 2 calibrate x 3 seeds``)."""
        parts = [f"{len(self.models)} model(s)"]
        parts += [f"{len(v)} {k}" for k, v in self.grid.items()]
        parts += [f"{len(self.calibrate)} calibrate", f"{self.seeds} seed(s)"]
        return " x ".join(parts)

    def to_dict(self) -> dict:
        return {"models": list(self.models), "grid": self.grid, "seeds": self.seeds,
                "first_seed": self.first_seed, "calibrate": self.calibrate,
                "criterion": self.criterion, "limit": self.limit,
                "batch_size": self.batch_size, "policy": self.policy}  # fmt: skip

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_dict`: the sweep's identity."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def load_file(path) -> dict:
    """The keys of a sweep file (``.toml``, ``.yaml``/``.yml``), checked against the known ones;
    ``policy`` (a path, relative to the file) is read into its dict form."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GridError(f"sweep file {path}: {exc.strerror or exc}") from None
    try:
        if suffix == ".toml":
            data = tomllib.loads(raw.decode())
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(raw) or {}
        else:
            raise GridError(f"sweep file {path}: must end in .toml, .yaml or .yml")
    except GridError:
        raise
    except Exception as exc:  # the parsers' own errors: TOMLDecodeError, YAMLError
        raise GridError(f"sweep file {path}: not valid {suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise GridError(f"sweep file {path}: must be a table of keys")
    unknown = sorted(set(data) - set(_FILE_KEYS))
    if unknown:
        raise GridError(f"sweep file {path}: unknown key(s) {unknown}; known: {list(_FILE_KEYS)}"
                        f" (axes go under [grid]: {', '.join(AXES)})")  # fmt: skip
    if "grid" in data and not isinstance(data["grid"], dict):
        raise GridError(f"sweep file {path}: grid must be a table of axis = [values]")
    for name in data.get("grid", {}):
        try:
            axis(name)
        except GridError as exc:
            raise GridError(f"sweep file {path}: {exc}") from None
    if isinstance(data.get("models"), str):
        data["models"] = [data["models"]]
    if isinstance(data.get("calibrate"), (bool, str)):
        data["calibrate"] = [data["calibrate"]]
    if "policy" in data:
        policy_path = path.parent / str(data["policy"])
        try:
            data["policy"] = LayerPolicy.load(policy_path).to_dict()
        except PolicyError as exc:
            raise GridError(f"sweep file {path}: {exc}") from None
    return data
