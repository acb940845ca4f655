"""The CS231N GAN notebook's models (MNIST, 28x28x1), layer for layer.

Parameter counts (the notebook's own checks, and ganlab tests): MLP D 267,009; MLP G 1,858,320 at
noise dimension 4; DCGAN D 1,102,721; DCGAN G 6,580,801 at noise dimension 4.
"""
from __future__ import annotations

from torch import nn

from . import MODELS
from .layers import Scores

IMAGE = (1, 28, 28)


@MODELS.register("cs231n-mlp-d")
class MLPDiscriminator(nn.Sequential):
    """784-256-256-1, LeakyReLU(0.01)."""

    def __init__(self):
        super().__init__(
            nn.Flatten(),
            nn.Linear(784, 256), nn.LeakyReLU(0.01),
            nn.Linear(256, 256), nn.LeakyReLU(0.01),
            nn.Linear(256, 1), Scores())


@MODELS.register("cs231n-mlp-g")
class MLPGenerator(nn.Sequential):
    """noise-1024-1024-784, ReLU, tanh; output reshaped to (N, 1, 28, 28)."""

    def __init__(self, latent_dim: int = 96):
        super().__init__(
            nn.Linear(latent_dim, 1024), nn.ReLU(),
            nn.Linear(1024, 1024), nn.ReLU(),
            nn.Linear(1024, 784), nn.Tanh(),
            nn.Unflatten(1, IMAGE))


@MODELS.register("cs231n-dcgan-d")
class DCGANDiscriminator(nn.Sequential):
    """Conv32-5x5, LReLU, pool, Conv64-5x5, LReLU, pool, FC 4*4*64, LReLU, FC 1."""

    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 32, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 4 * 64, 4 * 4 * 64), nn.LeakyReLU(0.01),
            nn.Linear(4 * 4 * 64, 1), Scores())


@MODELS.register("cs231n-dcgan-g")
class DCGANGenerator(nn.Sequential):
    """InfoGAN's MNIST generator (Chen et al. 2016, appendix C.1) as in CS231N:
    FC1024, ReLU, BN, FC 7*7*128, ReLU, BN, ConvT 64 4x4 s2, ReLU, BN, ConvT 1 4x4 s2, tanh."""

    def __init__(self, latent_dim: int = 96):
        super().__init__(
            nn.Linear(latent_dim, 1024), nn.ReLU(), nn.BatchNorm1d(1024),
            nn.Linear(1024, 7 * 7 * 128), nn.ReLU(), nn.BatchNorm1d(7 * 7 * 128),
            nn.Unflatten(1, (128, 7, 7)),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.ReLU(), nn.BatchNorm2d(64),
            nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh())
