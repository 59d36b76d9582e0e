"""simulator.nn.torch: converted layers equal abfp_linear bit for bit; restore; summary."""

import subprocess
import sys

import numpy as np
import pytest

from simulator import BF16, TileConfig, abfp_linear
from simulator.formats import round_to
from simulator.nn import LayerPolicy
from tests.test_nn_ops import expected_stream, reference_conv, same_pads

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install torch==2.13.0")
from simulator.nn.torch import convert, restore, summary, tile_ops  # noqa: E402

nn = torch.nn
CFG = TileConfig(n=8, gain=2.0, noise="uniform")


def bits(a):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else a
    return np.asarray(a, np.float32).view(np.uint32)


def numpy(t):
    return None if t is None else t.detach().numpy()


def with_bias(y, bias, axis):
    if bias is None:
        return y
    shape = [1] * y.ndim
    shape[axis] = -1
    return round_to(y, BF16) + round_to(numpy(bias), BF16).reshape(shape)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def test_importing_simulator_nn_does_not_import_torch():
    code = "import sys, simulator.nn, simulator.nn.torch; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_torch_names_the_install_command(monkeypatch):
    import simulator.nn.torch as adapter

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0"):
        adapter.import_torch()


@pytest.mark.parametrize("bias", [True, False])
def test_linear_bit_exact(bias):
    model = nn.Sequential(nn.Linear(20, 6, bias=bias), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(4, 5, 20)
    first, second = model[0], model[2]
    model = convert(model, CFG, seed=4)
    tile_ops(model).batch_start = 2
    y = model(x)
    h = with_bias(abfp_linear(x.numpy(), numpy(first.weight), CFG, seed=4,
                              stream=expected_stream("0"), batch_offset=2 * 5),
                  first.bias, -1)  # fmt: skip
    h = np.maximum(h, 0)
    expect = with_bias(abfp_linear(h, numpy(second.weight), CFG, seed=4,
                                   stream=expected_stream("2"), batch_offset=2 * 5),
                       second.bias, -1)  # fmt: skip
    np.testing.assert_array_equal(bits(y), bits(expect))


CONVS = [
    (nn.Conv2d, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1)),
    (nn.Conv2d, dict(in_channels=4, out_channels=4, kernel_size=(3, 2), padding=(2, 1),
                     dilation=(2, 1), groups=2, bias=False)),
    (nn.Conv2d, dict(in_channels=4, out_channels=8, kernel_size=2, padding="same", dilation=2,
                     groups=4)),
    (nn.Conv1d, dict(in_channels=3, out_channels=6, kernel_size=3, stride=2, padding=2,
                     dilation=2, groups=3)),
    (nn.Conv1d, dict(in_channels=2, out_channels=3, kernel_size=4, padding="same")),
]


@pytest.mark.parametrize("cls,kwargs", CONVS)
def test_conv_bit_exact(cls, kwargs):
    conv = cls(**kwargs)
    dims = 2 if cls is nn.Conv2d else 1
    x = torch.randn((2, kwargs["in_channels"]) + (9, 8)[:dims])
    model = convert(nn.Sequential(conv), CFG)
    y = model(x)
    if conv.padding == "same":
        pads = [same_pads(s, k, 1, d) for s, k, d in zip(x.shape[2:], conv.kernel_size,
                                                          conv.dilation, strict=True)]  # fmt: skip
    else:
        pads = [(p, p) for p in conv.padding]
    expect = reference_conv(x.numpy(), numpy(conv.weight), CFG, "0", conv.stride, pads,
                            conv.dilation, conv.groups)  # fmt: skip
    np.testing.assert_array_equal(bits(y), bits(with_bias(expect, conv.bias, 1)))


def attention_reference(mha, q_in, k_in, v_in, mask, name, seed):
    """MultiheadAttention through abfp_linear, step by step as docs/networks.md lists them."""
    e, heads = mha.embed_dim, mha.num_heads
    dim = e // heads
    w, b = numpy(mha.in_proj_weight), numpy(mha.in_proj_bias)

    def linear(layer, x, weight, bias):
        rows = int(np.prod(x.shape[1:-1]))
        y = abfp_linear(x, weight, CFG, seed=seed, stream=expected_stream(f"{name}.{layer}"),
                        batch_offset=0 * rows)  # fmt: skip
        return with_bias(y, torch.from_numpy(bias), -1)

    batch, length, source = q_in.shape[0], q_in.shape[1], k_in.shape[1]
    q = linear("q", q_in, w[:e], b[:e]).reshape(batch, length, heads, dim).transpose(0, 2, 1, 3)
    k = linear("k", k_in, w[e:2 * e], b[e:2 * e]).reshape(batch, source, heads, dim)
    v = linear("v", v_in, w[2 * e:], b[2 * e:]).reshape(batch, source, heads, dim)
    k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
    out, weights = reference_attend(q, k, v, mask[:, None, None], name, seed, dim)
    out = out.transpose(0, 2, 1, 3).reshape(batch, length, e)
    return linear("out_proj", out, numpy(mha.out_proj.weight), numpy(mha.out_proj.bias)), weights


def reference_attend(q, k, v, excluded, name, seed, dim):
    """softmax(bf16(q) / sqrt(dim) @ k^T + mask) @ v, each (M, K) @ (K, N) by abfp_linear."""

    def matmul(layer, a, bm):
        out = np.empty(a.shape[:-1] + bm.shape[-1:], np.float32)
        for i in range(a.shape[0]):
            for h in range(a.shape[1]):
                out[i, h] = abfp_linear(a[i, h], bm[i, h].T, CFG, seed=seed,
                                        stream=expected_stream(f"{name}.{layer}"),
                                        batch_offset=(i * a.shape[1] + h) * a.shape[2])
        return out

    scores = matmul("qk", round_to(q, BF16) * np.float32(1 / np.sqrt(dim)), k.swapaxes(-1, -2))
    scores = round_to(scores, BF16) + np.where(excluded, -np.inf, 0).astype(np.float32)
    e_ = np.exp(scores - scores.max(-1, keepdims=True))
    weights = (e_ / e_.sum(-1, keepdims=True)).astype(np.float32)
    return matmul("av", round_to(weights, BF16), v), weights


def test_multihead_attention_bit_exact_when_opted_in():
    mha = nn.MultiheadAttention(16, 4, batch_first=True)
    x, mem = torch.randn(2, 5, 16), torch.randn(2, 3, 16)
    mask = torch.tensor([[False, False, True], [False, False, False]])
    policy = LayerPolicy(CFG, [{"pattern": "attn.qk", "matmul": True},
                               {"pattern": "attn.av", "matmul": True}])  # fmt: skip
    model = nn.ModuleDict({"attn": mha})
    model = convert(model, policy, seed=1, attention=True)
    out, weights = model["attn"](x, mem, mem, key_padding_mask=mask, average_attn_weights=False)
    expect, expect_weights = attention_reference(mha, x.numpy(), mem.numpy(), mem.numpy(),
                                                 mask.numpy(), "attn", 1)  # fmt: skip
    np.testing.assert_array_equal(bits(out), bits(expect))
    np.testing.assert_array_equal(bits(weights), bits(expect_weights))
    assert "attn.qk" in summary(model)


def test_attention_not_converted_unless_asked_and_its_out_proj_left_alone():
    model = nn.ModuleDict({"attn": nn.MultiheadAttention(8, 2), "fc": nn.Linear(8, 2)})
    model = convert(model, CFG)
    assert isinstance(model["attn"], nn.MultiheadAttention)
    assert type(model["attn"].out_proj) is not type(model["fc"])
    assert "attn" not in summary(model)


def test_restore_gives_back_the_original_modules_and_outputs():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    originals = list(model)
    x = torch.randn(2, 2, 6, 6)
    before = model(x)
    keys = list(model.state_dict())
    convert(model, CFG)
    assert list(model.state_dict()) == keys  # parameters shared, keys unchanged
    assert not torch.equal(model(x), before)
    restore(model)
    assert list(model) == originals
    assert torch.equal(model(x), before)


def test_converting_the_root_module_and_summary_rows():
    layer = nn.Linear(4, 2)
    tiled = convert(layer, LayerPolicy(CFG, [{"pattern": "root", "gain": 8.0}]))
    assert tiled is not layer
    rows = summary(tiled).splitlines()
    assert rows[2].split() == ["root", "Linear", "root", "tile", "8", "8/8/8", "8", "uniform:1"]
    assert restore(tiled) is layer


def test_convert_errors():
    with pytest.raises(ValueError, match="holds no nn.Linear"):
        convert(nn.ReLU(), CFG)
    with pytest.raises(ValueError, match="pattern 'head' matches no layer"):
        convert(nn.Sequential(nn.Linear(2, 2)), LayerPolicy(CFG, [{"pattern": "head", "n": 4}]))
    with pytest.raises(ValueError, match="padding_mode 'reflect' is not supported"):
        convert(nn.Sequential(nn.Conv1d(1, 1, 3, padding=1, padding_mode="reflect")), CFG)
    model = convert(nn.Sequential(nn.Linear(3, 2)), CFG)
    with pytest.raises(ValueError, match=r"layer '0': input x\[0, 1\] = nan"):
        model(torch.tensor([[0.0, float("nan"), 1.0]]))


PRECISE = TileConfig(n=16, bx=16, bw=16, by=16, gain=1.0, noise="none", in_fmt="fp32",
                     w_fmt="fp32", scale_fmt="fp32", partial_fmt="fp32", out_fmt="fp32")


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("masks", ["none", "causal", "float", "padding"])
def test_attention_layout_and_masks_follow_pytorch(batch_first, masks):
    """A sanity check of the attention chain against PyTorch's own module, on a nearly exact
    tile (16-bit converters, fp32 formats): only the bf16 digital operands differ."""
    mha = nn.MultiheadAttention(8, 2, batch_first=batch_first)
    shape = (2, 5, 8) if batch_first else (5, 2, 8)
    x = torch.randn(shape)
    kwargs = {"none": {}, "causal": {"attn_mask": nn.Transformer.generate_square_subsequent_mask(5),
                                     "is_causal": True},
              "float": {"attn_mask": torch.randn(5, 5)},
              "padding": {"key_padding_mask": torch.tensor([[False] * 4 + [True], [False] * 5])}}
    policy = LayerPolicy(PRECISE, [{"pattern": "root.[qa][kv]", "matmul": True}])
    with torch.no_grad():
        expect, expect_w = mha(x, x, x, **kwargs[masks])
        tiled = convert(mha, policy, attention=True)
        out, weights = tiled(x, x, x, **kwargs[masks])
    assert out.shape == expect.shape and weights.shape == expect_w.shape
    np.testing.assert_allclose(out.numpy(), expect.numpy(), atol=3e-2)
    np.testing.assert_allclose(weights.numpy(), expect_w.numpy(), atol=1e-2)


def test_scaled_dot_product_attention_follows_pytorch_and_the_policy():
    from simulator.nn.torch import scaled_dot_product_attention

    model = convert(nn.Sequential(nn.Linear(4, 4)), LayerPolicy(
        PRECISE, [{"pattern": "blk.*", "matmul": True}]), sdpa=["blk"])
    ops = tile_ops(model)
    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 6, 4), torch.randn(2, 3, 6, 4)
    cases = [{}, {"is_causal": True}, {"attn_mask": torch.rand(5, 6) > 0.3},
             {"attn_mask": torch.randn(2, 1, 5, 6)}, {"scale": 0.3}]
    for kwargs in cases:
        got = scaled_dot_product_attention(ops, "blk", q, k, v, **kwargs)
        expect = torch.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs)
        np.testing.assert_allclose(got.numpy(), expect.numpy(), atol=3e-2)
    with pytest.raises(ValueError, match="'other.qk' is not one of the model's layer names"):
        scaled_dot_product_attention(ops, "other", q, k, v)


def test_scaled_dot_product_attention_bit_exact():
    from simulator.nn import TileOps
    from simulator.nn.torch import scaled_dot_product_attention

    q, k, v = torch.randn(2, 2, 3, 8), torch.randn(2, 2, 4, 8), torch.randn(2, 2, 4, 8)
    policy = LayerPolicy(CFG, [{"pattern": "s.*", "matmul": True}])
    mask = torch.rand(3, 4) > 0.2
    mask[:, 0] = True
    got = scaled_dot_product_attention(TileOps(policy, seed=2), "s", q, k, v, attn_mask=mask)
    expect = reference_attend(q.numpy(), k.numpy(), v.numpy(), ~mask.numpy(), "s", 2, 8)
    np.testing.assert_array_equal(bits(got), bits(expect[0]))


class _Attend(nn.Module):
    def __init__(self, calls=1, dropout=0.0):
        super().__init__()
        self.calls, self.dropout = calls, dropout

    def forward(self, q, k, v):
        for _ in range(self.calls):
            out = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout, is_causal=True)
        return out


class _Block(nn.Module):
    """A module of one's own that calls PyTorch's scaled_dot_product_attention itself."""

    def __init__(self, **attend):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.attend = _Attend(**attend)

    def forward(self, x):
        h = self.fc(x)
        return self.attend(h, h, h)


def test_convert_routes_a_named_submodules_own_sdpa_calls_to_the_tile():
    from simulator.nn import TileOps
    from simulator.nn.torch import scaled_dot_product_attention

    block = _Block()
    x = torch.randn(2, 2, 5, 8)
    policy = LayerPolicy(CFG, [{"pattern": "attend.*", "matmul": True}])
    with torch.no_grad():
        float_out = block(x)
        model = convert(block, policy, seed=1, sdpa=["attend"])
        got = model(x)
        ops = TileOps(policy.bind(["fc", "attend.qk", "attend.av"]), seed=1)
        h = torch.from_numpy(ops.linear("fc", x.numpy(), block.fc.weight.numpy(),
                                        block.fc.bias.numpy()))
        expect = scaled_dot_product_attention(ops, "attend", h, h, h, is_causal=True)
    np.testing.assert_array_equal(bits(got), bits(expect))
    assert not np.array_equal(bits(got), bits(float_out))
    restore(model)
    with torch.no_grad():
        np.testing.assert_array_equal(bits(model(x)), bits(float_out))  # routes removed


@pytest.mark.parametrize("attend, message", [({"calls": 2}, "more than once"),
                                             ({"dropout": 0.1}, "dropout_p")])
def test_routed_sdpa_refuses_what_the_tile_cannot_run(attend, message):
    model = convert(_Block(**attend), LayerPolicy(CFG), sdpa=["attend"])
    with torch.no_grad(), pytest.raises(ValueError, match=message):
        model(torch.randn(1, 1, 3, 8))
    assert torch._C._len_torch_function_stack() == 0  # the failed forward left no mode behind
