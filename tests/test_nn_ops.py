"""simulator.nn ops: bit-exact products, convolution lowering, chunking, streams, bad input."""

import hashlib
import itertools

import numpy as np
import pytest

from simulator import BF16, FP16, FP32, FloatFormat, TileConfig, abfp_linear
from simulator.formats import round_to
from simulator.nn import Float32Ops, LayerPolicy, TileOps, stream_id
from simulator.nn.ops import round_float32

CFG = TileConfig(n=8, noise="uniform", noise_amplitude=1.0, gain=2.0)


def bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


def expected_stream(name):
    """docs/networks.md: the first 4 bytes of SHA-256 of the UTF-8 name, little-endian."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return digest[0] | digest[1] << 8 | digest[2] << 16 | digest[3] << 24


def rng_array(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def same_pads(size, kernel, stride, dilation):
    """TensorFlow's 'same': output ceil(size / stride), the odd pixel of padding after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def reference_patches(x, kernel, stride, pads, dilation):
    """Slow im2col by loops: rows (b, output position), columns (channel, kernel offsets)."""
    batch, channels = x.shape[:2]
    spatial = x.shape[2:]
    pairs = list(zip(spatial, pads, strict=True))
    padded = np.zeros((batch, channels) + tuple(s + lo + hi for s, (lo, hi) in pairs), np.float32)
    padded[(slice(None), slice(None)) + tuple(slice(lo, lo + s) for s, (lo, _) in pairs)] = x
    geometry = zip(padded.shape[2:], kernel, stride, dilation, strict=True)
    outs = [(p - ((k - 1) * d + 1)) // s + 1 for p, k, s, d in geometry]
    rows = []
    for b in range(batch):
        for pos in itertools.product(*(range(o) for o in outs)):
            row = []
            for c in range(channels):
                for off in itertools.product(*(range(k) for k in kernel)):
                    steps = zip(pos, stride, off, dilation, strict=True)
                    idx = tuple(p * s + o * d for p, s, o, d in steps)
                    row.append(padded[(b, c) + idx])
            rows.append(row)
    return np.array(rows, np.float32), tuple(outs)


def reference_conv(x, w, cfg, name, stride, pads, dilation, groups, batch_start=0):
    """Grouped convolution as abfp_linear over the slow im2col, group g on stream g's name."""
    out_channels, cin = w.shape[0], w.shape[1]
    cout = out_channels // groups
    parts = []
    for g in range(groups):
        patches, outs = reference_patches(x[:, g * cin:(g + 1) * cin], w.shape[2:], stride, pads,
                                          dilation)  # fmt: skip
        key = name if g == 0 else f"{name}/group{g}"
        per_sample = int(np.prod(outs))
        y = abfp_linear(patches, w[g * cout:(g + 1) * cout].reshape(cout, -1), cfg, seed=0,
                        stream=expected_stream(key), batch_offset=batch_start * per_sample)
        parts.append(y)
    y = np.concatenate(parts, axis=1).reshape((x.shape[0],) + outs + (out_channels,))
    return np.moveaxis(y, -1, 1)


def direct_conv(x, w, stride, pads, dilation, groups):
    """float64 convolution by loops over the output, for the float32 lowering's geometry."""
    patches_per_group = []
    cin, cout = w.shape[1], w.shape[0] // groups
    for g in range(groups):
        p, outs = reference_patches(x[:, g * cin:(g + 1) * cin], w.shape[2:], stride, pads,
                                    dilation)  # fmt: skip
        wg = w[g * cout:(g + 1) * cout].reshape(cout, -1).astype(np.float64)
        patches_per_group.append(p.astype(np.float64) @ wg.T)
    y = np.concatenate(patches_per_group, axis=1).reshape((x.shape[0],) + outs + (w.shape[0],))
    return np.moveaxis(y, -1, 1)


def test_stream_id_is_sha256_of_the_name():
    for name in ("conv1", "stack2.conv_a", "encoder.0.attn.q", "é"):
        assert stream_id(name) == expected_stream(name)


def test_linear_is_abfp_linear_bit_for_bit():
    rng = np.random.default_rng(1)
    x, w, b = rng_array(rng, 3, 4, 20), rng_array(rng, 6, 20), rng_array(rng, 6)
    ops = TileOps(CFG, seed=5)
    ops.batch_start = 7
    y = ops.linear("fc", x, w, b)
    expect = abfp_linear(x, w, CFG, seed=5, stream=expected_stream("fc"), batch_offset=7 * 4)
    expect = round_to(expect, BF16) + round_to(b, BF16)
    assert y.shape == (3, 4, 6) and y.dtype == np.float32
    np.testing.assert_array_equal(bits(y), bits(expect))
    no_bias = TileOps(CFG, seed=5).linear("fc", x, w)
    np.testing.assert_array_equal(
        bits(no_bias), bits(abfp_linear(x, w, CFG, seed=5, stream=expected_stream("fc")))
    )


CONV2D_CASES = [
    # (C, O, H, W, kh, kw, stride, padding, dilation, groups)
    (3, 4, 7, 6, 3, 3, 1, 0, 1, 1),
    (3, 4, 7, 6, 3, 2, (2, 1), (1, 2), 1, 1),
    (4, 6, 8, 8, 3, 3, 1, 2, 2, 2),
    (4, 4, 6, 7, 3, 3, 2, "same", 1, 4),
    (2, 3, 6, 5, 2, 4, 1, "same", (1, 2), 1),
    (2, 2, 6, 6, 3, 3, 3, "valid", 1, 1),
]


@pytest.mark.parametrize("case", CONV2D_CASES)
def test_conv2d_is_abfp_linear_over_im2col(case):
    c, o, h, w_, kh, kw, stride, padding, dilation, groups = case
    rng = np.random.default_rng(2)
    x, w, b = rng_array(rng, 2, c, h, w_), rng_array(rng, o, c // groups, kh, kw), rng_array(rng, o)
    st = (stride,) * 2 if isinstance(stride, int) else stride
    dil = (dilation,) * 2 if isinstance(dilation, int) else dilation
    if padding == "same":
        dims = zip((h, w_), (kh, kw), st, dil, strict=True)
        pads = [same_pads(s, k, s_, d) for s, k, s_, d in dims]
    elif padding == "valid":
        pads = [(0, 0), (0, 0)]
    else:
        p = (padding,) * 2 if isinstance(padding, int) else padding
        pads = [(v, v) for v in p]
    ops = TileOps(CFG, seed=0)
    ops.batch_start = 3
    y = ops.conv2d("conv", x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    expect = reference_conv(x, w, CFG, "conv", st, pads, dil, groups, batch_start=3)
    np.testing.assert_array_equal(bits(y), bits(expect))
    with_bias = TileOps(CFG, seed=0)
    with_bias.batch_start = 3
    yb = with_bias.conv2d("conv", x, w, b, stride, padding, dilation, groups)
    np.testing.assert_array_equal(bits(yb), bits(expect + round_to(b, BF16)[:, None, None]))
    f32 = Float32Ops().conv2d("conv", x, w, b, stride, padding, dilation, groups)
    direct = direct_conv(x, w, st, pads, dil, groups) + b[:, None, None]
    np.testing.assert_allclose(f32, direct, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 1),
                                                            (1, "same", 2, 2), (2, "same", 1, 1)])
def test_conv1d_is_abfp_linear_over_im2col(stride, padding, dilation, groups):
    rng = np.random.default_rng(3)
    x, w = rng_array(rng, 2, 4, 11), rng_array(rng, 6, 4 // groups, 3)
    if padding == "same":
        pads = [same_pads(11, 3, stride, dilation)]
    else:
        pads = [(padding, padding)]
    y = TileOps(CFG).conv1d("c1", x, w, stride=stride, padding=padding, dilation=dilation,
                            groups=groups)  # fmt: skip
    expect = reference_conv(x, w, CFG, "c1", (stride,), pads, (dilation,), groups)
    np.testing.assert_array_equal(bits(y), bits(expect))


def test_matmul_float32_unless_opted_in_then_tile():
    rng = np.random.default_rng(4)
    a, b = rng_array(rng, 2, 3, 5, 12), rng_array(rng, 2, 3, 12, 4)
    off = TileOps(CFG).matmul("qk", a, b)
    np.testing.assert_array_equal(bits(off), bits(np.matmul(a, b)))
    policy = LayerPolicy(CFG, [{"pattern": "qk", "matmul": True}])
    ops = TileOps(policy, seed=2)
    ops.batch_start = 4
    y = ops.matmul("qk", a, b)
    for i, j in itertools.product(range(2), range(3)):
        product = (4 + i) * 3 + j  # absolute (sample, head) index
        expect = abfp_linear(a[i, j], b[i, j].T, CFG, seed=2, stream=expected_stream("qk"),
                             batch_offset=product * 5)  # fmt: skip
        np.testing.assert_array_equal(bits(y[i, j]), bits(expect))


@pytest.mark.parametrize("fmt", [BF16, FloatFormat(8, 3), FloatFormat(8, 22), FP32, FP16],
                         ids=lambda f: f.name)
def test_round_float32_equals_round_to_on_every_kind_of_value(fmt):
    rng = np.random.default_rng(9)
    patterns = rng.integers(0, 1 << 32, size=200_000, dtype=np.uint64).astype(np.uint32)
    edges = [0, 0x80000000, 0x7F800000, 0xFF800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x00000001,
             0x007FFFFF, 0x00008000, 0x00018000, 0x3F808000, 0x3F818000, 0x7FC00001, 0xFFFFFFFF,
             0x7F7F8000, 0x7F7F7FFF]  # fmt: skip
    x = np.concatenate([patterns, np.array(edges, np.uint32)]).view(np.float32)
    np.testing.assert_array_equal(bits(round_float32(x, fmt)), bits(round_to(x, fmt)))


def test_digital_rounds_to_bf16_on_the_tile_only():
    x = np.float32([1.0 + 2.0**-9, 3.14159, -1e-3])
    np.testing.assert_array_equal(bits(TileOps(CFG).digital(x)), bits(round_to(x, BF16)))
    np.testing.assert_array_equal(bits(Float32Ops().digital(x)), bits(x))


def tiny_forward(ops, batch):
    """A model with a sequence linear, a conv and an opted-in matmul (chunk test)."""
    rng = np.random.default_rng(10)
    w1, wc = rng_array(rng, 8, 6), rng_array(rng, 2, 3, 3, 3)
    seq, img = batch
    h = ops.linear("seq", seq, w1)  # (B, 4, 8)
    att = ops.matmul("att", h, np.swapaxes(h, -1, -2))
    conv = ops.conv2d("conv", img, wc, padding=1)
    return np.concatenate([h.reshape(len(seq), -1), att.reshape(len(seq), -1),
                           conv.reshape(len(seq), -1)], axis=1)  # fmt: skip


def test_chunked_run_equals_whole_run_bit_for_bit():
    rng = np.random.default_rng(5)
    seq, img = rng_array(rng, 7, 4, 6), rng_array(rng, 7, 3, 5, 5)
    policy = LayerPolicy(CFG, [{"pattern": "att", "matmul": True}])
    whole = tiny_forward(TileOps(policy, seed=3), (seq, img))
    ops = TileOps(policy, seed=3)
    parts = []
    for start, stop in ((0, 2), (2, 3), (3, 7)):
        ops.batch_start = start
        parts.append(tiny_forward(ops, (seq[start:stop], img[start:stop])))
    np.testing.assert_array_equal(bits(np.concatenate(parts)), bits(whole))
    ops.batch_start = 0
    shifted = tiny_forward(ops, (seq[2:], img[2:]))  # wrong batch_start: other noise
    assert not np.array_equal(bits(shifted), bits(whole[2:]))


def test_layer_noise_independent_of_call_order_and_other_layers():
    rng = np.random.default_rng(6)
    x, wa, wb = rng_array(rng, 5, 16), rng_array(rng, 4, 16), rng_array(rng, 4, 16)
    alone = TileOps(CFG, seed=1).linear("a", x, wa)
    ops = TileOps(CFG, seed=1)
    ops.linear("b", x, wb)
    ops.linear("other", x, wa * 2)
    after = ops.linear("a", x, wa)
    np.testing.assert_array_equal(bits(after), bits(alone))
    renamed = TileOps(CFG, seed=1).linear("a2", x, wa)
    assert not np.array_equal(bits(renamed), bits(alone))  # another name, another stream


def test_weights_are_quantized_once_and_a_changed_weight_is_an_error():
    rng = np.random.default_rng(7)
    x, w = rng_array(rng, 3, 10), rng_array(rng, 4, 10)
    ops = TileOps(CFG)
    first = ops.linear("fc", x, w)
    again = ops.linear("fc", x, w.copy())  # equal values, another array: the same layer
    np.testing.assert_array_equal(bits(first), bits(again))
    assert len(ops._weights) == 1
    w[0, 0] += 1.0  # changed in place
    with pytest.raises(ValueError, match="'fc'.*differ from the weights"):
        ops.linear("fc", x, w)
    with pytest.raises(ValueError, match="'fc'.*differ"):
        ops.linear("fc", x[:, :8], w[:, :8])


@pytest.mark.parametrize("ops", [TileOps(CFG), Float32Ops()], ids=["tile", "float32"])
def test_nan_in_a_layer_input_names_layer_and_index(ops):
    x = np.zeros((2, 3, 4, 4), np.float32)
    x[1, 2, 0, 3] = np.nan
    with pytest.raises(ValueError, match=r"layer 'stem': input x\[1, 2, 0, 3\] = nan"):
        ops.conv2d("stem", x, np.ones((2, 3, 3, 3), np.float32))
    v = np.ones((2, 5), np.float32)
    v[0, 4] = np.inf
    with pytest.raises(ValueError, match=r"layer 'fc': input x\[0, 4\] = inf"):
        ops.linear("fc", v, np.ones((3, 5), np.float32))
    w = np.ones((3, 5), np.float32)
    w[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"layer 'fc': weight w\[1, 0\] = nan"):
        ops.linear("fc", np.ones((2, 5)), w)


BAD_CONVS = [
    (dict(x=(2, 3, 5, 5), w=(4, 2, 3, 3)), "w.shape\\[1\\] = 3"),
    (dict(x=(2, 4, 5, 5), w=(3, 2, 3, 3), groups=2), "divisible by groups"),
    (dict(x=(2, 3, 5, 5), w=(4, 3, 7, 3)), "kernel spans 7 positions.*axis 0.*only 5"),
    (dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), dilation=3), "kernel spans 7"),
    (dict(x=(2, 3, 5), w=(4, 3, 3, 3)), "conv2d takes x \\(B, C, H, W\\)"),
    (dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), stride=0), "stride must be an int >= 1"),
    (dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), padding=-1), "padding must be an int >= 0"),
    (dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), padding="full"), "padding must be an int, 'same'"),
    (dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), groups=0), "groups must be an int >= 1"),
    (dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), stride=(1, 2, 3)), "stride must be an int >= 1 or 2"),
]


@pytest.mark.parametrize("spec,message", BAD_CONVS)
def test_conv_the_tile_cannot_take_is_a_clear_error(spec, message):
    spec = dict(spec)
    x, w = np.ones(spec.pop("x"), np.float32), np.ones(spec.pop("w"), np.float32)
    for ops in (TileOps(CFG), Float32Ops()):
        with pytest.raises(ValueError, match="layer 'cv': .*" + message):
            ops.conv2d("cv", x, w, **spec)


def test_bad_linear_and_matmul_shapes():
    ops = TileOps(CFG)
    with pytest.raises(ValueError, match=r"layer 'fc': weight shape \(3, 4\) is not \(N, K=5\)"):
        ops.linear("fc", np.ones((2, 5)), np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"layer 'fc': bias shape \(4,\) is not \(3,\)"):
        ops.linear("fc", np.ones((2, 5)), np.ones((3, 5)), np.ones(4))
    with pytest.raises(ValueError, match="layer 'mm': a .* inner sizes differ"):
        ops.matmul("mm", np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="layer 'mm': leading dims"):
        ops.matmul("mm", np.ones((2, 2, 3)), np.ones((3, 3, 2)))
    with pytest.raises(TypeError, match="layer 'fc': input x must be a real array"):
        ops.linear("fc", np.array([["a"]]), np.ones((1, 1)))


def test_overflow_on_the_tile_names_the_layer():
    with pytest.raises(ValueError, match=r"layer 'fc': x\[0, 0\] = .* overflows bf16"):
        TileOps(CFG).linear("fc", np.float32([[3.4e38, 1.0]]), np.ones((2, 2), np.float32))


def test_float32_layer_switch_keeps_a_layer_off_the_tile():
    rng = np.random.default_rng(8)
    x, w = rng_array(rng, 3, 10), rng_array(rng, 4, 10)
    ops = TileOps(LayerPolicy(CFG, [{"pattern": "head", "float32": True}]))
    np.testing.assert_array_equal(bits(ops.linear("head", x, w)), bits(x @ w.T))
    assert not np.array_equal(bits(ops.linear("body", x, w)), bits(x @ w.T))
