"""Golden model of ``abfp_output_unit`` (docs/arithmetic.md steps 8-10) for the cocotb benches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from bench_common import Expected, pack_lanes

from simulator import FP32, TileConfig, rescale_accumulate
from simulator.formats import mul, to_bits

OUTPUT_UNIT_LATENCY = 6  # cycles from taking a last beat to showing its output


def output_cycles(accept_cycles: Sequence[int], last: Sequence[bool]) -> list[int]:
    """Cycle of every output of the unstalled output unit, from its input beats' cycles.

    With ready held high the pipeline never stalls, so each output appears exactly
    ``OUTPUT_UNIT_LATENCY`` cycles after its last beat was taken.
    """
    return [c + OUTPUT_UNIT_LATENCY for c, end in zip(accept_cycles, last, strict=True) if end]
@dataclass
class TileGroup:
    """One output beat's worth of work: ``T`` tiles of ``LANES`` rows for one batch row.

    Attributes
    ----------
    codes : int32 (LANES, T)
        ADC codes.
    w_scale : float32 (LANES, T)
        Row scales (values of the scale format).
    x_scale : float32 (T,)
        Input scales.
    """

    codes: np.ndarray
    w_scale: np.ndarray
    x_scale: np.ndarray


class OutputUnitModel:
    """Golden expectations for ``abfp_output_unit`` from ``simulator.rescale_accumulate``.

    Parameters
    ----------
    cfg : TileConfig
        Tile configuration (ADC bits, formats, K).
    inject_mismatch : bool
        Flip the lowest bit of lane 0 of the first expected output (testbench self-check).
    """

    def __init__(self, cfg: TileConfig, inject_mismatch: bool = False):
        self.cfg = cfg
        self.inject_mismatch = inject_mismatch
        self._injected = False

    def beats(self, group: TileGroup) -> list[dict[str, int]]:
        """Input beats (signal name to bus value) of one group."""
        cfg = self.cfg
        sw_bits = to_bits(group.w_scale, cfg.scale_fmt)
        sx_bits = to_bits(group.x_scale, cfg.scale_fmt)
        ntiles = group.codes.shape[1]
        return [
            {
                "qy_i": pack_lanes(group.codes[:, j], cfg.by),
                "sw_i": pack_lanes(sw_bits[:, j], cfg.scale_fmt.width),
                "sx_i": int(sx_bits[j]),
                "first_i": int(j == 0),
                "last_i": int(j == ntiles - 1),
            }
            for j in range(ntiles)
        ]

    def expected(self, group: TileGroup) -> Expected:
        """The expected output beat of one group, with the golden stage values per lane."""
        cfg = self.cfg
        y, stages = rescale_accumulate(
            group.codes[None], group.x_scale[None], group.w_scale, cfg, trace=True
        )
        bits = to_bits(y[0], cfg.out_fmt)
        if self.inject_mismatch and not self._injected:
            bits[0] ^= 1
            self._injected = True
        sy = mul(group.w_scale, group.x_scale[None, :], FP32)
        t = mul(group.codes.astype(np.float64), sy, FP32)
        u = mul(t, cfg.rescale_constant, FP32)
        partial, acc = stages["partial"][0], stages["acc"][0]

        def context(lane: int) -> str:
            tiles = []
            for j in range(group.codes.shape[1]):
                tiles.append(
                    f"tile {j}: qy={int(group.codes[lane, j])} "
                    f"sw={float(group.w_scale[lane, j])!r} sx={float(group.x_scale[j])!r} "
                    f"sy={float(sy[lane, j])!r} t={float(t[lane, j])!r} "
                    f"u={float(u[lane, j])!r} p={float(partial[lane, j])!r} "
                    f"acc={float(acc[lane, j])!r}"
                )
            return "\n      ".join(tiles)

        return Expected(bits=bits, fmt=cfg.out_fmt, context=context)
