"""pytest wrappers: the floating-point blocks' cocotb tests on Icarus and Verilator."""

from __future__ import annotations

import json

import pytest
from harness import rtl_sources, run_cocotb

from simulator.formats import FloatFormat

SOURCES = rtl_sources(
    "fp_unpack", "fp_round_pack", "fp_int_to_float", "fp_mul", "fp_add", "fp_convert"
)


def _fmt(name: str) -> FloatFormat:
    return FloatFormat.parse(name)


def _convert(src: str, dst: str):
    a, o = _fmt(src), _fmt(dst)
    params = {
        "IN_EXP": a.exp_bits,
        "IN_MAN": a.man_bits,
        "OUT_EXP": o.exp_bits,
        "OUT_MAN": o.man_bits,
    }
    return "fp_convert", params, {"in": src, "out": dst}


def _mul(fa: str, fb: str, fo: str):
    a, b, o = _fmt(fa), _fmt(fb), _fmt(fo)
    params = {
        "A_EXP": a.exp_bits, "A_MAN": a.man_bits, "B_EXP": b.exp_bits, "B_MAN": b.man_bits,
        "O_EXP": o.exp_bits, "O_MAN": o.man_bits,
    }  # fmt: skip
    return "fp_mul", params, {"a": fa, "b": fb, "out": fo}


def _add(name: str):
    f = _fmt(name)
    return "fp_add", {"EXP": f.exp_bits, "MAN": f.man_bits}, {"fmt": name}


def _int(width: int, dst: str):
    o = _fmt(dst)
    return "fp_int_to_float", {"W": width, "EXP": o.exp_bits, "MAN": o.man_bits}, {
        "width": width, "out": dst,
    }  # fmt: skip


# Conversions with at most 16 input bits and e4m3 additions are tested exhaustively.
CASES = {
    "convert-bf16-fp32": _convert("bf16", "fp32"),
    "convert-fp16-fp32": _convert("fp16", "fp32"),
    "convert-fp16-bf16": _convert("fp16", "bf16"),
    "convert-bf16-fp16": _convert("bf16", "fp16"),
    "convert-fp32-bf16": _convert("fp32", "bf16"),
    "convert-fp32-fp16": _convert("fp32", "fp16"),
    "convert-fp32-e4m3": _convert("fp32", "e4m3"),
    "mul-bf16-bf16-fp32": _mul("bf16", "bf16", "fp32"),
    "mul-fp16-fp16-fp32": _mul("fp16", "fp16", "fp32"),
    "mul-fp32-fp32-fp32": _mul("fp32", "fp32", "fp32"),
    "mul-fp32-fp32-bf16": _mul("fp32", "fp32", "bf16"),
    "mul-fp16-bf16-fp16": _mul("fp16", "bf16", "fp16"),
    "add-fp32": _add("fp32"),
    "add-bf16": _add("bf16"),
    "add-fp16": _add("fp16"),
    "add-e4m3": _add("e4m3"),
    "int8-fp32": _int(8, "fp32"),
    "int11-fp32": _int(11, "fp32"),
    "int16-bf16": _int(16, "bf16"),
    "int12-fp16": _int(12, "fp16"),
    "int32-fp32": _int(32, "fp32"),
    "int32-e5m2": _int(32, "e5m2"),
}
# Verilator builds cost seconds each: it runs the configurations the output unit uses.
VERILATOR_CASES = ("convert-fp32-bf16", "mul-fp32-fp32-fp32", "add-fp32", "int8-fp32")

PARAMS = [pytest.param("icarus", name, id=f"icarus-{name}") for name in CASES] + [
    pytest.param("verilator", name, id=f"verilator-{name}") for name in VERILATOR_CASES
]


@pytest.mark.parametrize(("sim", "case"), PARAMS)
def test_fp_block(sim, case):
    toplevel, parameters, spec = CASES[case]
    run_cocotb(
        sim=sim,
        toplevel=toplevel,
        sources=SOURCES,
        test_module="tb_fp_blocks",
        parameters=parameters,
        extra_env={"ABFP_FP_CASE": json.dumps(spec)},
        testcase=f"{toplevel}_test",
    )
