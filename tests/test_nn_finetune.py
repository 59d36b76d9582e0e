"""Finetuning for the tile (simulator.nn.finetune): DNF histograms, QAT forward, CLI."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from simulator import BF16, TileConfig, abfp_linear  # noqa: E402
from simulator.nn import LayerPolicy  # noqa: E402
from simulator.nn import finetune as ft  # noqa: E402
from simulator.nn.__main__ import main  # noqa: E402
from simulator.nn.evaluate import evaluate  # noqa: E402
from simulator.nn.models import fmnist_cnn, minilm  # noqa: E402
from simulator.nn.models._common import ModelUnavailable  # noqa: E402
from simulator.nn.ops import Float32Ops, round_float32, stream_id  # noqa: E402

needs_fmnist = pytest.mark.skipif(not fmnist_cnn.DATA_DIR.is_dir(),
                                  reason="dataset-fashion-mnist is not installed")  # fmt: skip
SMALL = dict(train_limit=128, batch_size=64, histogram_batch=32, eval_limit=40, progress=False)
SMALL_ARGS = ["--train-limit", "128", "--histogram-batch", "32", "--eval-limit", "40"]


# ---- DNF histogram -----------------------------------------------------------------------
def test_histogram_hand_case_four_bins():
    # min -1, max 1, 4 bins: edges -1, -0.5, 0, 0.5, 1. -1 -> bin 0; 0, 0 -> bin 2 (a left
    # edge belongs to its bin); 0.5 -> bin 3; 1 -> bin 3 (the last bin holds its right edge).
    h = ft.NoiseHistogram.from_differences("L", [[0.0, 1.0], [0.5, -1.0], [0.0, 0.0]], bins=4)
    # 0, 1, 0.5, -1, 0, 0: counts 1, 0, 3, 2; +0.5 each: 1.5, 0.5, 3.5, 2.5, sum 8
    assert h.edges.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert h.counts.tolist() == [1, 0, 3, 2]
    assert h.probabilities.tolist() == (np.array([3, 1, 7, 5]) / 16).tolist()


def test_histogram_hand_case_hundred_bins():
    # 0, 1, ..., 200 over 100 bins of width 2: bin k holds 2k and 2k + 1, the last also 200.
    h = ft.NoiseHistogram.from_differences("L", np.arange(201, dtype=np.float32))
    assert h.edges.tolist() == [2.0 * k for k in range(101)]
    assert h.counts.tolist() == [2] * 99 + [3]
    # (count + 0.5) / (201 + 100 * 0.5): 2.5 / 251 = 5 / 502 and 3.5 / 251 = 7 / 502
    assert h.probabilities.tolist() == (np.array([5] * 99 + [7]) / 502).tolist()


def test_histogram_all_equal_draws_that_value():
    h = ft.NoiseHistogram.from_differences("L", np.full(10, 0.25))
    assert h.counts.tolist() == [10] + [0] * 99
    draws = h.sampler()((1000,), torch.Generator().manual_seed(0))
    assert set(draws.tolist()) == {0.25}


def test_sampler_follows_the_histogram():
    h = ft.NoiseHistogram.from_differences("L", [0.0, 1.0, 0.5, -1.0, 0.0, 0.0], bins=4)
    count = 200_000
    draws = h.sampler()((count,), torch.Generator().manual_seed(1)).double().numpy()
    assert draws.min() >= -1.0 and draws.max() <= 1.0
    bins = np.clip(np.floor((draws + 1.0) / 0.5).astype(int), 0, 3)
    expected = np.array([3, 1, 7, 5]) / 16
    share = np.bincount(bins, minlength=4) / count
    assert np.all(np.abs(share - expected) < 5 * np.sqrt(expected / count))
    within = (draws + 1.0) / 0.5 - bins  # position in its bin: uniform on [0, 1)
    assert abs(within.mean() - 0.5) < 5 * np.sqrt(1 / 12 / count)


def test_histogram_refuses_non_finite():
    with pytest.raises(ValueError, match=r"layer 'conv2'.*difference\[1\] = nan"):
        ft.NoiseHistogram.from_differences("conv2", [0.0, np.nan])


def _net():
    params, _ = fmnist_cnn.read_weights(fmnist_cnn.WEIGHTS)
    return ft.TASKS["fmnist-cnn"].build(params)


def test_histogram_batch_with_nan_is_refused():
    net, layers = _net()
    batch = np.zeros((3, 1, 28, 28), np.float32)
    batch[1, 0, 4, 5] = np.nan
    with pytest.raises(ValueError, match=r"batch: sample 1 holds nan at index \[0, 4, 5\]"):
        ft.build_histograms(net, layers, batch, LayerPolicy(TileConfig(n=8)))


def test_histograms_are_tile_minus_float32_of_each_layer():
    net, layers = _net()
    rng = np.random.default_rng(0)
    batch = rng.random((4, 1, 28, 28), dtype=np.float32)
    cfg = TileConfig(n=8, gain=8.0)
    hist = ft.build_histograms(net, layers, batch, LayerPolicy(cfg), seed=3)
    # conv1 by hand: im2col of the batch, tile product on it, plus bias as TileOps adds it
    w = net.conv1.weight.detach().numpy()
    b = net.conv1.bias.detach().numpy()
    cols = torch.nn.functional.unfold(torch.from_numpy(batch), 3, padding=1)
    cols = cols.transpose(1, 2).reshape(-1, 9).numpy()
    exact = abfp_linear(cols, w.reshape(16, -1), cfg, seed=3, stream=stream_id("conv1"))
    exact = round_float32(exact, BF16) + round_float32(b, BF16)
    plain = cols @ w.reshape(16, -1).T + b
    d = (exact - plain).astype(np.float64)
    assert hist["conv1"].edges[0] == d.min() and hist["conv1"].edges[-1] == d.max()
    assert hist["conv1"].counts.sum() == d.size == 4 * 16 * 28 * 28
    assert set(hist) == {"conv1", "conv2", "fc"}


# ---- QAT forward against the bit-exact tile ---------------------------------------------
@pytest.mark.parametrize("n, k, bits, gain", [
    (128, 300, (8, 8, 8), 8.0), (8, 144, (6, 6, 8), 8.0), (128, 1568, (6, 6, 8), 1.0),
    (128, 9, (6, 6, 8), 2.0),
])  # fmt: skip
def test_qat_forward_without_noise_is_bit_exact(n, k, bits, gain):
    cfg = TileConfig(n=n, bx=bits[0], bw=bits[1], by=bits[2], gain=gain, noise="none")
    rng = np.random.default_rng(n + k)
    x = (rng.standard_normal((64, k)) * rng.random((64, 1)) * 4).astype(np.float32)
    w = rng.standard_normal((12, k)).astype(np.float32)
    exact = abfp_linear(x, w, cfg)
    qat = ft.tile_product(torch.from_numpy(x), torch.from_numpy(w), cfg).numpy()
    assert np.array_equal(exact.view(np.uint32), qat.view(np.uint32))


def test_qat_forward_with_noise_differs_by_at_most_one_adc_code():
    # One tile (K <= n): y = bf16(code * sx * sw * K). The two noise draws are independent and
    # uniform over +-0.5 LSB, so the codes differ by at most 1, and are equal with probability
    # 1 - E|e1 - e2| = 2/3 when the analog value's fraction is spread evenly.
    cfg = TileConfig(n=128, bx=8, bw=8, by=8, gain=8.0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((400, 100)).astype(np.float32)
    w = rng.standard_normal((25, 100)).astype(np.float32)
    exact, trace = abfp_linear(x, w, cfg, seed=0, stream=0, trace=True)
    qat = ft.tile_product(torch.from_numpy(x), torch.from_numpy(w), cfg,
                          torch.Generator().manual_seed(0)).numpy()  # fmt: skip
    lsb = (trace.x_scale[:, None, 0].astype(np.float64) * trace.w_scale[None, :, 0]
           * float(cfg.rescale_constant))  # fmt: skip
    slack = (np.abs(exact) + np.abs(qat)) * 2.0**-8 / lsb  # bf16 rounding, half an ulp each
    assert np.all(np.abs(qat - exact) / lsb <= 1 + slack)
    equal = np.mean(exact.view(np.uint32) == qat.view(np.uint32))
    assert abs(equal - 2 / 3) < 0.03, equal


def test_qat_network_forward_without_noise_equals_tileops():
    net, layers = _net()
    model_params, meta = fmnist_cnn.read_weights(fmnist_cnn.WEIGHTS)
    cfg = TileConfig(n=8, gain=8.0, noise="none")
    hooks, _ = ft.METHODS["qat"](net, layers, LayerPolicy(cfg), None, 0, torch.Generator())
    batch = np.random.default_rng(2).random((6, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(batch)).numpy()
    for h in hooks:
        h.remove()
    model = fmnist_cnn.FashionMnistCnn(model_params, meta, None, None)
    want = model.forward(ft.TileOps(LayerPolicy(cfg)), batch)
    assert np.array_equal(want.view(np.uint32), got.view(np.uint32))


def test_qat_gradient_reaches_every_layer():
    # The digital operands are rounded to bf16 by editing bit patterns, which autograd cannot
    # differentiate: QAT passes their gradient straight through, so every layer trains.
    net, layers = _net()
    hooks, _ = ft.METHODS["qat"](net, layers, LayerPolicy(TileConfig(n=8, gain=8.0)), None, 0,
                                 torch.Generator().manual_seed(0))  # fmt: skip
    batch = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    ft.TASKS["fmnist-cnn"].loss(net(torch.from_numpy(batch)), np.arange(4)).backward()
    for h in hooks:
        h.remove()
    for name, module in layers.items():
        assert module.weight.grad is not None, name
        assert torch.count_nonzero(module.weight.grad) > 0, name


# ---- the finetuning loop ----------------------------------------------------------------
@needs_fmnist
@pytest.mark.parametrize("method", ["dnf", "qat"])
def test_finetune_is_deterministic(method):
    policy = LayerPolicy(TileConfig(n=8, gain=8.0, bx=6, bw=6))
    runs = [ft.finetune("fmnist-cnn", method, policy, epochs=1, seed=4, **SMALL)
            for _ in range(2)]  # fmt: skip
    for key in runs[0].params:
        assert runs[0].params[key].tobytes() == runs[1].params[key].tobytes(), key
    start, _ = fmnist_cnn.read_weights(fmnist_cnn.WEIGHTS)
    assert any(not np.array_equal(start[k], runs[0].params[k]) for k in start)  # it trained


@needs_fmnist
def test_cli_small_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["finetune", "--model", "fmnist-cnn", "--method", "dnf", "--epochs", "1",
               "--n", "8", "--gain", "8", "--bits", "6,6,8", "--seed", "1", "--out", str(out),
               *SMALL_ARGS])  # fmt: skip
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["finetune.json", "weights.npz"]
    figures = json.loads((out / "finetune.json").read_text())
    assert [e["epoch"] for e in figures["epochs"]] == [0, 1]
    assert [h["layer"] for h in figures["histograms"]] == ["conv1", "conv2", "fc"]
    assert "epoch 1: tile top1" in capsys.readouterr().out
    # the weights load back, and their exact-tile evaluation is the run's last figure
    from simulator.nn.evaluate import evaluate

    policy = LayerPolicy.from_dict(figures["policy"])
    ev = evaluate(fmnist_cnn.load(weights=out / "weights.npz"), policy, seeds=[0], limit=40,
                  progress=False)  # fmt: skip
    assert ev.tile[0] == figures["epochs"][1]["tile_runs"][0]
    # and on the command line
    assert main(["evaluate", "--model", "fmnist-cnn", "--weights", str(out / "weights.npz"),
                 "--n", "8", "--gain", "8", "--bits", "6,6,8", "--limit", "40",
                 "--json", str(out / "evaluated.json")]) == 0  # fmt: skip
    evaluated = json.loads((out / "evaluated.json").read_text())
    assert evaluated["tile"][0] == {"seed": 0, **figures["epochs"][1]["tile_runs"][0]}


@pytest.mark.parametrize("argv, message", [
    (["--model", "fmnist-cnn", "--method", "sgd"], "unknown finetuning method 'sgd'"),
    (["--model", "resnet8", "--method", "dnf"], "model 'resnet8' has no finetuning task"),
])  # fmt: skip
def test_cli_refuses_unknown_method_or_model(tmp_path, capsys, argv, message):
    assert main(["finetune", *argv, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@needs_fmnist
def test_cli_refuses_policy_of_another_model(tmp_path, capsys):
    policy = tmp_path / "p.toml"
    policy.write_text('[default]\nn = 8\n[[rules]]\npattern = "stack1.*"\ngain = 4.0\n')
    rc = main(["finetune", "--model", "fmnist-cnn", "--method", "qat", "--policy", str(policy),
               "--out", str(tmp_path / "o"), *SMALL_ARGS])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "pattern 'stack1.*' matches no layer" in err and "conv1, conv2, fc" in err
    assert not (tmp_path / "o").exists()


def test_interrupted_save_leaves_no_file(tmp_path, monkeypatch):
    params, _ = fmnist_cnn.read_weights(fmnist_cnn.WEIGHTS)
    result = ft.FinetuneResult("fmnist-cnn", "dnf", LayerPolicy(), 0, params)
    (tmp_path / "weights.npz").write_bytes(b"previous run")
    task = ft.TASKS["fmnist-cnn"]

    def interrupted(file, params, meta):
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setitem(ft.TASKS, "fmnist-cnn", dataclasses.replace(task, save=interrupted))
    with pytest.raises(KeyboardInterrupt):
        ft.save(result, tmp_path)
    assert os.listdir(tmp_path) == ["weights.npz"]
    assert (tmp_path / "weights.npz").read_bytes() == b"previous run"
    monkeypatch.setitem(ft.TASKS, "fmnist-cnn", task)
    weights, _ = ft.save(result, tmp_path)
    loaded, meta = fmnist_cnn.read_weights(weights)
    assert all(loaded[k].tobytes() == params[k].tobytes() for k in params)
    assert meta["finetune"] == "dnf"


# ---- MiniLM: distilled against its own float32 embeddings -------------------------------
@pytest.fixture(scope="module")
def encoder():
    try:
        return minilm.load()
    except ModelUnavailable as exc:
        pytest.skip(str(exc))


MINILM_SMALL = ["--n", "128", "--gain", "2", "--bits", "6,6,8", "--train-limit", "4",
                "--batch-size", "2", "--histogram-batch", "2", "--eval-limit", "6"]  # fmt: skip


def test_minilm_torch_forward_matches_numpy(encoder):
    net, layers = ft.TASKS["minilm"].build(encoder._params)
    assert sorted(layers) == sorted(n for n in encoder.layer_names if not n.endswith(("qk", "av")))
    ids, mask = encoder.eval_data().batch(0, 6)
    want = encoder.forward(Float32Ops(), (ids, mask))
    with torch.no_grad():
        got = net((torch.from_numpy(ids), torch.from_numpy(mask))).numpy()
    # two float32 implementations (NumPy's and torch's reductions, softmax, GELU): close
    assert np.max(np.abs(got - want)) < 1e-6


@pytest.mark.slow
def test_minilm_finetune_is_deterministic_and_round_trips(encoder, tmp_path):
    argv = ["finetune", "--model", "minilm", "--method", "dnf", "--epochs", "1", "--seed", "3",
            *MINILM_SMALL]  # fmt: skip
    for run in ("a", "b"):
        assert main([*argv, "--out", str(tmp_path / run)]) == 0
    first, second = (tmp_path / run / "weights.safetensors" for run in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    figures = json.loads((tmp_path / "a" / "finetune.json").read_text())
    trained = minilm.load(weights=first)
    assert any(not np.array_equal(encoder._params[k], trained._params[k]) for k in trained._params)
    assert all(np.array_equal(encoder._params[k], trained._params[k])
               for k in ("embeddings.word", "embeddings.position", "embeddings.type0"))
    ev = evaluate(trained, LayerPolicy.from_dict(figures["policy"]), seeds=[0], limit=6,
                  progress=False)  # fmt: skip
    last = figures["epochs"][1]["tile_runs"][0]  # polarity: NaN, as no sentence is evaluated
    assert all(ev.tile[0][k] == last[k] for k in ("spearman", "cosine"))


def test_minilm_finetune_refuses_attention_products_on_the_tile(encoder, tmp_path):
    policy = LayerPolicy(TileConfig(n=128), [{"pattern": "*.attn.qk", "matmul": True}])
    with pytest.raises(ValueError, match=r"keeps QK\^T and attention x V in float32.*"
                                         r"encoder\.0\.attn\.qk"):  # fmt: skip
        ft.finetune("minilm", "qat", policy, train_limit=2, eval_limit=2, progress=False)
