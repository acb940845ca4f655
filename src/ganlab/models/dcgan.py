"""A sized DCGAN pair (Radford et al. 2016) for 28x28 or 32x32 images with any channel count:
the unconditional counterpart of ``cgan-conv-g/d`` (same layers, no label)."""
from __future__ import annotations

from torch import nn

from . import MODELS
from .norms import norm_layer
from .layers import Scores


def generator_layers(in_features: int, channels: int, image_size: int, width: int,
                     norm: str) -> list[nn.Module]:
    if image_size % 4:
        raise ValueError(f"image_size must divide by 4, got {image_size}")
    s, w, nb = image_size // 4, width, norm == "none"
    return [nn.Linear(in_features, 4 * w * s * s), nn.ReLU(), nn.Unflatten(1, (4 * w, s, s)),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=nb), norm_layer(norm, 2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=nb), norm_layer(norm, w), nn.ReLU(),
            nn.Conv2d(w, channels, 3, padding=1), nn.Tanh()]


def discriminator_layers(in_channels: int, width: int, norm: str) -> list[nn.Module]:
    w, nb = width, norm == "none"
    return [nn.Conv2d(in_channels, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=nb), norm_layer(norm, 2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 3, 1, 1, bias=nb), norm_layer(norm, 4 * w), nn.LeakyReLU(0.2),
            nn.Flatten()]


@MODELS.register("dcgan-g")
class DCGANGenerator(nn.Sequential):
    def __init__(self, latent_dim: int = 100, channels: int = 3, image_size: int = 32,
                 width: int = 64, norm: str = "batch"):
        super().__init__(*generator_layers(latent_dim, channels, image_size, width, norm))


@MODELS.register("dcgan-d")
class DCGANDiscriminator(nn.Sequential):
    """``norm: none`` (the default) suits WGAN-GP, whose penalty is per example."""

    def __init__(self, channels: int = 3, image_size: int = 32, width: int = 64,
                 norm: str = "none"):
        s = image_size // 4
        super().__init__(*discriminator_layers(channels, width, norm),
                         nn.Linear(4 * width * s * s, 1), Scores())
