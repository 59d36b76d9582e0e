"""pytest wrappers: ``abfp_tile`` whole products, outputs and handshake cycles exact.

Two builds on Icarus (8-bit converters with two ADC beats per group and 3-row products; 6-bit
DAC and weights with fp16 scales and outputs, one ADC per row, one beat per vector) and the
first on Verilator, whose builds are slow: it is the build ``make sim`` runs too. Each build
runs several products: ragged and whole last tiles, T = 1, one and several groups, array
latencies 2 to 6, no stalls and random x idles with y back-pressure.
"""

from __future__ import annotations

import pytest
from harness import CocotbFailure
from tile_ctrl_sim import DEFAULT_HDL, run_abfp_tile

from simulator import TileConfig

SMALL_HDL = {"P": 16, "LANES": 2, "ADC_SHARE": 1, "TILE_BITS": 1, "GROUP_BITS": 3,
             "ROW_BITS": 4}  # fmt: skip
SMALL_CFG = {"n": 16, "bx": 6, "bw": 6, "by": 8, "scale_fmt": "fp16", "out_fmt": "fp16"}


def _case(cfg, rows, k, n_out, latency, stall, seed):
    return {"cfg": cfg, "rows": rows, "k": k, "n_out": n_out, "latency": latency,
            "stall": stall, "seed": seed}  # fmt: skip


BUILDS = {
    "default": (DEFAULT_HDL, [
        _case({"n": 8}, 2, 30, 16, 2, 0.0, 1),
        _case({"n": 8, "gain": 8.0, "noise": "gaussian"}, 3, 20, 8, 5, 0.3, 2),
        _case({"n": 8, "noise": "none"}, 2, 8, 4, 2, 0.5, 3),
    ]),
    "small": (SMALL_HDL, [
        _case(SMALL_CFG, 3, 32, 6, 2, 0.0, 4),
        _case(SMALL_CFG | {"gain": 1.86}, 4, 20, 16, 6, 0.4, 5),
    ]),
}  # fmt: skip


def _params():
    for name in BUILDS:
        yield pytest.param("icarus", name, id=f"icarus-{name}")
    yield pytest.param("verilator", "default", id="verilator-default")


@pytest.mark.parametrize(("sim", "build"), list(_params()))
def test_abfp_tile_outputs_and_cycles_exact(sim, build):
    hdl_extra, cases = BUILDS[build]
    cases = cases if sim == "icarus" else cases[:2]
    summary = run_abfp_tile(sim, cases, hdl_extra)
    assert summary["outputs_checked"] == sum(c["rows"] * c["n_out"] for c in cases)
    assert summary["handshakes_checked"] > summary["outputs_checked"]
    assert summary["mismatches"] == 0


@pytest.mark.parametrize(
    ("inject", "text"),
    [("value", "transaction 0 lane 0: expected"),
     ("cycle", "output handshakes: 4 seen, 4 from simulator.timing; first difference at "
               "handshake 0")],
)  # fmt: skip
def test_abfp_tile_bench_catches_a_wrong_expectation(inject, text):
    """A flipped output bit or an output cycle moved by one fails with a report naming it."""
    case = _case({"n": 8}, 2, 20, 8, 3, 0.2, 1)
    with pytest.raises(AssertionError) as failure:
        run_abfp_tile("icarus", [case], inject=inject)
    assert text in str(failure.value), str(failure.value)


def test_abfp_tile_bench_refuses_a_build_of_another_configuration():
    """Built with another configuration's DAC width, the bench fails naming the parameter."""
    case = _case({"n": 8}, 1, 8, 4, 2, 0.0, 1)
    with pytest.raises(CocotbFailure) as failure:
        run_abfp_tile("icarus", [case], build_cfg={"bx": 7})
    text = str(failure.value)
    assert f"DAC_BITS = 7 in the build, {TileConfig(n=8).bx} from" in text, text
