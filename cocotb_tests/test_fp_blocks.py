"""pytest wrappers: the floating-point blocks' cocotb tests on Icarus and Verilator."""

from __future__ import annotations

import json

import pytest
from fp_cases import CASES, block_parameters
from harness import run_cocotb

from simulator import hdl

SOURCES = hdl.read_source_list(hdl.RTL_DIR / "fp_blocks.f")

# Verilator builds cost seconds each: it runs the configurations the output unit uses.
VERILATOR_CASES = ("convert-fp32-bf16", "mul-fp32-fp32-fp32", "add-fp32", "int8-fp32")

PARAMS = [pytest.param("icarus", name, id=f"icarus-{name}") for name in CASES] + [
    pytest.param("verilator", name, id=f"verilator-{name}") for name in VERILATOR_CASES
]


@pytest.mark.parametrize(("sim", "case"), PARAMS)
def test_fp_block(sim, case):
    toplevel, spec = CASES[case]
    run_cocotb(
        sim=sim,
        toplevel=toplevel,
        sources=SOURCES,
        test_module="tb_fp_blocks",
        parameters=block_parameters(toplevel, spec),
        extra_env={"ABFP_FP_CASE": json.dumps(spec)},
        testcase=f"{toplevel}_test",
    )
