"""pytest wrappers: ``abfp_input_unit`` cocotb tests on Icarus and Verilator."""

from __future__ import annotations

import json

import pytest
from harness import TESTS_DIR, CocotbFailure, run_cocotb

from simulator import TileConfig, hdl

# (TileConfig keyword arguments, P): one beat per vector with bf16; fp32 inputs whose max-abs
# overflows and underflows an fp16 scale; a wide tile of fp16 inputs with a 10-bit DAC whose
# M = 511 does not fit the bf16 scale's significand; the extremes of the widths.
CASES = {
    "n8_p8_bx6_bf16": ({"n": 8, "bx": 6}, 8),
    "n32_p8_bx8_fp32_fp16": ({"n": 32, "bx": 8, "in_fmt": "fp32", "scale_fmt": "fp16"}, 8),
    "n128_p16_bx10_fp16_bf16": ({"n": 128, "bx": 10, "in_fmt": "fp16", "scale_fmt": "bf16"}, 16),
    "n12_p3_bx2_e5m2_e4m3": ({"n": 12, "bx": 2, "in_fmt": "e5m2", "scale_fmt": "e4m3"}, 3),
    "n4_p1_bx16_fp32_fp32": ({"n": 4, "bx": 16, "bw": 2, "in_fmt": "fp32", "scale_fmt": "fp32"}, 1),
}
# Verilator builds cost seconds each: it runs three of the sets, Icarus all of them.
VERILATOR_CASES = ("n8_p8_bx6_bf16", "n32_p8_bx8_fp32_fp16", "n128_p16_bx10_fp16_bf16")


def _params():
    for name in CASES:
        yield pytest.param("icarus", name, id=f"icarus-{name}")
    for name in VERILATOR_CASES:
        yield pytest.param("verilator", name, id=f"verilator-{name}")


def _run(sim: str, case: str, extra_env=None, testcase=None, build_config=None, waves=False):
    """Run the bench of ``case``; ``build_config`` builds the RTL for another configuration."""
    kwargs, p = CASES[case]
    env = {"ABFP_TILE_CONFIG": json.dumps(kwargs), "ABFP_P": str(p)}
    env.update(extra_env or {})
    return run_cocotb(
        sim=sim,
        toplevel="abfp_input_unit",
        sources=hdl.unit("input").sources(),
        test_module="tb_input_unit",
        parameters=TileConfig(**(build_config or kwargs)).hdl_parameters("input", P=p),
        extra_env=env,
        testcase=testcase,
        waves=waves,
    )


@pytest.mark.parametrize(("sim", "case"), list(_params()))
def test_input_unit(sim, case):
    _run(sim, case)


def test_input_unit_bench_catches_a_wrong_expectation():
    """With one expected code bit flipped, the bench must fail and name what differs."""
    with pytest.raises(CocotbFailure) as failure:
        _run(
            "icarus", "n8_p8_bx6_bf16", {"ABFP_INJECT_MISMATCH": "1"},
            testcase="unstalled_timing_test",
        )  # fmt: skip
    text = str(failure.value)
    assert "transaction 0 element 0: expected code" in text, text
    assert "max|x|=" in text and "x*M/sx=" in text, text
    assert " at cycle " in text, text


def test_input_unit_bench_refuses_a_build_of_another_configuration():
    """Built with another configuration's DAC_BITS, the bench fails naming the parameter."""
    kwargs, _ = CASES["n8_p8_bx6_bf16"]
    other = {**kwargs, "bx": 7}
    with pytest.raises(CocotbFailure) as failure:
        _run("icarus", "n8_p8_bx6_bf16", testcase="unstalled_timing_test", build_config=other)
    text = str(failure.value)
    assert "DAC_BITS = 7 in the build, 6 from" in text, text


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_waveform_lands_in_the_build_directory(sim):
    """A run with waves writes its waveform under sim_build/ and nothing into cocotb_tests/
    (Verilator's goes to the simulation's working directory)."""

    def tree() -> set:
        return {p for p in TESTS_DIR.rglob("*") if "__pycache__" not in p.parts}

    before = tree()
    run = _run(
        sim, "n8_p8_bx6_bf16", {"ABFP_TXNS": "4"}, testcase="unstalled_timing_test", waves=True
    )
    assert tree() == before, sorted(map(str, tree() ^ before))
    assert run.waveform.is_file() and run.waveform.stat().st_size > 0, run.waveform
    assert run.waveform.is_relative_to(TESTS_DIR.parent / "sim_build"), run.waveform
