"""Print the worked example of docs/arithmetic.md: every stage of one small forward pass.

Run ``python docs/worked_example.py``; ``tests/test_docs.py`` checks that the page holds
exactly this output.
"""

import numpy as np

from simulator import BF16, FP32, TileConfig, abfp_linear
from simulator.formats import to_bits

CONFIG = TileConfig(n=4, bx=4, bw=4, by=6, gain=2.0, noise="uniform", noise_amplitude=1.0, seed=7)
X = np.array([[0.3, -1.7, 2.5, 0.01, -0.8, 0.45]])
W = np.array([[1.0, 0.5, -0.25, 3.0, -1.5, 0.7], [-0.6, 2.2, 0.9, -0.1, 0.0, 1.3]])


def _fmt(value) -> str:
    """Nested lists of exact decimal values (shortest repr of each float64 or float32)."""
    if isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.ndim:
        return "[" + ", ".join(_fmt(v) for v in arr) + "]"
    if arr.dtype.kind == "f":
        return repr(float(arr)) if arr.dtype == np.float64 else str(arr)
    return str(int(arr))


def worked_example() -> str:
    """The markdown table of every stage (steps 1-10) of the example."""
    y, t = abfp_linear(X, W, CONFIG, trace=True)
    rows = [
        ("`x_fmt` (1)", t.x_fmt[0]),
        ("`w_fmt` (1)", t.w_fmt),
        ("`x_scale` (2), per tile", t.x_scale[0]),
        ("`w_scale` (2), [row][tile]", t.w_scale),
        ("`x_code` (3), [tile][k]", t.x_code[0]),
        ("`w_code` (3), [row][tile][k]", t.w_code),
        ("`mac` (4), [row][tile]", t.mac[0]),
        ("`analog` (5), [row][tile]", t.analog[0]),
        ("`noise` (6), [row][tile]", t.noise[0]),
        ("`adc_code` (7), [row][tile]", t.adc_code[0]),
        ("`partial` (8), [row][tile]", t.partial[0]),
        ("`acc` (9), [row][tile]", t.acc[0]),
        ("`acc` fp32 bits", [[f"0x{v:08x}" for v in r] for r in to_bits(t.acc[0], FP32)]),
        ("`y` (10)", y[0]),
        ("`y` bf16 bits", [f"0x{v:04x}" for v in to_bits(y[0], BF16)]),
    ]
    lines = ["| stage | value |", "|---|---|"]
    for name, value in rows:
        lines.append(f"| {name} | `{_fmt(value)}` |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(worked_example())
