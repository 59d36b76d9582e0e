"""simulator.nn.TileLinear: a layer is its weight object."""

import hashlib

import numpy as np
import pytest

from simulator import TileConfig, abfp_linear
from simulator.nn import LayerPolicy, TileLinear

CFG = TileConfig(n=8, gain=2.0)


def bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


def stream(name):
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def test_tilelinear_is_abfp_linear_with_names_in_order_of_first_use():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 12)).astype(np.float32)
    w0 = rng.standard_normal((5, 12)).astype(np.float32)
    w1 = rng.standard_normal((4, 5)).astype(np.float32)
    f = TileLinear(CFG, seed=9)
    h = f(x, w0)
    y = f(h, w1)
    assert f.layer_names == ["linear0", "linear1"]
    e0 = abfp_linear(x, w0, CFG, seed=9, stream=stream("linear0"))
    np.testing.assert_array_equal(bits(h), bits(e0))
    np.testing.assert_array_equal(bits(y), bits(abfp_linear(e0, w1, CFG, seed=9,
                                                            stream=stream("linear1"))))
    np.testing.assert_array_equal(bits(f(x, w0)), bits(e0))  # same object: same layer
    assert f.layer_names == ["linear0", "linear1"]


def test_equal_values_in_another_array_are_another_layer():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 16)).astype(np.float32)
    w = rng.standard_normal((3, 16)).astype(np.float32)
    f = TileLinear(CFG)
    a, b = f(x, w), f(x, w.copy())
    assert f.layer_names == ["linear0", "linear1"]
    assert not np.array_equal(bits(a), bits(b))  # two layers, two noise streams


def test_weight_references_are_kept_so_ids_are_not_reused():
    f = TileLinear(CFG)
    x = np.ones((1, 4), np.float32)
    for _ in range(3):
        f(x, np.ones((2, 4), np.float32))  # each temporary would free its id without the ref
    assert f.layer_names == ["linear0", "linear1", "linear2"]


def test_names_given_and_policy_patterns():
    f = TileLinear(LayerPolicy(CFG, [{"pattern": "head", "float32": True}]))
    x = np.arange(8, dtype=np.float32).reshape(2, 4) / 7
    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(bits(f(x, w, name="head")), bits(x @ w.T))
    assert f.name_of(w) == "head"
    with pytest.raises(ValueError, match="this weight is layer 'head'; it cannot be named 'x'"):
        f(x, w, name="x")
    with pytest.raises(ValueError, match="'head' already belongs to another weight array"):
        f(x, w.copy(), name="head")


def test_mutating_a_known_weight_is_an_error():
    f = TileLinear(CFG)
    x, w = np.ones((1, 4), np.float32), np.ones((2, 4), np.float32)
    f(x, w)
    w *= 2
    with pytest.raises(ValueError, match="'linear0'.*differ from the weights"):
        f(x, w)
