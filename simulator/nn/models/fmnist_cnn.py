"""A small CNN of the project's own, trained on Fashion-MNIST; weights in ``fmnist_cnn.npz``.

Graph (NCHW, 28x28 grey images scaled ``pixel / 255``)::

    conv1  conv 3x3 1 -> 16, padding 1, ReLU, 2x2 max pool     14x14
    conv2  conv 3x3 16 -> 32, padding 1, ReLU, 2x2 max pool    7x7
    fc     flatten (C, H, W order), linear 1568 -> 10 (logits)

The weights were trained with ``scripts/train_fmnist_cnn.py`` (PyTorch on CPU, deterministic
algorithms, one thread, fixed seed); the ``.npz`` holds the float32 tensors and a ``meta`` JSON
string with the command, seed, epochs and the float32 test accuracy PyTorch measured.

Evaluation data: the 10 000 test images of Fashion-MNIST from the Debian package
``dataset-fashion-mnist`` (idx files, gzip-compressed or not, in
``/usr/share/datasets/fashion-mnist/``). The calibration batch is the first 256 *training*
images, so calibration never sees the test set. Metrics: ``top1`` (test accuracy),
``agreement`` (top-1 equal to float32's), ``sqnr_db`` (logits).
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import numpy as np

from simulator.nn.models._common import (
    EvalData,
    LoadedModel,
    ModelFileError,
    ModelSpec,
    ModelUnavailable,
    as_float32,
    expect_shape,
)

NAME = "fmnist-cnn"
INSTALL_HINT = "apt-get install dataset-fashion-mnist"
DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
WEIGHTS = Path(__file__).with_name("fmnist_cnn.npz")
SHAPES = {
    "conv1.w": (16, 1, 3, 3),
    "conv1.b": (16,),
    "conv2.w": (32, 16, 3, 3),
    "conv2.b": (32,),
    "fc.w": (10, 32 * 7 * 7),
    "fc.b": (10,),
}
CALIBRATION_IMAGES = 256
IDX_MAGIC = {1: 0x801, 3: 0x803}  # unsigned-byte labels (1-D) and images (3-D)


def _idx_path(data_dir: Path, stem: str) -> Path:
    for candidate in (data_dir / stem, data_dir / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise ModelFileError(f"Fashion-MNIST file {data_dir / stem}[.gz] is missing")


def read_idx(path: Path, ndim: int, count: int | None = None) -> np.ndarray:
    """The uint8 array of an idx file (gzip or not), optionally only its first ``count`` items.

    Raises
    ------
    ModelFileError
        Wrong magic number, rank or size (the message names the file).
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            header = stream.read(4 + 4 * ndim)
            if len(header) < 4 + 4 * ndim:
                raise ModelFileError(f"{path}: truncated idx header")
            magic, *dims = np.frombuffer(header, ">u4").tolist()
            if magic != IDX_MAGIC[ndim]:
                raise ModelFileError(f"{path}: not a {ndim}-D uint8 idx file (magic {magic:#x})")
            if count is not None:
                dims[0] = min(dims[0], count)
            size = int(np.prod(dims))
            data = stream.read(size)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ModelFileError(f"{path} is corrupt: {exc}") from None
    if len(data) != size:
        raise ModelFileError(f"{path}: {len(data)} bytes of data, expected {size}")
    return np.frombuffer(data, np.uint8).reshape(dims)


def load_split(data_dir: Path, split: str, count: int | None = None):
    """Images (N, 1, 28, 28) float32 ``pixel / 255`` and int64 labels of "train" or "t10k"."""
    images = read_idx(_idx_path(data_dir, f"{split}-images-idx3-ubyte"), 3, count)
    labels = read_idx(_idx_path(data_dir, f"{split}-labels-idx1-ubyte"), 1, count)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ModelFileError(f"{data_dir}: {split} images {images.shape}, labels {labels.shape}")
    return (images[:, None] / np.float32(255.0)).astype(np.float32), labels.astype(np.int64)


def _max_pool2(x: np.ndarray) -> np.ndarray:
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def read_weights(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The float32 tensors of ``path`` (shapes checked) and its metadata."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            params = {
                key: expect_shape(as_float32(stored[key], key, path), shape, key, path)
                for key, shape in SHAPES.items()
            }
            meta = json.loads(str(stored["meta"]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"model file {path} is missing or corrupt: {exc}") from None
    return params, meta


class FashionMnistCnn(LoadedModel):
    """The loaded model (see the module docstring); ``meta``: the training record."""

    name = NAME
    layer_names = ["conv1", "conv2", "fc"]

    def __init__(self, params: dict, meta: dict, data: EvalData, calibration: np.ndarray):
        super().__init__(params, data, calibration)
        self.meta = meta

    def forward(self, ops, batch: np.ndarray) -> np.ndarray:
        """Logits (B, 10) of a batch of images (B, 1, 28, 28)."""
        p = self._params
        x = batch
        for layer in ("conv1", "conv2"):
            x = ops.conv2d(layer, x, p[f"{layer}.w"], p[f"{layer}.b"], padding=1)
            x = _max_pool2(np.maximum(ops.digital(x), 0))
        return ops.linear("fc", x.reshape(len(x), -1), p["fc.w"], p["fc.b"])


def load(weights: Path | None = None, data_dir: Path | None = None) -> FashionMnistCnn:
    """Load the committed weights and the Fashion-MNIST test set.

    Raises
    ------
    ModelUnavailable
        The Debian package ``dataset-fashion-mnist`` is not installed (no ``data_dir``).
    ModelFileError
        The weights or an idx file is missing or corrupt (named in the message).
    """
    data_dir = Path(data_dir) if data_dir else DATA_DIR
    if not data_dir.is_dir():
        raise ModelUnavailable(
            f"model {NAME!r} needs Fashion-MNIST in {data_dir}; install with: {INSTALL_HINT}"
        )
    params, meta = read_weights(Path(weights) if weights else WEIGHTS)
    images, labels = load_split(data_dir, "t10k")
    calibration, _ = load_split(data_dir, "train", CALIBRATION_IMAGES)
    return FashionMnistCnn(params, meta, EvalData(images, labels, batch_size=1000), calibration)


SPEC = ModelSpec(
    name=NAME,
    description="3-layer CNN trained for this project on Fashion-MNIST, 10 000 test images",
    metric="top1",
    requires=(),
    install_hint=INSTALL_HINT,
    load=load,
)
