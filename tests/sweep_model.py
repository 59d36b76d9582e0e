"""A tiny model with the interface of simulator.nn.models, for the sweep tests: two linear
layers on random data, cheap enough that a cell takes milliseconds. ``tests.sweep_model:tiny``
is its ``module:function`` name; Dask workers import it from here."""

import numpy as np

from simulator.nn.models import EvalData
from simulator.nn.models._common import classification_metrics

SAMPLES, FEATURES, HIDDEN, CLASSES = 48, 24, 16, 4


class TinyModel:
    name = "tiny"
    metric = "top1"
    layer_names = ["fc1", "fc2"]

    def __init__(self):
        rng = np.random.default_rng(12)
        self.w1 = rng.standard_normal((HIDDEN, FEATURES)).astype(np.float32)
        self.w2 = rng.standard_normal((CLASSES, HIDDEN)).astype(np.float32)
        self.x = rng.standard_normal((SAMPLES, FEATURES)).astype(np.float32)
        self.labels = np.argmax(np.maximum(self.x @ self.w1.T, 0) @ self.w2.T, axis=1)

    def forward(self, ops, x):
        h = np.maximum(ops.digital(ops.linear("fc1", x, self.w1)), 0)
        return ops.linear("fc2", h, self.w2)

    def eval_data(self):
        return EvalData(self.x, self.labels, batch_size=16)

    def calibration_batch(self):
        return self.x[:16]

    def metrics(self, outputs, labels, reference_outputs):
        return classification_metrics(outputs, labels, reference_outputs)


def tiny():
    return TinyModel()
