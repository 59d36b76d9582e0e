"""Test markers shared by ``tests/`` and ``cocotb_tests/`` (registered in pyproject.toml).

``hdl`` marks every test that builds or runs an HDL tool: all of ``cocotb_tests/`` here, and
in ``tests/`` by an explicit ``@pytest.mark.hdl``. A test without the mark that starts one of
the tools fails with a message saying so, so ``make test-fast`` (``-m "not hdl and not
slow"``) never runs a simulator by accident.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

COCOTB_TESTS = Path(__file__).resolve().parent / "cocotb_tests"
HDL_TOOLS = frozenset({"iverilog", "vvp", "verilator", "verilator_bin", "yosys"})


def pytest_collection_modifyitems(items):
    for item in items:
        if COCOTB_TESTS in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.hdl)


def _program(args) -> str:
    argv = shlex.split(args) if isinstance(args, str) else [str(a) for a in args]
    return Path(argv[0]).name if argv else ""


@pytest.fixture(autouse=True)
def _hdl_tools_need_the_hdl_mark(request, monkeypatch):
    """Refuse HDL tools in a test not marked ``hdl``."""
    if request.node.get_closest_marker("hdl") is not None:
        return
    test = request.node.nodeid

    class UnmarkedPopen(subprocess.Popen):
        def __init__(self, args, *rest, **kwargs):
            program = _program(args)
            if program in HDL_TOOLS:
                raise RuntimeError(
                    f"{test} runs {program} but is not marked hdl: add "
                    "@pytest.mark.hdl (make test-fast skips those)"
                )
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", UnmarkedPopen)
