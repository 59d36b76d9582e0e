"""Real networks that ship offline, runnable in float32 and on the tile with the same code.

Registry ``MODELS`` (name -> :class:`ModelSpec`) and :func:`get`. Each model's forward is plain
NumPy that sends every matrix product, and every operand of a digital operation, through an
``ops`` object (``Float32Ops`` or ``TileOps`` of :mod:`simulator.nn.ops`):

- ``resnet8``: MLPerf Tiny ResNet-8 on 20 CIFAR-10 test images (:mod:`.resnet8`);
- ``minilm``: the all-MiniLM-L6-v2 sentence encoder on gensim's Lee document-similarity
  ratings and movie-review polarity sentences (:mod:`.minilm`);
- ``fmnist-cnn``: a small CNN trained for this project on Fashion-MNIST, weights committed
  (:mod:`.fmnist_cnn`).

Loading a model whose package is missing raises :class:`ModelUnavailable` with the install
command; a missing or corrupt model file raises :class:`ModelFileError` naming the file.
"""

from __future__ import annotations

from simulator.nn.models import fmnist_cnn, minilm, resnet8
from simulator.nn.models._common import (
    EvalData,
    LoadedModel,
    ModelFileError,
    ModelSpec,
    ModelUnavailable,
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (resnet8.SPEC, minilm.SPEC, fmnist_cnn.SPEC)
}


def get(name: str) -> ModelSpec:
    """The spec of the shipped model ``name``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones).
    """
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


__all__ = [
    "MODELS",
    "EvalData",
    "LoadedModel",
    "ModelFileError",
    "ModelSpec",
    "ModelUnavailable",
    "get",
]
