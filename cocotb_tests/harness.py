"""Build and run one cocotb testbench on Icarus or Verilator from a plain pytest test.

Sources come from the RTL-unit registry (``simulator.hdl``), with ``rtl/`` as the include
directory. Every (simulator, toplevel, parameters, sources, waves, Verilator arguments) gets
its own build directory under ``sim_build/``, so pytest-xdist can run cases in parallel and an
edited RTL file or include always rebuilds. The simulation runs inside that directory, so
everything it writes (results, Verilator's waveform) stays out of the source tree.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from simulator import hdl

REPO = Path(__file__).resolve().parent.parent
TESTS_DIR = Path(__file__).resolve().parent
BUILD_ROOT = REPO / "sim_build"
SIMULATORS = hdl.SIMULATORS

# Verilator warnings that cocotb-driven builds must tolerate: none of the RTL's own; the
# lint target (`make lint`) runs -Wall separately.
_VERILATOR_ARGS = ["-Wno-fatal"]
# For sources whose delays must run (a clock generated in the HDL; Icarus runs delays anyway).
# --timing compiles processes as C++20 coroutines, and the PyPI wheel's verilated.mk was
# configured without the compiler's coroutine flags (CFG_CXXFLAGS_COROUTINES is empty), so
# C++20 is asked for here.
VERILATOR_TIMING_ARGS = ("--timing", "-CFLAGS", "-std=c++20")

_TRUE = {"1", "yes", "y", "on", "true", "enable"}

# Where each simulator's waveform lands, relative to the build directory (Icarus: the dump
# module the runner adds names it after the toplevel; Verilator: its working directory).
_WAVEFORM = {"icarus": "{toplevel}.fst", "verilator": "dump.vcd"}


@dataclass(frozen=True)
class CocotbRun:
    """What a passing run left: its results file and, when asked for, its waveform."""

    results: Path
    waveform: Path | None


def _waves_requested(waves: bool) -> bool:
    """``waves``, or the ``WAVES`` environment variable set true as cocotb's runner reads it."""
    return waves or os.environ.get("WAVES", "").strip().lower() in _TRUE


@contextmanager
def runner_context(sim: str, waves: bool) -> Iterator[None]:
    """Run the enclosed runner calls with ``os.environ`` set to ``hdl.tool_environment(sim)``
    and the bench modules importable inside the simulator.

    ``cocotb_tools.runner`` 2.1.0 takes no environment: ``get_runner`` looks the simulator up on
    ``os.environ``'s PATH, and ``build()`` and ``test()`` copy ``os.environ`` into their
    commands' environment (over ``test(extra_env=...)``, so PATH cannot be passed that way)
    and set the simulator's ``PYTHONPATH`` from ``sys.path``. So the environment copy and
    absolute paths of ``cocotb_tests/`` and the repository are installed for the duration of
    the runner calls only, and the previous ``os.environ`` and ``sys.path`` restored
    afterwards, whatever happens.
    """
    saved_environ, saved_path = dict(os.environ), list(sys.path)
    env = hdl.tool_environment(sim)
    # The runner lets WAVES override its argument; make both say what the build tag says.
    env["WAVES"] = "1" if waves else "0"
    os.environ.clear()
    os.environ.update(env)
    sys.path[:0] = [str(TESTS_DIR), str(REPO)]
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        sys.path[:] = saved_path


def unit_sources(*names: str, extra: Sequence[Path] = ()) -> list[Path]:
    """Sources of the registered units ``names`` (each file once, leaves first), then ``extra``."""
    sources: dict[Path, None] = {}
    for name in names:
        sources.update(dict.fromkeys(hdl.unit(name).sources()))
    sources.update(dict.fromkeys(Path(p) for p in extra))
    return list(sources)


def _includes() -> list[Path]:
    return sorted(hdl.RTL_DIR.glob("*.vh"))


def _case_tag(toplevel: str, parameters: Mapping[str, object], sources: Sequence[Path],
              waves: bool, verilator_args: Sequence[str]) -> str:  # fmt: skip
    digest = hashlib.sha1(",".join(f"{k}={parameters[k]}" for k in sorted(parameters)).encode())
    digest.update(f"waves={waves}".encode())
    digest.update("\0".join(verilator_args).encode())
    for path in [*sources, *_includes()]:
        digest.update(str(path).encode() + b"\0" + Path(path).read_bytes())
    return f"{toplevel}-{digest.hexdigest()[:12]}"


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
    verilator_args: Sequence[str] = (),
) -> CocotbRun:
    """Build ``toplevel`` with ``parameters`` on ``sim`` and run the cocotb ``test_module``.

    Concurrent calls (pytest-xdist workers) with the same build share the build, one at a
    time, and each run writes its own results file. With ``waves`` (or ``WAVES=1`` in the
    environment) the waveform is written into the build directory and its path printed.
    ``verilator_args`` are further Verilator build arguments (e.g. ``VERILATOR_TIMING_ARGS``),
    after cocotb's own, so they can also turn one of those off.

    Returns
    -------
    CocotbRun

    Raises
    ------
    CocotbFailure
        When the simulator failed or any cocotb test failed; the message holds the reports.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {SIMULATORS}, got {sim!r}")
    parameters = dict(parameters or {})
    sources = [Path(s) for s in sources]
    waves = _waves_requested(waves)
    build_dir = BUILD_ROOT / sim / _case_tag(toplevel, parameters, sources, waves, verilator_args)
    build_dir.mkdir(parents=True, exist_ok=True)
    env = {
        # Rewrite asserts only in the testbench modules: rewriting numba-using modules makes
        # importing and first calls far slower inside the simulator.
        "COCOTB_REWRITE_ASSERTION_FILES": "tb_*.py",
        # Numba's OpenMP workers otherwise spin after every parallel kernel, taking the cores
        # the simulator needs (the tile bench ran about 1.7x slower on a loaded 2-core machine).
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    env.update(extra_env or {})
    results = build_dir / f"results-{test_module}-{uuid.uuid4().hex[:12]}.xml"
    waveform = build_dir / _WAVEFORM[sim].format(toplevel=toplevel) if waves else None
    where = f"{toplevel} on {sim}"
    with runner_context(sim, waves):
        runner = get_runner(sim)
        with open(build_dir.with_name(build_dir.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            runner.build(
                sources=sources,
                includes=[hdl.RTL_DIR],
                hdl_toplevel=toplevel,
                parameters=parameters,
                build_dir=build_dir,
                build_args=[*_VERILATOR_ARGS, *verilator_args] if sim == "verilator" else [],
                timescale=("1ns", "1ps"),
                waves=waves,
                always=False,
            )
        try:
            runner.test(
                hdl_toplevel=toplevel,
                test_module=test_module,
                testcase=testcase,
                test_dir=build_dir,
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
        finally:
            if waveform is not None:
                print(f"waveform: {waveform}")
    n_tests, n_failed = get_results(results)
    if n_tests == 0:
        raise CocotbFailure(f"{where}: no cocotb test ran", results)
    if n_failed:
        raise CocotbFailure(
            f"{where}: {n_failed} of {n_tests} cocotb tests failed\n{failure_reports(results)}",
            results,
        )
    return CocotbRun(results, waveform)
