"""simulator.nn statistics on a hand-checkable case."""

import math

import numpy as np
import pytest

from simulator import TileConfig
from simulator.nn import Float32Ops, TileOps, format_table, sqnr_db

# n = 2, 4/4/4 bits: M = 7 for DAC, weights and ADC; no noise.
# x = [1, 1]: scale 1, codes (7, 7). w rows [1, 1] and [1, -1]: scales 1, codes (7, 7), (7, -7).
# MACs 98 and 0; kA = G * 7 / (2 * 7 * 7) = G / 14, so the ADC sees 7 G and 0.
# G = 1: codes 7 and 0; rescale K = n / (M * G) = 2/7 gives y = (2, 0) = x @ w.T exactly.
# G = 2: 14 saturates to 7; K = 1/7 gives y = (1, 0) against (2, 0): SQNR 10 log10(4 / 1).
X = np.float32([[1.0, 1.0]])
W = np.float32([[1.0, 1.0], [1.0, -1.0]])


def cfg(gain):
    return TileConfig(n=2, bx=4, bw=4, by=4, gain=gain, noise="none")


@pytest.mark.parametrize("gain,y,sqnr", [(1.0, [[2.0, 0.0]], math.inf),
                                         (2.0, [[1.0, 0.0]], 10 * math.log10(4.0))])
def test_stats_by_hand(gain, y, sqnr):
    ops = TileOps(cfg(gain), stats=True)
    np.testing.assert_array_equal(ops.linear("fc", X, W), np.float32(y))
    (row,) = ops.stats()
    assert row["layer"] == "fc" and row["calls"] == 1 and row["rows"] == 1
    assert row["traced_codes"] == 2
    assert row["clip_rate"] == 0.5  # the code 7 = M(4) is at full scale in both cases
    assert row["codes_used"] == 2 / 15  # codes {0, 7} of the 15 in [-7, 7]
    assert (row["x_scale_min"], row["x_scale_max"]) == (1.0, 1.0)
    assert (row["w_scale_min"], row["w_scale_max"]) == (1.0, 1.0)
    assert row["sqnr_db"] == pytest.approx(sqnr) if math.isfinite(sqnr) else row["sqnr_db"] == sqnr


def test_stats_accumulate_over_calls_and_sample_rows():
    ops = TileOps(cfg(1.0), stats=True, sample_rows=1)
    x = np.float32([[1.0, 1.0], [0.5, 0.0], [0.0, 0.0]])
    ops.linear("fc", x, W)
    ops.linear("fc", x[:1], W)
    (row,) = ops.stats()
    assert row["calls"] == 2 and row["rows"] == 4
    assert row["traced_codes"] == 4  # one traced row of 2 codes per call
    # x row [0.5, 0] has scale 0.5, a zero row has scale 0 (not counted)
    ops2 = TileOps(cfg(1.0), stats=True)
    ops2.linear("fc", x, W)
    assert ops2.stats()[0]["x_scale_min"] == 0.5 and ops2.stats()[0]["x_scale_max"] == 1.0


def test_stats_off_is_an_error_and_tables_print():
    with pytest.raises(RuntimeError, match="stats=True"):
        TileOps(cfg(1.0)).stats()
    ops = TileOps(cfg(1.0), stats=True)
    ops.linear("fc", X, W)
    lines = ops.stats_table().splitlines()
    assert lines[0].split()[0] == "layer" and lines[2].split()[0] == "fc"
    assert format_table([{"a": 1, "b": 0.5}, {"a": 22, "c": "x"}]).splitlines() == [
        "a   b    c", "--  ---  -", "1   0.5", "22       x"]


def test_sqnr_definition():
    assert sqnr_db([3.0, 4.0], [3.0, 4.0]) == math.inf
    assert sqnr_db([3.0, 4.0], [3.0, 5.0]) == pytest.approx(10 * math.log10(25.0))
    assert Float32Ops().linear("fc", X, W).tolist() == [[2.0, 0.0]]
