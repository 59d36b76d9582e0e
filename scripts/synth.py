"""Synthesize each RTL unit with Yosys at its default parameters and report its size.

``make synth`` runs this: for every unit, ``synth -top UNIT; check -assert; stat``, then one
line per unit with its cell count and flip-flop count. Exits non-zero when Yosys fails or
``check -assert`` finds a problem.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

RTL = Path(__file__).resolve().parent.parent / "rtl"
UNITS = ("abfp_input_unit", "abfp_output_unit")


def synthesize(unit: str) -> tuple[int, int]:
    """(cells, flip-flops) of ``unit`` after ``synth``, summed over its hierarchy."""
    sources = " ".join(str(p) for p in sorted(RTL.glob("*.v")))
    # Hierarchical synthesis: flattening gives slightly fewer cells but takes minutes.
    script = f"read_verilog {sources}; synth -top {unit}; check -assert; stat -top {unit}"
    run = subprocess.run(["yosys", "-p", script], capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-5000:] + run.stderr)
        raise SystemExit(f"synth: yosys failed on {unit}")
    total = run.stdout[run.stdout.rindex("design hierarchy") :]
    cells = int(re.search(r"Number of cells:\s+(\d+)", total).group(1))
    flops = sum(int(c) for c in re.findall(r"\$_[A-Z]*DFF[A-Z0-9_]*_\s+(\d+)", total))
    return cells, flops


def main() -> int:
    print(f"{'unit':<20} {'cells':>8} {'flip-flops':>11}")
    for unit in UNITS:
        cells, flops = synthesize(unit)
        print(f"{unit:<20} {cells:>8} {flops:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
