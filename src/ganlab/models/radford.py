"""The DCGAN of Radford et al. 2016 for any power-of-two image size (16 to 256 px) and channel
count, optionally class-conditional: the models of the ``imagefolder`` preset.

G projects the latent to a 4 x 4 map with ``width * 2^(k-1)`` channels and doubles the size
with ``k = log2(image_size / 4)`` stride-2 transposed convolutions (norm and ReLU between,
tanh at the end), halving the channels each time. D mirrors it with stride-2 convolutions and
LeakyReLU(0.2) (no norm on the first) down to 4 x 4, then a linear score; with ``num_classes``
G embeds the label beside the latent and D scores by projection (Miyato & Koyama 2018).
``channels`` and ``image_size`` come from the data when a config does not give them.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import MODELS
from .conditional import _Head
from .layers import Scores
from .norms import norm_layer


def _steps(image_size: int) -> int:
    k = math.log2(image_size / 4) if image_size >= 8 else 0
    if image_size < 8 or image_size > 256 or k != int(k):
        raise ValueError(f"image_size must be a power of two from 8 to 256, got {image_size}")
    return int(k)


@MODELS.register("radford-g")
class RadfordGenerator(nn.Module):
    def __init__(self, latent_dim: int = 100, channels: int = 3, image_size: int = 64,
                 width: int = 64, norm: str = "batch", num_classes: int = 0):
        super().__init__()
        k = _steps(image_size)
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None
        c = width * 2 ** (k - 1)
        nb = norm == "none"
        layers = [nn.Unflatten(1, (latent_dim + num_classes, 1, 1)),
                  nn.ConvTranspose2d(latent_dim + num_classes, c, 4, 1, 0, bias=nb),
                  norm_layer(norm, c), nn.ReLU()]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=nb), norm_layer(norm, c // 2),
                       nn.ReLU()]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z, labels=None):
        z = z.reshape(z.shape[0], -1)
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return self.body(z)


@MODELS.register("radford-d")
class RadfordDiscriminator(nn.Module):
    def __init__(self, channels: int = 3, image_size: int = 64, width: int = 64,
                 norm: str = "batch", num_classes: int = 0):
        super().__init__()
        k = _steps(image_size)
        nb = norm == "none"
        layers = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for _ in range(k - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=nb), norm_layer(norm, 2 * c),
                       nn.LeakyReLU(0.2)]
            c *= 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.num_classes = num_classes
        self.head = (_Head(c * 16, num_classes, "projection") if num_classes else
                     nn.Sequential(nn.Linear(c * 16, 1), Scores()))

    def forward(self, x, labels=None):
        h = self.body(x)
        return self.head(h, labels) if self.num_classes else self.head(h)
