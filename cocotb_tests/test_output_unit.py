"""pytest wrappers: ``abfp_output_unit`` cocotb tests on Icarus and Verilator."""

from __future__ import annotations

import json

import pytest
from harness import CocotbFailure, run_cocotb

from simulator import TileConfig, hdl

# (TileConfig keyword arguments, LANES): the default formats with an 8-bit ADC; an 11-bit ADC
# with a non-power-of-two gain; fp16 partial and output; a narrow 8-bit partial format.
CASES = {
    "default": ({}, 4),
    "adc11": ({"by": 11, "n": 64, "gain": 1.86}, 3),
    "fp16": (
        {"n": 32, "gain": 0.5, "scale_fmt": "fp16", "partial_fmt": "fp16", "out_fmt": "fp16"},
        2,
    ),
    "e4m3": ({"by": 6, "n": 256, "partial_fmt": "e4m3", "acc_fmt": "bf16", "out_fmt": "e5m2"}, 2),
}
# Verilator builds cost seconds each: it runs two of the sets, Icarus all of them.
VERILATOR_CASES = ("default", "fp16")


def _params():
    for name in CASES:
        yield pytest.param("icarus", name, id=f"icarus-{name}")
    for name in VERILATOR_CASES:
        yield pytest.param("verilator", name, id=f"verilator-{name}")


def _run(sim: str, case: str, extra_env=None, testcase=None, build_config=None):
    """Run the bench of ``case``; ``build_config`` builds the RTL for another configuration."""
    kwargs, lanes = CASES[case]
    env = {"ABFP_TILE_CONFIG": json.dumps(kwargs), "ABFP_LANES": str(lanes)}
    env.update(extra_env or {})
    return run_cocotb(
        sim=sim,
        toplevel="abfp_output_unit",
        sources=hdl.unit("output").sources(),
        test_module="tb_output_unit",
        parameters=TileConfig(**(build_config or kwargs)).hdl_parameters("output", LANES=lanes),
        extra_env=env,
        testcase=testcase,
    )


@pytest.mark.parametrize(("sim", "case"), list(_params()))
def test_output_unit(sim, case):
    _run(sim, case)


def test_output_unit_bench_catches_a_wrong_expectation():
    """With one expected bit flipped, the bench must fail and name the transaction."""
    with pytest.raises(CocotbFailure) as failure:
        _run("icarus", "default", {"ABFP_INJECT_MISMATCH": "1"}, testcase="unstalled_timing_test")
    text = str(failure.value)
    assert "transaction 0 lane 0" in text, text
    assert " at cycle " in text, text


def test_output_unit_bench_refuses_a_build_of_another_configuration():
    """Built with another configuration's ADC width, the bench fails naming the parameter."""
    kwargs, _ = CASES["default"]
    with pytest.raises(CocotbFailure) as failure:
        _run("icarus", "default", testcase="unstalled_timing_test", build_config={"by": 7})
    text = str(failure.value)
    assert f"ADC_BITS = 7 in the build, {TileConfig(**kwargs).by} from" in text, text
