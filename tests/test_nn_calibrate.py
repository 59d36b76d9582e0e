"""simulator.nn.calibrate: per-layer gain minimising the layer's error, checked by brute force."""

import numpy as np
import pytest

from simulator import TileConfig
from simulator.nn import Float32Ops, LayerPolicy, RecordingOps, TileOps, calibrate

CFG = TileConfig(n=16, noise="uniform")
RNG = np.random.default_rng(0)
W1 = RNG.standard_normal((8, 32)).astype(np.float32)
WC = RNG.standard_normal((4, 2, 3, 3)).astype(np.float32)
B1 = RNG.standard_normal(8).astype(np.float32)
GAINS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def forward(ops, batch):
    dense, image = batch
    h = ops.linear("fc", dense, W1, B1)
    c = ops.conv2d("conv", image, WC, None, 1, "same")
    return np.maximum(ops.digital(h), 0).sum() + c.sum()


def batch():
    rng = np.random.default_rng(1)
    # one-hot-like rows: small dot products, so a large gain pays; the conv sees dense inputs
    dense = (rng.random((6, 32)) < 0.1).astype(np.float32) * rng.standard_normal((6, 32))
    image = rng.standard_normal((3, 2, 6, 6)).astype(np.float32) * 50
    return dense.astype(np.float32), image


def brute_force(name, call, seed):
    errors = {}
    for g in GAINS:
        ops = TileOps(LayerPolicy(CFG, [{"pattern": name, "gain": g}]), seed=seed)
        diff = call(ops).astype(np.float64) - call(Float32Ops()).astype(np.float64)
        errors[g] = float(np.sum(diff * diff))
    return errors


def test_calibration_picks_the_brute_force_minimum_per_layer():
    dense, image = batch()
    result = calibrate(forward, (dense, image), CFG, gains=GAINS, seed=3, criterion="layer")
    fc = brute_force("fc", lambda ops: ops.linear("fc", dense, W1), 3)
    conv = brute_force("conv", lambda ops: ops.conv2d("conv", image, WC, padding="same"), 3)
    for name, errors in (("fc", fc), ("conv", conv)):
        assert result.errors[name] == errors
        assert result.gains[name] == min(GAINS, key=errors.get)
        assert len(set(errors.values())) > 1  # the criterion discriminates
    assert result.gains["fc"] != result.gains["conv"]  # a per-layer choice, not one global G
    assert result.policy.config("fc").gain == result.gains["fc"]
    assert result.policy.config("conv").gain == result.gains["conv"]
    assert result.seconds > 0
    assert [r["layer"] for r in result.rows()] == ["fc", "conv"]


def test_calibration_skips_float32_layers_and_matmuls_not_opted_in():
    def model(ops, x):
        h = ops.linear("fc", x, W1)
        return ops.matmul("mm", h, h.T)

    x = RNG.standard_normal((5, 32)).astype(np.float32)
    policy = LayerPolicy(CFG, [{"pattern": "fc", "float32": True}])
    assert calibrate(model, x, policy, gains=(1, 2)).gains == {}
    opted = LayerPolicy(CFG, [{"pattern": "mm", "matmul": True}])
    assert set(calibrate(model, x, opted, gains=(1, 2)).gains) == {"fc", "mm"}


def _output_error(gains: dict, seed: int) -> float:
    rules = [{"pattern": name, "gain": g} for name, g in gains.items()]
    out = forward(TileOps(LayerPolicy(CFG, rules), seed=seed), batch())
    return float((np.float64(out) - np.float64(forward(Float32Ops(), batch()))) ** 2)


def test_output_criterion_never_exceeds_the_best_global_gain_or_the_layer_choice():
    result = calibrate(forward, batch(), CFG, gains=GAINS, seed=3)
    assert result.criterion == "output"
    chosen = result.gains
    assert result.output_error == _output_error(chosen, 3)
    global_errors = {g: _output_error({"fc": g, "conv": g}, 3) for g in GAINS}
    best_global = min(GAINS, key=global_errors.get)
    assert result.best_global == (best_global, global_errors[best_global])
    assert result.output_error <= global_errors[best_global]
    layer_choice = calibrate(forward, batch(), CFG, gains=GAINS, seed=3, criterion="layer").gains
    assert result.output_error <= _output_error(layer_choice, 3)
    # the last layer of the pass is at its best given the others
    for g in GAINS:
        assert _output_error({**chosen, "conv": g}, 3) >= result.output_error
    assert result.policy.config("fc").gain == chosen["fc"]


def test_several_seeds_sum_the_errors_of_each():
    dense, image = batch()
    both = calibrate(forward, (dense, image), CFG, gains=GAINS, seed=[3, 4], criterion="layer")
    fc = {g: e3 + e4 for (g, e3), e4 in zip(
        brute_force("fc", lambda ops: ops.linear("fc", dense, W1), 3).items(),
        brute_force("fc", lambda ops: ops.linear("fc", dense, W1), 4).values(), strict=True)}
    assert both.errors["fc"] == fc
    assert both.gains["fc"] == min(GAINS, key=fc.get)
    output = calibrate(forward, (dense, image), CFG, gains=GAINS, seed=(3, 4))
    assert output.output_error == _output_error(output.gains, 3) + _output_error(output.gains, 4)


@pytest.mark.parametrize("seed, message", [([], "no noise seed"), ([1, 2.5], "not an integer"),
                                           ("7", "not an integer")])
def test_bad_seeds(seed, message):
    with pytest.raises(ValueError, match=message):
        calibrate(forward, batch(), CFG, gains=GAINS, seed=seed)


def test_unknown_criterion():
    with pytest.raises(ValueError, match="criterion must be one of"):
        calibrate(forward, batch(), CFG, gains=GAINS, criterion="mse")


def test_recording_ops_records_inputs_without_bias():
    rec = RecordingOps()
    dense, image = batch()
    forward(rec, (dense, image))
    (method, args, kwargs), = rec.calls["fc"]
    assert method == "linear" and args[0] is not dense and np.array_equal(args[0], dense)
    assert np.array_equal(args[1], W1) and args[2:] == (None,)  # the bias B1 is dropped
    (method, args, kwargs), = rec.calls["conv"]
    assert method == "conv2d" and args[2] is None and args[4] == "same"


@pytest.mark.parametrize("gains,message", [((), "no candidate gains"), ((1, 0), "> 0"),
                                           ((1, "2"), "not a real number")])
def test_bad_candidate_gains(gains, message):
    with pytest.raises(ValueError, match=message):
        calibrate(forward, batch(), CFG, gains=gains)
