"""pytest wrappers: ``abfp_output_unit`` cocotb tests on Icarus and Verilator."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from harness import CocotbFailure, rtl_sources, run_cocotb

from simulator import TileConfig

SOURCES = rtl_sources(
    "fp_unpack", "fp_round_pack", "fp_int_to_float", "fp_mul", "fp_add", "fp_convert",
    "abfp_output_unit",
)  # fmt: skip

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


def _run(sim: str, case: str, extra_env=None, testcase=None):
    kwargs, lanes = CASES[case]
    cfg = TileConfig(**kwargs)
    env = {"ABFP_TILE_CONFIG": json.dumps(kwargs), "ABFP_LANES": str(lanes)}
    env.update(extra_env or {})
    return run_cocotb(
        sim=sim,
        toplevel="abfp_output_unit",
        sources=SOURCES,
        test_module="tb_output_unit",
        parameters=cfg.hdl_parameters("output", LANES=lanes),
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


@pytest.mark.parametrize(
    ("parameter", "value", "check"),
    [
        ("LANES", 0, "LANES_out_of_range_1_to_256"),
        ("ADC_BITS", 17, "ADC_BITS_out_of_range_2_to_16"),
        ("SCALE_MAN", 24, "SCALE_MAN_out_of_range_1_to_23"),
        ("ACC_MAN", 5, "ACC_MAN_out_of_range_PART_MAN_to_23"),
        ("OUT_EXP", 9, "OUT_EXP_out_of_range_2_to_8"),
    ],
)
def test_output_unit_refuses_out_of_range_parameters(parameter, value, check):
    """Elaboration fails with an error naming the parameter and its legal range."""
    result = subprocess.run(
        ["iverilog", "-g2005", "-o", os.devnull, "-s", "abfp_output_unit",
         f"-Pabfp_output_unit.{parameter}={value}", *map(str, SOURCES)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0, f"{parameter}={value} elaborated"
    assert f"abfp_output_unit_parameter_{check}" in result.stderr, result.stderr
