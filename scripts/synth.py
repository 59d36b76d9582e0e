"""Synthesize each RTL unit with Yosys at its default parameters and report its size.

``make synth`` runs this: for every unit of the registry ``simulator.hdl.UNITS``, its sources
(``rtl/<top>.f``) go through ``synth -top TOP; check -assert; stat``, then one line per unit
gives its cell count and flip-flop count. Exits non-zero when Yosys fails or ``check -assert``
finds a problem.
"""

from __future__ import annotations

import re
import subprocess
import sys

from simulator import hdl


def synthesize(rtl_unit: hdl.RtlUnit) -> tuple[int, int]:
    """(cells, flip-flops) of ``rtl_unit`` after ``synth``, summed over its hierarchy."""
    top = rtl_unit.top
    sources = " ".join(str(p) for p in rtl_unit.sources())
    # Hierarchical synthesis: flattening gives slightly fewer cells but takes minutes.
    script = (
        f"read_verilog -I{hdl.RTL_DIR} {sources}; synth -top {top}; check -assert; "
        f"stat -top {top}"
    )
    run = subprocess.run(["yosys", "-p", script], capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-5000:] + run.stderr)
        raise SystemExit(f"synth: yosys failed on {top}")
    total = run.stdout[run.stdout.rindex("design hierarchy") :]
    cells = int(re.search(r"Number of cells:\s+(\d+)", total).group(1))
    flops = sum(int(c) for c in re.findall(r"\$_[A-Z]*DFF[A-Z0-9_]*_\s+(\d+)", total))
    return cells, flops


def main() -> int:
    print(f"{'unit':<20} {'cells':>8} {'flip-flops':>11}")
    for rtl_unit in hdl.UNITS.values():
        cells, flops = synthesize(rtl_unit)
        print(f"{rtl_unit.top:<20} {cells:>8} {flops:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
