"""Every parameter of every RTL module is documented with its range and range-checked.

The checks follow the one convention of ``rtl/abfp_param_check.vh``; these tests read each
module's parameters and checks from its source and prove that every check fires: a value just
outside either end of each range (and a violation of each other rule) must stop elaboration on
Icarus and Verilator with an error naming the rule.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache

import pytest

from simulator import FloatFormat, hdl

_PARAMETER = re.compile(r"parameter\s+integer\s+(\w+)\s*=\s*([^,\s/]+)\s*,?\s*//\s*(.*)")
_RANGE = re.compile(r"`ABFP_CHECK_RANGE\((\w+),\s*(\w+),\s*(\w+),\s*(\w+)\)")
_RULE = re.compile(r"`ABFP_CHECK_RULE\((\w+),\s*(\w+),")
_MODULE = re.compile(r"^module\s+(\w+)", re.M)

# Parameter values that break each rule that is not a range, over the module's defaults.
RULE_VIOLATIONS = {
    ("abfp_input_unit", "P_must_divide_N"): {"N": 12, "P": 5},
    ("abfp_tile", "P_must_divide_N"): {"N": 12, "P": 5},
    ("abfp_tile", "ADC_SHARE_must_divide_LANES"): {"LANES": 4, "ADC_SHARE": 3},
}


@dataclass(frozen=True)
class Module:
    name: str
    defaults: dict  # parameter -> default value (int, or the text of a macro)
    comments: dict  # parameter -> its comment
    ranges: dict  # parameter -> (low, high) as written (literals or parameter names)
    rules: tuple  # names of the other rules
    check_modules: tuple  # the MODULE argument of every check


@cache
def sources() -> list:
    """Every RTL file of every registered unit and of the floating-point blocks, once each."""
    files = dict.fromkeys(hdl.read_source_list(hdl.RTL_DIR / "fp_blocks.f"))
    for rtl_unit in hdl.UNITS.values():
        files.update(dict.fromkeys(rtl_unit.sources()))
    return list(files)


@cache
def modules() -> dict:
    found = {}
    for path in sources():
        text = path.read_text()
        names = _MODULE.findall(text)
        assert len(names) == 1, f"{path}: expected one module, found {names}"
        params = _PARAMETER.findall(text)
        range_checks, rule_checks = _RANGE.findall(text), _RULE.findall(text)
        ranges = {name: (low, high) for _, name, low, high in range_checks}
        assert len(ranges) == len(range_checks), f"{path}: a parameter is checked twice"
        found[names[0]] = Module(
            name=names[0],
            defaults={n: int(v) if v.isdigit() else v for n, v, _ in params},
            comments={n: c for n, _, c in params},
            ranges=ranges,
            rules=tuple(rule for _, rule in rule_checks),
            check_modules=tuple(check[0] for check in range_checks + rule_checks),
        )
    return found


def _bound(module: Module, bound: str) -> int:
    return int(bound) if bound.isdigit() else module.defaults[bound]


def _elaborate_icarus(top: str, overrides: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["iverilog", "-g2005", "-o", "/dev/null", "-I", str(hdl.RTL_DIR), "-s", top,
         *(f"-P{top}.{k}={v}" for k, v in overrides.items()), *map(str, sources())],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def _lint_verilator(top: str, overrides: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["verilator", "--lint-only", "-Wall", "--quiet", f"-I{hdl.RTL_DIR}", "--top-module", top,
         *(f"-G{k}={v}" for k, v in overrides.items()), *map(str, sources())],
        capture_output=True, text=True, check=False, env=hdl.tool_environment("verilator"),
    )  # fmt: skip


def _violations():
    """(module, rule text, overrides) for both ends of every range and every other rule."""
    for module in modules().values():
        for name, (low, high) in module.ranges.items():
            rule = f"{name}_out_of_range_{low}_to_{high}"
            yield pytest.param(module.name, rule, {name: _bound(module, low) - 1},
                               id=f"{module.name}-{name}-below")  # fmt: skip
            yield pytest.param(module.name, rule, {name: _bound(module, high) + 1},
                               id=f"{module.name}-{name}-above")  # fmt: skip
        for rule in module.rules:
            yield pytest.param(module.name, rule, RULE_VIOLATIONS.get((module.name, rule)),
                               id=f"{module.name}-{rule}")  # fmt: skip


VIOLATIONS = list(_violations())


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_parameter_is_documented_and_checked(name):
    """Each parameter's comment states the range its check enforces, in the one convention."""
    module = modules()[name]
    assert module.defaults, f"{name}: no parameters found"
    assert set(module.check_modules) == {name}, f"{name}: checks name {set(module.check_modules)}"
    for parameter, comment in module.comments.items():
        assert parameter in module.ranges, f"{name}.{parameter} has no range check"
        low, high = module.ranges[parameter]
        assert f"{low}..{high}" in comment, (
            f"{name}.{parameter}: comment {comment!r} does not state the checked range "
            f"{low}..{high}"
        )
    text = next(p for p in sources() if _MODULE.search(p.read_text())[1] == name).read_text()
    assert "_out_of_range_" not in text.replace("`ABFP_CHECK_RANGE", ""), (
        f"{name} spells a check out instead of using abfp_param_check.vh"
    )


@pytest.mark.parametrize("name", sorted(modules()))
def test_format_parameters_have_the_float_format_ranges(name):
    """Exponent and mantissa widths with literal bounds allow exactly what FloatFormat does."""
    accepted = {}
    for field, other in (("exp", 7), ("man", 3)):
        widths = []
        for width in range(0, 40):
            args = (width, other) if field == "exp" else (other, width)
            try:
                FloatFormat(*args)
            except ValueError:
                continue
            widths.append(width)
        accepted[field.upper()] = (str(min(widths)), str(max(widths)))
    module = modules()[name]
    for parameter, bounds in module.ranges.items():
        kind = parameter.rsplit("_", 1)[-1]
        if kind in accepted and all(b.isdigit() for b in bounds):
            assert bounds == accepted[kind], f"{name}.{parameter}: {bounds} vs FloatFormat"


def test_unit_ranges_agree_with_the_registry():
    """The registry's ranges of each unit's non-tile parameters are those its RTL checks."""
    for rtl_unit in hdl.UNITS.values():
        module = modules()[rtl_unit.top]
        declared = {**rtl_unit.ranges, **{k: (lo, hi) for k, (_, lo, hi) in rtl_unit.extra.items()}}
        for parameter, (lo, hi) in declared.items():
            low, high = module.ranges[parameter]
            # P's upper bound is N in the RTL: the registry gives N's largest value
            high = module.ranges[high][1] if high in module.ranges else high
            assert (lo, hi) == (int(low), int(high)), f"{rtl_unit.top}.{parameter}"


def test_every_rule_has_a_violation():
    for module, rule, overrides in (p.values for p in VIOLATIONS):
        assert overrides, f"{module}: no violation of {rule} in RULE_VIOLATIONS"


@pytest.mark.parametrize("name", sorted(modules()))
def test_defaults_elaborate(name):
    result = _elaborate_icarus(name, {})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("top", "rule", "overrides"), VIOLATIONS)
def test_violation_fails_elaboration_on_icarus(top, rule, overrides):
    result = _elaborate_icarus(top, overrides)
    assert result.returncode != 0, f"{top} {overrides} elaborated"
    assert f"Unknown module type: {top}_parameter_{rule}" in result.stderr, result.stderr


@pytest.mark.parametrize(("top", "rule", "overrides"), VIOLATIONS)
def test_violation_fails_verilator_lint(top, rule, overrides):
    result = _lint_verilator(top, overrides)
    assert result.returncode != 0, f"{top} {overrides} linted clean"
    assert f"Cannot find file containing module: '{top}_parameter_{rule}'" in result.stderr, (
        result.stderr
    )
