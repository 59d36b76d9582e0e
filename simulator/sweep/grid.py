"""The axes a sweep can vary: one entry per sweepable ``TileConfig`` field or knob.

:data:`AXES` maps an axis name to an :class:`Axis`: how a value is written on the command line or
in a sweep file (``parse``), the ``TileConfig`` fields it sets (``fields``) and its label in
results and plots. Every ``TileConfig`` field but ``seed`` (the noise seed is a sweep dimension
of its own) is an axis under its own name, plus two composite knobs:

- ``bits``: ``BX,BW,BY`` (``6,6,8``), the DAC, weight and ADC bits together;
- ``noise``: ``KIND[:AMPLITUDE]`` (``uniform:1``, ``gaussian:0.5``, ``none``), the noise kind
  and its amplitude together.

Calibration on/off is a dimension of every sweep (:mod:`simulator.sweep.spec`), not an axis.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from simulator.config import TileConfig
from simulator.formats import FloatFormat
from simulator.nn.cli import bits, noise

__all__ = ["AXES", "Axis", "GridError", "axis", "config_for", "number_text"]


class GridError(ValueError):
    """A sweep axis or value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Axis:
    """One sweepable dimension.

    Attributes
    ----------
    name : str
        Its name in sweep files, results and ``--<name>`` (underscores as dashes).
    help : str
        What a value looks like.
    to_fields : callable
        ``to_fields(value) -> dict`` of ``TileConfig`` fields; raises ValueError or
        ``argparse.ArgumentTypeError`` for a bad value.
    """

    name: str
    help: str
    to_fields: Callable[[str], dict]
    label: Callable[[dict], str]

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value) -> tuple[str, dict]:
        """``(label, fields)`` of one value (text or a number from a sweep file); the label is
        canonical, so ``1`` and ``1.0`` of a real axis are the same value."""
        text = str(value).strip()
        try:
            fields = self.to_fields(text)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise GridError(f"{self.name}: bad value {text!r}: {exc}") from None
        return self.label(fields), fields


def number_text(value) -> str:
    """Shortest text of a number that reads back as the same number (``1``, ``0.5``)."""
    short = format(value, "g")
    return short if type(value)(float(short)) == value else repr(value)


def _single(name: str) -> Callable[[dict], str]:
    def label(fields: dict) -> str:
        value = fields[name]
        return value if isinstance(value, str) else number_text(value)

    return label


def _bits_label(fields: dict) -> str:
    return ",".join(str(fields[k]) for k in ("bx", "bw", "by"))


def _noise_label(fields: dict) -> str:
    if fields["noise"] == "none":
        return "none"
    return f"{fields['noise']}:{number_text(fields['noise_amplitude'])}"


def _number(kind: type, name: str) -> Callable[[str], dict]:
    def convert(text: str) -> dict:
        value = kind(float(text)) if kind is float else int(text, 0)
        return {name: value}

    return convert


def _format(name: str) -> Callable[[str], dict]:
    return lambda text: {name: FloatFormat.parse(text).name}


def _field_axis(field: dataclasses.Field) -> Axis:
    default = field.default
    if isinstance(default, FloatFormat):
        kind, convert = "a format name: bf16, fp16, fp32, e<E>m<M>", _format(field.name)
    elif isinstance(default, float):
        kind, convert = "a real number", _number(float, field.name)
    else:
        kind, convert = "an integer", _number(int, field.name)
    return Axis(field.name, kind, convert, _single(field.name))


_COMPOSITES = (
    Axis("bits", "BX,BW,BY (DAC, weight, ADC bits), e.g. 6,6,8", bits, _bits_label),
    Axis("noise", "KIND[:AMPLITUDE] in ADC LSB: uniform:1, gaussian:0.5, none", noise,
         _noise_label),
)
# "noise" (the kind) is covered by the composite axis of the same name; "seed" is per run.
AXES: dict[str, Axis] = {
    **{f.name: _field_axis(f) for f in dataclasses.fields(TileConfig)
       if f.name not in ("seed", "noise")},
    **{a.name: a for a in _COMPOSITES},
}  # fmt: skip


def axis(name: str) -> Axis:
    """The axis ``name`` (dashes accepted for underscores); GridError lists the known ones."""
    try:
        return AXES[name.replace("-", "_")]
    except KeyError:
        raise GridError(f"unknown sweep axis {name!r}; known: {', '.join(AXES)}") from None


def config_for(base: TileConfig, fields: dict, where: str) -> TileConfig:
    """``base`` with ``fields`` set, or GridError naming ``where`` and what the tile refuses."""
    try:
        return dataclasses.replace(base, **fields)
    except (TypeError, ValueError) as exc:
        raise GridError(f"{where}: {exc}") from None
