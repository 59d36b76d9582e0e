"""What every shipped model shares: its spec, its evaluation data, its errors and its metrics."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.nn.evaluate import slice_samples
from simulator.nn.stats import sqnr_db


class ModelUnavailable(RuntimeError):
    """A package (or Debian data package) that a shipped model needs is not installed."""


class ModelFileError(RuntimeError):
    """A model's weight or data file is missing or corrupt; the message names the file."""


@dataclass(frozen=True)
class EvalData:
    """A model's labelled evaluation set.

    Attributes
    ----------
    inputs : numpy.ndarray or tuple of numpy.ndarray
        Forward-pass inputs; every array is sliced on axis 0 to make a batch.
    labels : numpy.ndarray
        One label per sample (axis 0 of ``inputs``), as ``metrics`` reads them.
    batch_size : int
        Default number of samples per forward pass.
    """

    inputs: Any
    labels: np.ndarray
    batch_size: int

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, start: int, stop: int):
        """The inputs of samples ``start:stop``, in the form ``forward`` takes."""
        return slice_samples(self.inputs, start, stop)


@dataclass(frozen=True)
class ModelSpec:
    """A shipped model: what it is, what it needs, and how to load it.

    Attributes
    ----------
    name, description : str
    metric : str
        Name of the primary task metric in the dict ``LoadedModel.metrics`` returns.
    requires : tuple of str
        Import names of the packages the model needs.
    install_hint : str
        The command that installs them.
    load : callable
        ``load() -> LoadedModel``; raises :class:`ModelUnavailable` or :class:`ModelFileError`.
    """

    name: str
    description: str
    metric: str
    requires: tuple[str, ...]
    install_hint: str
    load: Callable[[], Any]


class LoadedModel:
    """A loaded shipped model: its parameters, evaluation data and calibration batch.

    Subclasses set ``name`` and ``layer_names`` (every ops layer name, in forward order) and
    implement ``forward(ops, batch)``; ``metrics`` defaults to :func:`classification_metrics`.
    """

    name: str
    layer_names: list[str]

    def __init__(self, params: dict, data: EvalData, calibration):
        self._params = params
        self._data = data
        self._calibration = calibration

    def forward(self, ops, batch) -> np.ndarray:
        raise NotImplementedError

    def eval_data(self) -> EvalData:
        return self._data

    def calibration_batch(self):
        """One batch (in the form ``forward`` takes) for gain calibration."""
        return self._calibration

    def metrics(self, outputs, labels, reference_outputs) -> dict[str, float]:
        """``top1``, ``agreement`` with float32 and logit ``sqnr_db``."""
        return classification_metrics(outputs, labels, reference_outputs)


def require(name: str, packages: tuple[str, ...], install_hint: str) -> None:
    """Raise :class:`ModelUnavailable` naming ``install_hint`` if a package is not importable."""
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ModelUnavailable(
            f"model {name!r} needs the package(s) {', '.join(missing)}; install with: "
            f"{install_hint}"
        )


def package_file(package: str, relative: str, install_hint: str) -> Path:
    """Path of a data file inside an installed package (without importing the package)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"package {package!r} is not installed; install with: {install_hint}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing (reinstall with: {install_hint})")
    return path


def as_float32(array, what: str, path: Path) -> np.ndarray:
    """A finite float32 copy of a stored weight, or ModelFileError naming the file."""
    out = np.asarray(array, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ModelFileError(f"{path}: {what} holds NaN or inf")
    return out


def expect_shape(array: np.ndarray, shape: tuple[int, ...], what: str, path: Path) -> np.ndarray:
    """``array`` if it has ``shape``, else ModelFileError naming the file and the tensor."""
    if array.shape != shape:
        raise ModelFileError(f"{path}: {what} has shape {array.shape}, expected {shape}")
    return array


def top1(logits: np.ndarray) -> np.ndarray:
    """Index of the largest logit per row."""
    return np.argmax(np.asarray(logits), axis=-1)


def classification_metrics(
    logits: np.ndarray, labels: np.ndarray, reference_logits: np.ndarray
) -> dict[str, float]:
    """top1 (accuracy), agreement (top-1 equal to float32's) and logit SQNR (dB)."""
    predicted = top1(logits)
    return {
        "top1": float(np.mean(predicted == labels)),
        "agreement": float(np.mean(predicted == top1(reference_logits))),
        "sqnr_db": sqnr_db(reference_logits, logits),
    }
