"""What a dataset's examples are, as types: how samples are drawn as a picture, which metrics
judge a run, and how generated examples map back to the data's own scale.

Every :class:`~ganlab.data.Dataset` carries one task. The engine, ``ganlab evaluate`` and the
command line ask the task, never the dataset's name:

- :class:`PointsTask`: 2-D points (the Gaussian mixtures): scatter plots with the modes, and mode
  coverage (modes captured, high-quality share, reverse KL);
- :class:`ImageTask`: images in [-1, 1]: sample grids; the standard Inception IS/FID/KID when a
  local Inception file is given;

Datasets add their own: MNIST's (classifier metrics beside their real-vs-real floors) and
Stacked MNIST's (modes of 1,000) live in :mod:`ganlab.data.mnist`, the Tetris boards' in
:mod:`ganlab.tetris.task`.

``evaluate(game, n, ...)`` receives the game's public face (``sample``, ``data``, ...), so tasks
never depend on the engine.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .errors import ConfigError
from .metrics.inception import inception_metrics
from .metrics.modes import mode_metrics
from .viz import save_grid, save_scatter


def subset(x: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return x[torch.randperm(len(x), generator=g)[:n]]


class Task:
    """Examples as they are: no picture, no metrics."""

    images = False  # (N, C, H, W) pictures: channels_last applies, Inception metrics may
    eval_samples = 10_000  # samples ``ganlab evaluate`` draws by default

    def to_data_scale(self, x: torch.Tensor) -> torch.Tensor:
        """Generated examples (model scale) in the data's own scale."""
        return x

    def draw(self, samples: torch.Tensor, path: Path, *, conditions=None, truth=None,
             classes: int = 0, title: str = "") -> Optional[np.ndarray]:
        """Write a picture of ``samples`` to ``path``; return it as an (H, W, C) uint8 array for
        TensorBoard, or None where it has no such form."""
        return None

    def evaluate(self, game, n: Optional[int] = None, inception=None) -> dict:
        """Every metric of this task for ``game``'s samples (``n`` of them where it draws)."""
        if inception is not None:
            raise ConfigError(f"Inception metrics need images; these examples are "
                              f"{self.describe()}")
        return {}

    def summary(self, game) -> list[str]:
        """Lines the command line prints after training."""
        return []

    def model_args(self, data) -> dict:
        """Model arguments the data decides (a network that takes them and is not given them by
        its config gets these: an image's channels and size, a board's rows and columns)."""
        return {}

    def describe(self) -> str:
        return "examples"


class PointsTask(Task):
    """Points in the plane; with ``modes`` (a mixture's centres) and ``std``, mode coverage."""

    eval_samples = 2500

    def __init__(self, modes: Optional[torch.Tensor] = None, std: Optional[float] = None):
        self.modes, self.std = modes, std

    def draw(self, samples, path, *, conditions=None, truth=None, classes=0, title=""):
        save_scatter(samples, path, self.modes, title)
        return None

    def evaluate(self, game, n=None, inception=None) -> dict:
        super().evaluate(game, n, inception)
        if self.modes is None:
            return {}
        m = mode_metrics(game.sample(n or self.eval_samples), self.modes, self.std)
        m.pop("counts")
        return m

    def summary(self, game) -> list[str]:
        if self.modes is None:
            return []
        m = self.evaluate(game)
        return [f"modes captured {m['modes_captured']}/{m['modes_total']}, high-quality samples "
                f"{100 * m['high_quality']:.1f}%, reverse KL {m['reverse_kl']:.4f} "
                f"({self.eval_samples:,} samples)"]

    def describe(self) -> str:
        return "2-D points"


class ImageTask(Task):
    """Images in [-1, 1], (N, C, H, W); samples in the data's scale are [0, 1] intensities.
    ``class_names`` name the labels where the data has them."""

    images = True

    def __init__(self, class_names: Optional[list] = None, unit_scale: bool = True):
        self.class_names = list(class_names) if class_names else None
        self.unit_scale = unit_scale  # False: the data's scale is the model's (plain tensors)

    def to_data_scale(self, x):
        return (x + 1) / 2 if self.unit_scale else x

    def draw(self, samples, path, *, conditions=None, truth=None, classes=0, title=""):
        return save_grid(samples, path, nrow=len(samples) // classes if classes else None)

    def model_args(self, data) -> dict:
        c, h, w = data.example_shape
        return {"channels": c, "image_size": h}

    def reference(self, game, n: int) -> torch.Tensor:
        """The real images generated ones are compared with."""
        return subset(game.data.examples, n)

    def floor_reference(self, game, n: int) -> Optional[torch.Tensor]:
        """Other real images, for the real-vs-real floor of each metric (None: no floor)."""
        return None

    domain_network = False  # whether domain_metrics has a network to judge images with

    def domain_metrics(self, real, fake) -> dict:
        """Metrics on a domain network's features (classifier IS, FID, ...)."""
        raise NotImplementedError

    def evaluate(self, game, n=None, inception=None) -> dict:
        if inception is None and not self.domain_network:
            return {}
        n = n or self.eval_samples
        fake = game.sample(n).cpu()
        real, floor_real = self.reference(game, n), self.floor_reference(game, n)
        out = {}
        if self.domain_network:
            out.update(self.domain_metrics(real, fake))
        if inception is not None:
            out.update(inception_metrics(inception, real, fake))
        floor = self._floor(real, floor_real, n, inception) if floor_real is not None else {}
        out.update({f"real_vs_real/{k}": v for k, v in floor.items() if k != "class_counts"})
        for key in ("fid", "inception_fid"):
            if floor.get(key):
                out[f"{key}_over_floor"] = out[key] / floor[key]
        return out

    def _floor(self, real, floor_real, n: int, inception) -> dict:
        """The real-vs-real floor of each metric; it does not depend on the model, so an
        evaluation during training computes it once."""
        key = (n, id(inception))
        cache = self.__dict__.setdefault("_floors", {})
        if key not in cache:
            floor = dict(self.domain_metrics(real, floor_real)) if self.domain_network else {}
            if inception is not None:
                floor.update(inception_metrics(inception, real, floor_real))
            cache[key] = floor
        return cache[key]

    def describe(self) -> str:
        return "images"
