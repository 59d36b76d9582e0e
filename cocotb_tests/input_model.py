"""Golden model of ``abfp_input_unit`` (docs/arithmetic.md steps 2-3 for x) for the benches.

Expected outputs come from ``simulator.quantize_inputs``; each becomes one scoreboard
transaction whose lane 0 is the scale and lanes 1..n the codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from bench_common import Expected, describe_bits

from simulator import FloatFormat, TileConfig, quantize_inputs
from simulator.formats import from_bits, to_bits


def is_nonfinite(bits: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Which bit patterns of ``fmt`` are inf or NaN (all-ones exponent)."""
    exp_ones = (1 << fmt.exp_bits) - 1
    return ((np.asarray(bits, np.uint32) >> fmt.man_bits) & exp_ones) == exp_ones


def exact_value(bits: int, fmt: FloatFormat) -> Fraction:
    """The exact value of a finite ``fmt`` bit pattern."""
    return Fraction(float(from_bits(np.array([bits], np.uint32), fmt)[0]))


def bits_text(bits: int, width: int) -> str:
    return f"0x{int(bits):0{(width + 3) // 4}x}"


@dataclass
class ExpectedVector:
    """Expected output of one vector, with the golden values that explain it."""

    x_bits: np.ndarray
    scale_bits: int
    codes: np.ndarray  # int32
    max_abs: Fraction | None  # None for a vector with non-finite elements


class InputUnitModel:
    """Golden outputs of ``abfp_input_unit`` from ``simulator.quantize_inputs``.

    Vectors holding inf or NaN (which the golden model refuses) give the unit's documented
    result: the canonical NaN scale and zero codes.
    """

    def __init__(self, cfg: TileConfig, inject_mismatch: bool = False):
        self.cfg = cfg
        self.inject_mismatch = inject_mismatch

    def expected(self, vectors: list[np.ndarray]) -> list[ExpectedVector]:
        cfg = self.cfg
        finite = [i for i, v in enumerate(vectors) if not is_nonfinite(v, cfg.in_fmt).any()]
        out = [
            ExpectedVector(v, cfg.scale_fmt.canonical_nan_bits, np.zeros(cfg.n, np.int32), None)
            for v in vectors
        ]
        if finite:
            x = np.stack([from_bits(vectors[i], cfg.in_fmt) for i in finite])
            codes, scales = quantize_inputs(x, cfg)
            scale_bits = to_bits(scales[:, 0], cfg.scale_fmt)
            for row, i in enumerate(finite):
                mags = np.abs(x[row].astype(np.float64))
                out[i] = ExpectedVector(
                    vectors[i], int(scale_bits[row]), codes[row, 0].copy(), Fraction(mags.max())
                )
        if self.inject_mismatch and out:
            out[0].codes[0] ^= 1
        return out

    def transaction(self, exp: ExpectedVector) -> Expected:
        """``exp`` as a scoreboard transaction: lane 0 the scale bits, lane 1 + k the code of
        element k (its DAC_BITS-bit two's-complement pattern)."""
        cfg = self.cfg
        bits = np.concatenate([[exp.scale_bits], exp.codes.astype(np.int64) & ((1 << cfg.bx) - 1)])

        def name(lane: int) -> str:
            return "scale" if lane == 0 else f"element {lane - 1}"

        def show(lane: int, value: int) -> str:
            if lane == 0:
                return describe_bits(value, cfg.scale_fmt)
            value = int(value)
            signed = value - (1 << cfg.bx) if value >> (cfg.bx - 1) else value
            return f"code {signed} ({bits_text(value, cfg.bx)})"

        return Expected(
            bits=bits, context=lambda lane: self.explain(exp, lane - 1 if lane else None),
            name=name, show=show,
        )  # fmt: skip

    def explain(self, exp: ExpectedVector, element: int | None) -> str:
        """Golden max-abs and sx of the vector, and x and the exact x * M / sx of ``element``."""
        cfg = self.cfg
        sfmt = cfg.scale_fmt
        sx_val = float(from_bits(np.array([exp.scale_bits], np.uint32), sfmt)[0])
        text = f"sx={sx_val!r} ({bits_text(exp.scale_bits, sfmt.width)})"
        if exp.max_abs is None:
            return text + " (vector holds inf/NaN)"
        text = f"max|x|={float(exp.max_abs)!r}, " + text
        if element is not None:
            xb = int(exp.x_bits[element])
            x = exact_value(xb, cfg.in_fmt)
            text = f"x={float(x)!r} ({bits_text(xb, cfg.in_fmt.width)}), " + text
            if sx_val != 0 and math.isfinite(sx_val):
                q = x * cfg.mx / Fraction(sx_val)
                text += f", x*M/sx={q} (~{float(q)!r})"
        return text
