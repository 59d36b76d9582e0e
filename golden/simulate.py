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
import time
from dataclasses import dataclass, field
from pathlib import Path

from golden.kinds import KINDS, kind
from golden.store import VectorSet
from simulator import hdl

__all__ = ["SIMULATORS", "UNITS", "BenchResult", "bench_parameters", "plusargs", "run_bench"]

SIMULATORS = hdl.SIMULATORS
UNITS = tuple(KINDS)
HDL_DIR = Path(__file__).resolve().parent / "hdl"
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
    """Verilog parameters of a kind's bench for the set: its RTL units', K and memory depths."""
    k = kind(unit)
    counts = vset.manifest["units"][unit]
    params = {}
    for rtl_unit in k.rtl_units:
        params.update(vset.manifest["hdl_parameters"][rtl_unit])
    if k.rescale_constant:
        params["K_BITS"] = int(vset.manifest["constants"]["rescale_constant_bits"], 16)
    params.update({name: _depth(counts[count]) for name, count in k.depths.items()})
    return params


def plusargs(vset: VectorSet, unit: str, stall_seed: int, stall_pct: int) -> list[str]:
    """The bench's plusargs: vector files, counts and stalls."""
    k = kind(unit)
    counts = vset.manifest["units"][unit]
    return ([f"+STALL_SEED={stall_seed}", f"+STALL_PCT={stall_pct}"]
            + [f"+{arg}={vset.file(unit, role)}" for arg, role in k.file_plusargs.items()]
            + [f"+{arg}={counts[count]}" for arg, count in k.count_plusargs.items()])  # fmt: skip


def _sources(unit: str) -> list[Path]:
    """The kind's bench, then its RTL units' sources (each file once)."""
    k = kind(unit)
    rtl = dict.fromkeys(p for u in k.rtl_units for p in hdl.unit(u).sources())
    return [HDL_DIR / f"{k.bench_top}.v", *rtl]


def _build(sim: str, unit: str, params: dict, build_root: Path) -> list[str]:
    """Build the bench once per (sources, parameters); return the command that runs it."""
    top = kind(unit).bench_top
    sources = _sources(unit)
    # Includes are looked up beside the bench and beside every source.
    include_dirs = list(dict.fromkeys(path.parent for path in sources))
    headers = [h for d in include_dirs for h in sorted(d.glob("*.vh"))]
    digest = hashlib.sha256(repr(sorted(params.items())).encode())
    for path in [*sources, *headers, HDL_DIR / "golden_tb_main.cpp"]:
        digest.update(path.read_bytes())
    includes = [f"-I{d}" for d in include_dirs]
    build = build_root / sim / f"{top}-{digest.hexdigest()[:12]}"
    env = hdl.tool_environment(sim)
    if sim == "icarus":
        binary = build / "bench.vvp"
        run = ["vvp", "-n", str(binary)]
        cmd = ["iverilog", "-g2005", "-o", str(binary), "-s", top, *includes]
        cmd += [f"-P{top}.{k}={v}" for k, v in sorted(params.items())]
    elif sim == "verilator":
        binary = build / "golden_tb"
        run = [str(binary)]
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-Wno-fatal", "-Wno-lint",
               "-Wno-style", "--top-module", top, "--prefix", "Vgolden_tb",
               "-DGOLDEN_EXTERNAL_CLOCK", *includes, "-Mdir", str(build / "obj"),
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
    kind(unit)
    if not 0 <= stall_pct <= 100:
        raise ValueError(f"stall_pct must be in [0, 100], got {stall_pct}")
    run = _build(sim, unit, bench_parameters(vset, unit), build_root or BUILD_ROOT)
    start = time.perf_counter()
    proc = subprocess.run(run + plusargs(vset, unit, stall_seed, stall_pct), capture_output=True,
                          text=True, env=hdl.tool_environment(sim))  # fmt: skip
    seconds = time.perf_counter() - start
    text = proc.stdout + proc.stderr
    summary = _SUMMARY.findall(text)
    passed, failed = (int(summary[-1][0]), int(summary[-1][1])) if summary else (-1, -1)
    failures = [(kind, int(idx)) for kind, idx in _FAILURE.findall(text)]
    return BenchResult(passed, failed, failures, proc.returncode, text, seconds)
