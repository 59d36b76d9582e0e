"""The ``tile`` kind: whole layers ``y = abfp_linear(x, w)`` through both units, end to end:
the input unit's vectors, the analog array's ADC codes as output-unit beats, and y."""

from __future__ import annotations

import numpy as np

from golden import layout as lay
from golden.kinds.common import FileSpec, Kind, UnitSet, as_groups, beats, concat
from golden.values import bits_of
from simulator import TileConfig, abfp_linear

__all__ = ["KIND", "tile_set"]


def _layer_shapes(cfg: TileConfig, rng, lanes: int):
    """(B, N, K) of successive layers: ragged K (not a multiple of n) in most of them."""
    while True:
        nb = int(rng.integers(1, 5))
        ni = lanes * int(rng.integers(2, 9))
        nt = int(rng.integers(1, 5))
        k = nt * cfg.n - int(rng.integers(0, cfg.n)) if rng.random() < 0.75 else nt * cfg.n
        yield nb, ni, k


def tile_set(cfg: TileConfig, rng, count: int, generator: dict, progress=lambda done: None):
    """Whole layers ``abfp_linear(x, w)``, layer ``l`` drawing noise stream ``l``.

    Files: ``x`` (input-unit vectors, one per (b, tile) in (b, j) order, padded with +0),
    ``x_expected`` (their codes and scales), ``beats`` (output-unit beats with the ADC codes of
    the analog model and the index of the input vector whose ``sx`` they use) and ``expected``
    (the outputs y). ``cases`` maps ``layer<l>`` to its beat range. Layers are added until
    there are at least ``count`` beats; one batch row of x and one weight row are all zero.
    """
    lanes = generator["lanes"]
    xs, xq, layer_beats, ys, layers = [], [], [], [], []
    out = UnitSet()
    n_vectors = n_beats = 0
    for layer, (nb, ni, k) in enumerate(_layer_shapes(cfg, rng, lanes)):
        if n_beats >= count:
            break
        x = rng.standard_normal((nb, k)) * np.exp2(rng.integers(-8, 9, (nb, 1)))
        w = rng.standard_normal((ni, k)) * np.exp2(rng.integers(-8, 9, (ni, 1)))
        if layer == 0:
            x[-1] = 0.0
            w[-1] = 0.0
        y, tr = abfp_linear(x, w, cfg, stream=layer, trace=True)
        if not np.array_equal(y.view(np.uint32), abfp_linear(x, w, cfg, stream=layer).view(
                np.uint32)):  # fmt: skip
            raise RuntimeError(f"layer {layer}: traced and fused forward passes disagree")
        nt = tr.x_scale.shape[1]
        padded = np.zeros((nb, nt * cfg.n), np.float32)
        padded[:, :k] = tr.x_fmt
        xs.append(bits_of(padded.reshape(nb * nt, cfg.n), cfg.in_fmt))
        xq.append({
            "code": tr.x_code.reshape(nb * nt, cfg.n).astype(np.int64),
            "sx": bits_of(tr.x_scale.reshape(-1), cfg.scale_fmt)[:, None],
            "nonfinite": np.zeros((nb * nt, 1), np.int64),
        })  # fmt: skip
        part = beats(cfg, as_groups(tr.adc_code, tr.x_scale, tr.w_scale, lanes))
        b_index = np.repeat(np.arange(nb), (ni // lanes) * nt)
        j_index = np.tile(np.arange(nt), nb * (ni // lanes))
        part["x_index"] = (n_vectors + b_index * nt + j_index)[:, None].astype(np.int64)
        layer_beats.append(part)
        ys.append(bits_of(y.reshape(-1, lanes), cfg.out_fmt))
        size = len(part["qy"])
        out.cases[f"layer{layer}"] = [n_beats, n_beats + size]
        layers.append({"layer": layer, "stream": layer, "batch": nb, "rows": ni, "k": k,
                       "tiles": nt})  # fmt: skip
        n_vectors += nb * nt
        n_beats += size
        progress(min(n_beats, count))
    out.files["x"] = {"x": np.concatenate(xs)}
    out.files["x_expected"] = concat(xq)
    out.files["beats"] = concat(layer_beats)
    out.files["expected"] = {"y": np.concatenate(ys)}
    out.details["layers"] = layers
    return out


KIND = Kind(
    name="tile",
    build=tile_set,
    files=(FileSpec("tile_x.hex", "x", lay.input_stimulus, "input"),
           FileSpec("tile_x_expected.hex", "x_expected", lay.input_expected, "input"),
           FileSpec("tile_beats.hex", "beats", lay.tile_beats, "output"),
           FileSpec("tile_expected.hex", "expected", lay.output_expected, "output")),
    counts={"transactions": "beats", "vectors": "x", "outputs": "expected"},
    max_count=1 << 24,
    # The input vectors, their codes and the beats kept for the files (a layer's traces are
    # freed after it): measured at about 1.8 KB per beat at n = 128, LANES = 4.
    memory_per_transaction=lambda cfg, lanes: 12 * cfg.n + 50 * lanes,
    bench_top="golden_tb_tile",
    rtl_units=("input", "output"),
    rescale_constant=True,
    depths={"MAX_VECTORS": "vectors", "MAX_TRANSACTIONS": "transactions",
            "MAX_OUTPUTS": "outputs"},
    file_plusargs={"X": "x", "X_EXPECTED": "x_expected", "STIMULUS": "beats",
                   "EXPECTED": "expected"},
    count_plusargs={"VECTORS": "vectors", "TRANSACTIONS": "transactions", "OUTPUTS": "outputs"},
)  # fmt: skip
