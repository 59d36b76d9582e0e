"""pytest wrappers: the end-to-end tile cosimulation on Icarus and Verilator.

Each build (one per tile width and bit set) runs every gain and noise kind, so every value of
every axis (n in {8, 32, 128}; bits 6/6/8, 8/8/8, 10/7/11; G in {1, 1.86, 8}; noise none,
uniform, gaussian) is checked on both simulators. Icarus runs the full cross product of widths
and bit sets; Verilator, whose builds cost a minute each, one bit set per width.
"""

from __future__ import annotations

import itertools

import pytest
from tile_sim import run_tile

WIDTHS = (8, 32, 128)
BITS = {"6-6-8": (6, 6, 8), "8-8-8": (8, 8, 8), "10-7-11": (10, 7, 11)}
GAINS = (1.0, 1.86, 8.0)
NOISES = ("none", "uniform", "gaussian")
VERILATOR_SETS = ((8, "6-6-8"), (32, "10-7-11"), (128, "8-8-8"))


def _cases(n: int, bits: str) -> list[dict]:
    bx, bw, by = BITS[bits]
    return [
        {"n": n, "bx": bx, "bw": bw, "by": by, "gain": g, "noise": noise}
        for g, noise in itertools.product(GAINS, NOISES)
    ]


def _params():
    for n, bits in itertools.product(WIDTHS, BITS):
        yield pytest.param("icarus", n, bits, id=f"icarus-n{n}-{bits}")
    for n, bits in VERILATOR_SETS:
        yield pytest.param("verilator", n, bits, id=f"verilator-n{n}-{bits}")


@pytest.mark.parametrize(("sim", "n", "bits"), list(_params()))
def test_tile_end_to_end(sim, n, bits):
    per_beat = min(n, 16)
    summary = run_tile(sim, _cases(n, bits), lanes=4, per_beat=per_beat, rows=2, out_rows=8)
    assert summary["outputs_checked"] == 9 * 2 * 8
    assert summary["mismatches"] == 0


def test_tile_wrong_golden_value_fails_with_report():
    """A deliberately wrong expected bit must fail the cosimulation with an actionable report."""
    with pytest.raises(AssertionError) as failure:
        run_tile("icarus", [{}], rows=2, inject=True)
    report = str(failure.value)
    assert "transaction 0 lane 0: expected" in report
    assert "got" in report and "model: tile 0: mac=" in report
