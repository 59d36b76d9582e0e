"""Shapes whose arrays cannot fit in memory are refused up front, stating the figure, before
anything large is allocated."""

import re
import tracemalloc

import numpy as np
import pytest

from simulator import TileConfig, abfp_linear, model, noise, quantize_inputs

GIB = 2**30


def _refused_figure(call, lowest_bytes):
    """Run ``call``, which must raise MemoryError stating what it needs (at least
    ``lowest_bytes``, at most twice that) and what is available, while allocating under
    64 MiB on the way. Returns the stated GiB."""
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError) as refused:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20
    message = str(refused.value)
    stated = re.search(r"needs about ([0-9.e+]+) GiB but ([0-9.e+]+) GiB", message)
    assert stated, message
    needed = float(stated.group(1))
    assert lowest_bytes / GIB <= needed <= 2 * lowest_bytes / GIB, message
    return needed


def test_trace_of_a_huge_shape_is_refused_up_front():
    """2**20 inputs by 2**20 outputs, one tile: the traced stages alone (mac, analog, noise
    8 bytes, adc_code, partial, acc 4 bytes per element) take 36 * 2**40 bytes, 36 TiB."""
    x = np.ones((2**20, 1), np.float32)
    w = np.ones((2**20, 1), np.float32)
    _refused_figure(lambda: abfp_linear(x, w, TileConfig(n=1), trace=True), 36 * 2**40)


def test_fast_path_weight_codes_of_a_huge_tile_are_refused():
    """K = 1 on a tile of n = 2**24: each of 2**12 weight rows takes a whole tile of codes
    laid out for the matrix products, in float64 (n * 127 * 127 >= 2**24): 512 GiB."""
    cfg = TileConfig(n=2**24)
    x = np.ones((1, 1), np.float32)
    w = np.ones((2**12, 1), np.float32)
    _refused_figure(lambda: abfp_linear(x, w, cfg), 2**24 * 8 * 2**12)


def test_quantized_inputs_of_a_huge_tile_are_refused():
    """2**12 rows of one element each on a tile of n = 2**24: float64 codes, then int32 ones,
    12 bytes per code, 768 GiB."""
    cfg = TileConfig(n=2**24)
    _refused_figure(lambda: quantize_inputs(np.ones((2**12, 1)), cfg), 2**12 * 2**24 * 12)


def test_noise_of_a_huge_shape_is_refused():
    _refused_figure(lambda: noise((2**20, 2**20, 1), TileConfig()), 8 * 2**40)


def test_refusal_follows_the_available_memory(monkeypatch):
    """With 1 MiB available, a trace of 64 x 64 outputs on 8 tiles (40 bytes per stage
    element, 1.25 MiB) is refused and the fast path on the same operands is not."""
    monkeypatch.setattr(model, "_free_memory", lambda: 0)
    monkeypatch.setattr(model, "_available_memory", lambda: 2**20)
    x = np.ones((64, 64))
    w = np.ones((64, 64))
    cfg = TileConfig(n=8)
    with pytest.raises(MemoryError, match=r"trace=True.*but 0\.0009766 GiB"):
        abfp_linear(x, w, cfg, trace=True)
    assert abfp_linear(x, w, cfg).shape == (64, 64)
