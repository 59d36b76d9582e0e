"""Train the ``fmnist-cnn`` shipped model and write ``simulator/nn/models/fmnist_cnn.npz``.

Deterministic: PyTorch on CPU, ``torch.use_deterministic_algorithms(True)``, one thread, a fixed
seed for initialisation and for the shuffling generator. The same command on the same PyTorch
build rewrites the same file. Records the command, seed, epochs, PyTorch version and the float32
test accuracy (10 000 images) in the file's ``meta`` JSON string.

Usage: ``nice python scripts/train_fmnist_cnn.py [--epochs 3] [--seed 0] [--out PATH]``
(needs ``pip install torch`` and ``apt-get install dataset-fashion-mnist``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.nn.models.fmnist_cnn import DATA_DIR, SHAPES, WEIGHTS, load_split  # noqa: E402

BATCH = 64
LEARNING_RATE = 1e-3


def build() -> nn.Sequential:
    """The graph ``fmnist_cnn.FashionMnistCnn.forward`` evaluates, as torch modules."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )  # fmt: skip


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in images.split(1000)])
    return float((predicted == labels).double().mean())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    shuffle = torch.Generator().manual_seed(args.seed)

    train_x, train_y = (torch.from_numpy(a) for a in load_split(DATA_DIR, "train"))
    test_x, test_y = (torch.from_numpy(a) for a in load_split(DATA_DIR, "t10k"))
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_of = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        model.train()
        for index in torch.randperm(len(train_x), generator=shuffle).split(BATCH):
            optimizer.zero_grad()
            loss_of(model(train_x[index]), train_y[index]).backward()
            optimizer.step()
        model.eval()
        print(f"epoch {epoch + 1}: test accuracy {accuracy(model, test_x, test_y):.4f}", flush=True)

    tensors = dict(zip(SHAPES, (p.detach().numpy() for p in model.parameters()), strict=True))
    meta = {
        "command": " ".join(["nice python scripts/train_fmnist_cnn.py", *(argv or sys.argv[1:])]),
        "seed": args.seed,
        "epochs": args.epochs,
        "batch": BATCH,
        "optimizer": f"Adam lr={LEARNING_RATE}",
        "torch": torch.__version__,
        "float32_test_accuracy": accuracy(model, test_x, test_y),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=args.out.parent, suffix=".npz", delete=False) as tmp:
        np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **tensors)
    os.chmod(tmp.name, 0o644)  # a temporary file is private; the weights are not
    os.replace(tmp.name, args.out)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
