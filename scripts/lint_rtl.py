"""Lint every registered RTL unit and every floating-point block with Verilator.

``make lint`` runs this: ``verilator --lint-only -Wall --top-module TOP -F rtl/TOP.f`` for each
unit of :data:`simulator.hdl.UNITS`, and ``-F rtl/fp_blocks.f`` with each block of that list as
the top, all at their default parameters and with no waivers; ``rtl/`` is the include
directory. A Verilog file in ``rtl/`` that no source list names is an error too, so no file
escapes the lint. Exits non-zero on any finding.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from simulator.hdl import RTL_DIR, UNITS, read_source_list, tool_environment

FP_BLOCKS = RTL_DIR / "fp_blocks.f"


def lint_runs() -> list[tuple[str, Path]]:
    """(top module, source list) of every lint run: the units, then each fp block."""
    runs = [(rtl_unit.top, rtl_unit.source_list) for rtl_unit in UNITS.values()]
    runs += [(source.stem, FP_BLOCKS) for source in read_source_list(FP_BLOCKS)]
    return runs


def unlisted_sources(runs: list[tuple[str, Path]]) -> list[Path]:
    """Verilog files of ``rtl/`` that none of the runs' source lists names."""
    listed = {source for _, source_list in runs for source in read_source_list(source_list)}
    return sorted(set(RTL_DIR.glob("*.v")) - listed)


def main() -> int:
    runs = lint_runs()
    unlisted = unlisted_sources(runs)
    if unlisted:
        names = ", ".join(path.name for path in unlisted)
        print(f"lint_rtl: no source list in {RTL_DIR} names {names}", file=sys.stderr)
        return 1
    env = tool_environment("verilator")
    for top, source_list in runs:
        cmd = ["verilator", "--lint-only", "-Wall", "--quiet", f"-I{RTL_DIR}", "--top-module",
               top, "-F", str(source_list)]  # fmt: skip
        print(f"verilator --lint-only -Wall --top-module {top} -F {source_list.name}")
        run = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if run.returncode != 0 or run.stdout.strip() or run.stderr.strip():
            sys.stderr.write(run.stdout + run.stderr)
            print(f"lint_rtl: {top} has lint findings", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
