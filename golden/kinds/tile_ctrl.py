"""The ``tile_ctrl`` kind: whole matrix products through the tile controller ``abfp_tile``, with
the cycle stamp of every DAC beat and every output beat from ``simulator.timing``.

Each product carries its own array latency and its own x-idle and y-ready pattern (one line per
cycle), so any simulator can replay it and check the outputs and their cycles exactly.
"""

from __future__ import annotations

import numpy as np

from golden import layout as lay
from golden.kinds.common import FileSpec, Kind, UnitSet, concat
from golden.values import bits_of
from simulator import TileConfig, abfp_linear
from simulator.timing import ArrayTiming, schedule

__all__ = ["KIND", "tile_ctrl_set"]

LATENCIES = (2, 6)  # the array latencies drawn, inclusive
STALL = 0.3  # probability of an idle x cycle and of a low y_ready in a stalled product
CYCLE_W = 32  # bits of a cycle stamp


def products_layout(hdl: dict) -> lay.Layout:
    """One product: ``{cycles, stalled, latency, groups_m1, tiles_m1, rows_m1}``."""
    return lay.Layout(("rows_m1", hdl["ROW_BITS"], 1, False),
                      ("tiles_m1", hdl["TILE_BITS"], 1, False),
                      ("groups_m1", hdl["GROUP_BITS"], 1, False),
                      ("latency", 8, 1, False), ("stalled", 1, 1, False),
                      ("cycles", CYCLE_W, 1, False))  # fmt: skip


def store_layout(hdl: dict) -> lay.Layout:
    """One weight-scale store word: the LANES row scales ``sw`` of a (group, tile)."""
    return lay.Layout(("sw", 1 + hdl["SCALE_EXP"] + hdl["SCALE_MAN"], hdl["LANES"], False))


def conversions_layout(hdl: dict) -> lay.Layout:
    """One conversion: the DAC beat expected (codes, sx, its cycle) and the array's ADC codes."""
    return lay.Layout(("qy", hdl["ADC_BITS"], hdl["LANES"], True),
                      ("code", hdl["DAC_BITS"], hdl["N"], True),
                      ("sx", 1 + hdl["SCALE_EXP"] + hdl["SCALE_MAN"], 1, False),
                      ("dac_cycle", CYCLE_W, 1, False))  # fmt: skip


def expected_layout(hdl: dict) -> lay.Layout:
    """One output beat: ``y`` of every lane and the cycle of its handshake."""
    return lay.Layout(("y", 1 + hdl["OUT_EXP"] + hdl["OUT_MAN"], hdl["LANES"], False),
                      ("cycle", CYCLE_W, 1, False))  # fmt: skip


def pattern_layout(hdl: dict) -> lay.Layout:
    """One cycle of a product: whether the x source offers a beat and ``y_ready_i``."""
    return lay.Layout(("x_valid", 1, 1, False), ("y_ready", 1, 1, False))


def _shapes(cfg: TileConfig, rng, lanes: int, max_tiles: int, max_groups: int):
    """(rows, k, n_out) of successive products: ragged last tiles in most of them."""
    while True:
        tiles = int(rng.integers(1, max_tiles + 1))
        k = tiles * cfg.n - (int(rng.integers(0, cfg.n)) if rng.random() < 0.75 else 0)
        yield int(rng.integers(1, 4)), k, lanes * int(rng.integers(1, max_groups + 1))


def tile_ctrl_set(cfg: TileConfig, rng, count: int, generator: dict,
                  progress=lambda done: None):  # fmt: skip
    """Whole products ``abfp_linear(x, w)``, product ``l`` drawing noise stream ``l``.

    Files: ``products`` (shape, array latency, whether stalled and cycle count of each),
    ``x`` (the input vectors, one per (row, tile), padded with +0), ``store`` (the store words
    of each product in (group, tile) order), ``conversions`` (per (row, group, tile): the
    expected DAC beat and its cycle, the ADC codes of the golden array), ``expected`` (outputs
    and their cycles) and ``pattern`` (the x-idle and y-ready bits of every cycle of every
    product: all ones unless stalled). Odd products are stalled. Products are added until there
    are at least ``count`` conversions; ``cases`` maps ``product<l>`` to its conversion range.
    """
    from golden.kinds import RTL_EXTRA  # the registry imports this module

    hdl = cfg.hdl_parameters("tile", **{p: generator[s] for p, s in RTL_EXTRA["tile"].items()})
    lanes, per_beat = hdl["LANES"], hdl["P"]
    array_share = hdl["ADC_SHARE"]
    parts = {role: [] for role in ("products", "x", "store", "conversions", "expected",
                                   "pattern")}  # fmt: skip
    out = UnitSet()
    done = 0
    shapes = _shapes(cfg, rng, lanes, 1 << hdl["TILE_BITS"], 1 << hdl["GROUP_BITS"])
    for product, (rows, k, n_out) in enumerate(shapes):
        if done >= count:
            break
        x = rng.standard_normal((rows, k)) * np.exp2(rng.integers(-8, 9, (rows, 1)))
        w = rng.standard_normal((n_out, k)) * np.exp2(rng.integers(-8, 9, (n_out, 1)))
        if product == 0:
            x[-1] = 0.0
            w[-1] = 0.0
        y, tr = abfp_linear(x, w, cfg, stream=product, trace=True)
        tiles, groups = tr.x_scale.shape[1], n_out // lanes
        array = ArrayTiming(int(rng.integers(LATENCIES[0], LATENCIES[1] + 1)), array_share)
        shape = {"rows": rows, "k": k, "n_out": n_out, "lanes": lanes, "per_beat": per_beat}
        stalled = product % 2 == 1
        ready = x_valid = None
        if stalled:
            calm = schedule(cfg, array, **shape)
            length = 4 * calm.total_cycles + 64
            x_valid = rng.random(length) >= STALL
            ready = rng.random(length) >= STALL
        timing = schedule(cfg, array, ready=ready, x_valid=x_valid, handshakes=True, **shape)
        cycles = timing.total_cycles
        full = np.ones(cycles, np.int64)
        parts["pattern"].append({
            "x_valid": (x_valid[:cycles] if stalled else full).astype(np.int64)[:, None],
            "y_ready": (ready[:cycles] if stalled else full).astype(np.int64)[:, None],
        })  # fmt: skip
        line = {"rows_m1": rows - 1, "tiles_m1": tiles - 1, "groups_m1": groups - 1,
                "latency": array.conversion_latency, "stalled": int(stalled),
                "cycles": cycles}  # fmt: skip
        parts["products"].append({name: np.array([[value]]) for name, value in line.items()})
        padded = np.zeros((rows, tiles * cfg.n), np.float32)
        padded[:, :k] = tr.x_fmt
        parts["x"].append({"x": bits_of(padded.reshape(rows * tiles, cfg.n), cfg.in_fmt)})
        sw = tr.w_scale.reshape(groups, lanes, tiles).transpose(0, 2, 1)  # (g, j, lane)
        parts["store"].append({"sw": bits_of(sw.reshape(groups * tiles, lanes), cfg.scale_fmt)})
        # conversions in (row, group, tile) order
        qy = tr.adc_code.reshape(rows, groups, lanes, tiles).transpose(0, 1, 3, 2)
        code = np.broadcast_to(tr.x_code[:, None], (rows, groups, tiles, cfg.n))
        sx = np.broadcast_to(tr.x_scale[:, None], (rows, groups, tiles))
        parts["conversions"].append({
            "qy": qy.reshape(-1, lanes).astype(np.int64),
            "code": code.reshape(-1, cfg.n).astype(np.int64),
            "sx": bits_of(sx.reshape(-1), cfg.scale_fmt)[:, None],
            "dac_cycle": timing.handshakes["dac"][:, None],
        })  # fmt: skip
        parts["expected"].append({"y": bits_of(y.reshape(-1, lanes), cfg.out_fmt),
                                  "cycle": timing.output_cycles[:, None]})  # fmt: skip
        size = rows * groups * tiles
        out.cases[f"product{product}"] = [done, done + size]
        done += size
        progress(min(done, count))
    for role, values in parts.items():
        out.files[role] = concat(values)
    return out


KIND = Kind(
    name="tile_ctrl",
    build=tile_ctrl_set,
    files=(FileSpec("tile_ctrl_products.hex", "products", products_layout, "tile"),
           FileSpec("tile_ctrl_x.hex", "x", lay.input_stimulus, "tile"),
           FileSpec("tile_ctrl_store.hex", "store", store_layout, "tile"),
           FileSpec("tile_ctrl_conversions.hex", "conversions", conversions_layout, "tile"),
           FileSpec("tile_ctrl_expected.hex", "expected", expected_layout, "tile"),
           FileSpec("tile_ctrl_pattern.hex", "pattern", pattern_layout, "tile")),
    counts={"transactions": "conversions", "products": "products", "vectors": "x",
            "words": "store", "outputs": "expected", "cycles": "pattern"},
    max_count=1 << 20,
    # The conversions' codes dominate (n codes each, kept as int64 until written), then the
    # per-cycle pattern (a few cycles per conversion).
    memory_per_transaction=lambda cfg, lanes: 40 * cfg.n + 200 * lanes,
    bench_top="golden_tb_tile_ctrl",
    rtl_units=("tile",),
    rescale_constant=True,
    depths={"MAX_PRODUCTS": "products", "MAX_VECTORS": "vectors", "MAX_WORDS": "words",
            "MAX_CONVERSIONS": "transactions", "MAX_OUTPUTS": "outputs",
            "MAX_CYCLES": "cycles"},
    file_plusargs={"PRODUCTS": "products", "X": "x", "STORE": "store",
                   "CONVERSIONS": "conversions", "EXPECTED": "expected", "PATTERN": "pattern"},
    count_plusargs={"PRODUCT_COUNT": "products", "VECTOR_COUNT": "vectors",
                    "WORD_COUNT": "words", "CONVERSION_COUNT": "transactions",
                    "OUTPUT_COUNT": "outputs", "CYCLE_COUNT": "cycles"},
)  # fmt: skip
