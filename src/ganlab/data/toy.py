"""2-D Gaussian mixtures for fast, measurable mode-collapse experiments.

``ring8``: 8 Gaussians evenly spaced on a circle (radius 1, std 0.01 in the PacGAN protocol,
Lin et al. 2018 sec. 5.1). ``grid25``: 25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05.
Both are materialised as ``n`` points drawn with the run's seed, modes chosen uniformly.
"""
from __future__ import annotations

import math

import torch

from ..tasks import PointsTask
from . import DATASETS, Dataset


def mixture(modes: torch.Tensor, std: float, n: int, seed: int) -> Dataset:
    g = torch.Generator().manual_seed(seed + 7919)
    which = torch.randint(len(modes), (n,), generator=g)
    pts = modes[which] + std * torch.randn(n, modes.shape[1], generator=g)
    return Dataset(examples=pts.float(), labels=which, task=PointsTask(modes.float(), float(std)))


def ring_modes(k: int, radius: float) -> torch.Tensor:
    ang = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    return torch.stack([radius * torch.cos(ang), radius * torch.sin(ang)], 1)


def grid_modes(side: int, spacing: float) -> torch.Tensor:
    c = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(c, c)


@DATASETS.register("ring8")
def ring8(path=None, seed: int = 0, modes: int = 8, radius: float = 1.0, std: float = 0.01,
          n: int = 100_000) -> Dataset:
    return mixture(ring_modes(modes, radius), std, n, seed)


@DATASETS.register("grid25")
def grid25(path=None, seed: int = 0, side: int = 5, spacing: float = 2.0, std: float = 0.05,
           n: int = 100_000) -> Dataset:
    return mixture(grid_modes(side, spacing), std, n, seed)
