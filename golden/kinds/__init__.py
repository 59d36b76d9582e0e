"""The registry of vector-set kinds: what :func:`golden.generate` builds and
:mod:`golden.simulate` runs.

Each kind lives in its own module (builder, files and layouts, bench top, bench parameters,
plusargs and counts as one :class:`~golden.kinds.common.Kind`) and is registered here once.
The random stream of a kind is child ``i`` of the stimulus seed's ``SeedSequence``, ``i``
its position in :data:`KINDS`, so a kind added at the end leaves earlier kinds' vectors as
they were.
"""

from __future__ import annotations

from golden.kinds import input_unit, output_unit, tile, tile_ctrl
from golden.kinds.common import FileSpec, Kind, UnitSet

__all__ = ["KINDS", "FileSpec", "Kind", "UnitSet", "kind", "RTL_EXTRA"]

KINDS: dict[str, Kind] = {
    k.name: k for k in (input_unit.KIND, output_unit.KIND, tile.KIND, tile_ctrl.KIND)
}

# The RTL units' non-tile Verilog parameters, as generator settings: unit -> {param: setting}.
RTL_EXTRA = {"input": {"P": "p"}, "output": {"LANES": "lanes"},
             "tile": {"P": "p", "LANES": "lanes"}}  # fmt: skip


def kind(name: str) -> Kind:
    """The registered kind ``name``, or a ``ValueError`` listing the known ones."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown vector-set kind {name!r}; known: {sorted(KINDS)}") from None
