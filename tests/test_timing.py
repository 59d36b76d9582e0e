"""simulator.timing: validation, and the documented timing contracts of its stages.

The cycle-for-cycle agreement with ``rtl/abfp_tile.v`` is checked on both simulators by
``cocotb_tests/test_abfp_tile.py``; these tests check the model against the contracts stated
independently in the docs: the output unit's latency of 6 cycles (docs/rtl.md), the array's
conversion latency and one vector at a time, ADC sharing, and the handshake rules.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulator import TileConfig
from simulator.timing import HANDSHAKES, STAGES, ArrayTiming, schedule

OUTPUT_UNIT_LATENCY = 6  # docs/rtl.md, abfp_output_unit "Pipeline, latency and throughput"
CFG = TileConfig(n=8)
SHAPE = {"rows": 3, "k": 20, "n_out": 8}  # T = 3 (ragged), G = 2 with LANES = 4


def _run(latency=3, share=2, ready=None, x_valid=None, **shape):
    return schedule(CFG, ArrayTiming(latency, share), **(SHAPE | shape), ready=ready,
                    x_valid=x_valid, lanes=4, per_beat=4, handshakes=True)  # fmt: skip


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: _run(n_out=6), "n_out = 6 must be a multiple of lanes = 4"),
        (lambda: _run(share=3), "adc_share = 3 must divide lanes = 4"),
        (lambda: _run(rows=0), "rows must be an int >= 1"),
        (lambda: schedule(CFG, ArrayTiming(), 1, 8, 4, per_beat=3), "per_beat = 3 must divide"),
        (lambda: _run(ready=[1, 2]), "ready must be a 1-D sequence of 0/1"),
        (lambda: ArrayTiming(conversion_latency=1), "conversion_latency must be an int >= 2"),
        (lambda: schedule({"n": 8}, ArrayTiming(), 1, 8, 4), "config must be a TileConfig"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_counts_of_every_handshake():
    s = _run()
    tiles, groups, beats = CFG.tiles(SHAPE["k"]), SHAPE["n_out"] // 4, CFG.n // 4
    rows = SHAPE["rows"]
    want = {"command": 1, "x": rows * tiles * beats, "vector": rows * tiles,
            "dac": rows * groups * tiles, "adc": rows * groups * tiles * 2,
            "rescale": rows * groups * tiles, "output": rows * groups}  # fmt: skip
    assert {name: len(s.handshakes[name]) for name in HANDSHAKES} == want
    for name in HANDSHAKES:
        assert np.all(np.diff(s.handshakes[name]) > 0), f"{name} handshakes not one per cycle"
    assert np.array_equal(s.output_cycles, s.handshakes["output"])
    assert s.total_cycles == s.output_cycles[-1] + 1


@pytest.mark.parametrize(("latency", "share"), [(2, 1), (3, 2), (4, 4), (2, 4)])
def test_unstalled_stage_contracts(latency, share):
    """Without back-pressure: ADC beats L after their DAC beat (R <= L), one vector per
    max(L, R) cycles within a row once the array's two stages are busy, the group into the
    output unit the cycle after its last ADC beat, and each output OUTPUT_UNIT_LATENCY cycles
    after its last tile's beat."""
    s = _run(latency, share)
    h = s.handshakes
    tiles, groups = s.tiles, s.groups
    adc = h["adc"].reshape(-1, share)
    if share <= latency:
        assert np.array_equal(adc[:, 0], h["dac"] + latency)
    assert np.all(np.diff(adc, axis=1) == 1), "a conversion's ADC beats are not back to back"
    # the second vector settles while the first converts; then the slower of the two paces
    spacing = np.diff(h["dac"].reshape(SHAPE["rows"], groups * tiles), axis=1)
    assert np.all(spacing[:, 0] == latency)
    assert np.all(spacing[:, 1:] == max(latency, share))
    assert np.array_equal(h["rescale"], adc[:, -1] + 1)
    last_tiles = h["rescale"].reshape(-1, tiles)[:, -1]
    assert np.array_equal(s.output_cycles, last_tiles + OUTPUT_UNIT_LATENCY)


def test_back_pressure_and_idle_inputs():
    """Handshakes only where the patterns allow them, and never earlier than unstalled."""
    rng = np.random.default_rng(7)
    ready = rng.random(400) < 0.4
    x_valid = rng.random(400) < 0.5
    calm, stalled = _run(), _run(ready=ready, x_valid=x_valid)
    assert ready[stalled.output_cycles].all()
    assert x_valid[stalled.handshakes["x"]].all()
    for name in HANDSHAKES:
        assert np.all(stalled.handshakes[name] >= calm.handshakes[name]), name
    assert stalled.total_cycles > calm.total_cycles
    # held low for its first 300 cycles, the output port passes nothing before cycle 300
    late = _run(ready=np.zeros(300, np.int64))
    assert late.output_cycles[0] == 300


def test_utilisation_is_each_stage_busy_fraction():
    s = _run()
    assert set(s.utilisation) == set(STAGES)
    assert s.utilisation["output"] == len(s.output_cycles) / s.total_cycles
    assert s.utilisation["dac"] == len(s.handshakes["dac"]) / s.total_cycles
    assert s.utilisation["adc"] == len(s.handshakes["adc"]) / s.total_cycles
    assert all(0 < u <= 1 for u in s.utilisation.values())


def test_without_handshakes_the_same_cycles_and_a_json_form():
    full = _run()
    lean = schedule(CFG, ArrayTiming(3, 2), **SHAPE, lanes=4, per_beat=4)
    assert lean.handshakes is None
    assert np.array_equal(lean.output_cycles, full.output_cycles)
    assert lean.total_cycles == full.total_cycles and lean.utilisation == full.utilisation
    data = json.loads(json.dumps(full.to_dict()))
    assert data["output_cycles"] == full.output_cycles.tolist()
    assert data["handshakes"]["dac"] == full.handshakes["dac"].tolist()
