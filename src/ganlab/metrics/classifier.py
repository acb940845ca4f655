"""The MNIST domain classifier whose features stand in for Inception's in IS, FID and KID.

``MNISTClassifier`` is a small CNN (two 5x5 conv+BN+ReLU+pool blocks, a 128-unit feature layer,
10 logits). Its trained weights ship in ``weights/mnist_classifier.pt`` (written by
``scripts/train_mnist_classifier.py``, which also prints the test accuracy) and load with
``weights_only=True``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError

WEIGHTS = Path(__file__).parent / "weights" / "mnist_classifier.pt"


class MNISTClassifier(nn.Module):
    feature_dim = 128

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * 7 * 7, self.feature_dim), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, 10)

    def forward(self, x):
        """Logits for images in [-1, 1], shape (N, 1, 28, 28)."""
        return self.head(self.dropout(self.features(x)))

    @torch.no_grad()
    def embed(self, x, batch: int = 1000):
        """(features (N, 128), logits (N, 10)) in eval mode."""
        was = self.training
        self.eval()
        feats, logits = [], []
        for chunk in x.split(batch):
            f = self.features(chunk)
            feats.append(f)
            logits.append(self.head(f))
        self.train(was)
        return torch.cat(feats), torch.cat(logits)


def load_classifier(path: str | Path = WEIGHTS, device="cpu") -> MNISTClassifier:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: the MNIST classifier's weights are missing; train them "
                              "with scripts/train_mnist_classifier.py")
    model = MNISTClassifier()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.to(device).eval()
