"""The ``output`` kind: beats for ``abfp_output_unit`` (docs/arithmetic.md steps 8-10),
grouped into rows of T tiles: random rows, then the directed cases of :mod:`golden.directed`."""

from __future__ import annotations

import numpy as np

from golden import directed
from golden import layout as lay
from golden.kinds.common import RANDOM, FileSpec, Groups, Kind, UnitSet, as_groups, beats, concat
from golden.values import bits_of, finite_patterns, scale_specials, typical
from simulator import FloatFormat, TileConfig, rescale_accumulate
from simulator.formats import from_bits

__all__ = ["KIND", "output_set"]


def _scale_values(rng, fmt: FloatFormat, shape) -> np.ndarray:
    normal = typical(rng, fmt, shape, 24, signed=False)
    wide = from_bits(finite_patterns(rng, fmt, shape, signed=False), fmt)
    special = from_bits(rng.choice(scale_specials(fmt)[:-1], shape), fmt)
    pick = rng.random(shape)
    return np.where(pick < 0.03, wide, np.where(pick < 0.04, special, normal))


def _codes(rng, my: int, shape) -> np.ndarray:
    codes = rng.integers(-my, my + 1, shape)
    pick = rng.random(shape)
    codes[pick < 0.05] = 0
    codes[(pick >= 0.05) & (pick < 0.1)] = my
    codes[(pick >= 0.1) & (pick < 0.15)] = -my
    return codes


def _expected_y(cfg: TileConfig, groups: Groups) -> np.ndarray:
    """``rescale_accumulate`` of each group (one batch row and L output rows per group)."""
    ys = []
    for g in range(groups.qy.shape[0]):
        adc = groups.qy[g].T[None, :, :].astype(np.int32)
        y = rescale_accumulate(adc, groups.sx[g][None, :], groups.sw[g].T, cfg)
        ys.append(y[0])
    return np.asarray(ys, np.float32).reshape(len(ys), -1)


def _random_beats(cfg: TileConfig, rng, count: int, lanes: int, progress):
    parts, ys = [], []
    done, groups = 0, 16
    while done < count:
        nt = int(rng.choice([1, 1, 2, 3, 4, 6]))
        batch = min(16, -(-(count - done) // (groups * nt)))
        qy = _codes(rng, cfg.my, (batch, groups * lanes, nt))
        sx = _scale_values(rng, cfg.scale_fmt, (batch, nt))
        sw = _scale_values(rng, cfg.scale_fmt, (groups * lanes, nt))
        y = rescale_accumulate(qy.astype(np.int32), sx, sw, cfg)
        parts.append(beats(cfg, as_groups(qy, sx, sw, lanes)))
        ys.append(bits_of(y.reshape(-1, lanes), cfg.out_fmt))
        done += batch * groups * nt
        progress(min(done, count))
    return concat(parts), np.concatenate(ys)


def output_set(cfg: TileConfig, rng, count: int, generator: dict, progress=lambda done: None):
    """Beats for ``abfp_output_unit``: ``count`` random ones (rounded up to whole batches of
    16 rows), then the directed cases.

    The output unit's transactions are input beats (stimulus) and output beats (expected, one
    per row of T beats); ``cases`` ranges index the stimulus beats.
    """
    lanes = generator["lanes"]
    random_beats, random_y = _random_beats(cfg, rng, count, lanes, progress)
    parts, ys = [random_beats], [random_y]
    out = UnitSet()
    start = len(random_beats["qy"])
    out.cases[RANDOM] = [0, start]
    for name, rows in directed.output_cases(cfg, rng, lanes):
        size = 0
        for r in rows:
            groups = Groups(r.qy, r.sw, r.sx)
            parts.append(beats(cfg, groups))
            ys.append(bits_of(_expected_y(cfg, groups), cfg.out_fmt))
            size += r.qy.shape[0] * r.qy.shape[1]
        out.cases[name] = [start, start + size]
        start += size
    out.files["stimulus"] = concat(parts)
    out.files["expected"] = {"y": np.concatenate(ys)}
    return out


KIND = Kind(
    name="output",
    build=output_set,
    files=(FileSpec("output_stimulus.hex", "stimulus", lay.output_stimulus, "output"),
           FileSpec("output_expected.hex", "expected", lay.output_expected, "output")),
    counts={"transactions": "stimulus", "outputs": "expected"},
    max_count=1 << 28,
    # Codes, scales, beat fields and packed text: measured at about 220 B per beat of 4 lanes.
    memory_per_transaction=lambda cfg, lanes: 40 * lanes + 60,
    bench_top="golden_tb_output_unit",
    rtl_units=("output",),
    rescale_constant=True,
    depths={"MAX_TRANSACTIONS": "transactions", "MAX_OUTPUTS": "outputs"},
    file_plusargs={"STIMULUS": "stimulus", "EXPECTED": "expected"},
    count_plusargs={"TRANSACTIONS": "transactions", "OUTPUTS": "outputs"},
)  # fmt: skip
