"""The floating-point blocks' test cases: each a top module, its formats and its parameters.

Shared by the pytest wrapper (which builds each case) and the bench (which checks that the
built block has the parameters its formats call for).
"""

from __future__ import annotations

from simulator.formats import FloatFormat


def _fmt(name: str) -> FloatFormat:
    return FloatFormat.parse(name)


def block_parameters(toplevel: str, spec: dict) -> dict:
    """Verilog parameters of ``toplevel`` for the formats of ``spec`` (a case's formats)."""
    if toplevel == "fp_convert":
        a, o = _fmt(spec["in"]), _fmt(spec["out"])
        return {"IN_EXP": a.exp_bits, "IN_MAN": a.man_bits, "OUT_EXP": o.exp_bits,
                "OUT_MAN": o.man_bits}  # fmt: skip
    if toplevel == "fp_mul":
        a, b, o = (_fmt(spec[k]) for k in ("a", "b", "out"))
        return {"A_EXP": a.exp_bits, "A_MAN": a.man_bits, "B_EXP": b.exp_bits,
                "B_MAN": b.man_bits, "O_EXP": o.exp_bits, "O_MAN": o.man_bits}  # fmt: skip
    if toplevel == "fp_add":
        f = _fmt(spec["fmt"])
        return {"EXP": f.exp_bits, "MAN": f.man_bits}
    if toplevel == "fp_int_to_float":
        o = _fmt(spec["out"])
        return {"W": int(spec["width"]), "EXP": o.exp_bits, "MAN": o.man_bits}
    raise ValueError(f"no floating-point block {toplevel!r}")


def _convert(src: str, dst: str):
    return "fp_convert", {"in": src, "out": dst}


def _mul(fa: str, fb: str, fo: str):
    return "fp_mul", {"a": fa, "b": fb, "out": fo}


def _add(name: str):
    return "fp_add", {"fmt": name}


def _int(width: int, dst: str):
    return "fp_int_to_float", {"width": width, "out": dst}


# name: (top module, formats). Conversions with at most 16 input bits and e4m3 additions are
# tested exhaustively.
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
