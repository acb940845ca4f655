"""The Goethe-University DCGAN assignment's fully convolutional models (MNIST-sized images).

``Discriminator(channels, depth)``: 28 -> 14 -> 7 by strided convolutions, leaky ReLU, a
normalisation layer on every layer but the first and the last, no bias before a normalisation, and
a linear projection to one logit. ``Generator(latent_dim, channels, depth)``: a linear projection to
7x7 feature maps, then 7 -> 14 -> 28 by transposed convolution or pixel shuffle, tanh out.
``depth`` scales the width: the layers have 16*depth, 32*depth and 64*depth feature maps.
``norm`` is one of :data:`ganlab.models.norms.NORMS`.
"""
from __future__ import annotations

from torch import nn

from . import MODELS
from .norms import norm_layer


def _block(conv_cls, c_in, c_out, norm, *args, **kw):
    """conv (no bias when a norm follows) -> norm -> leaky ReLU(0.2)."""
    return [conv_cls(c_in, c_out, *args, bias=(norm == "none"), **kw), norm_layer(norm, c_out),
            nn.LeakyReLU(0.2)]


@MODELS.register("goethe-d")
class Discriminator(nn.Module):
    def __init__(self, channels: int = 1, depth: int = 4, norm: str = "batch"):
        super().__init__()
        norm_layer(norm, 1)  # validates the name
        w = 16 * depth
        self.features = nn.Sequential(
            nn.Conv2d(channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),      # 28 -> 14
            *_block(nn.Conv2d, w, 2 * w, norm, 4, stride=2, padding=1),             # 14 -> 7
            *_block(nn.Conv2d, 2 * w, 4 * w, norm, 3, stride=1, padding=1),         # 7 -> 7
            nn.Flatten())
        self.head = nn.Linear(4 * w * 7 * 7, 1)

    def forward(self, x):
        return self.head(self.features(x)).reshape(x.shape[0])


@MODELS.register("goethe-g")
class Generator(nn.Module):
    def __init__(self, latent_dim: int = 100, channels: int = 1, depth: int = 4,
                 norm: str = "batch", upsample: str = "transposed"):
        super().__init__()
        norm_layer(norm, 1)
        if upsample not in ("transposed", "pixelshuffle"):
            raise ValueError(f"upsample: {upsample!r}; valid: transposed, pixelshuffle")
        w = 16 * depth
        self.project = nn.Sequential(nn.Linear(latent_dim, 4 * w * 7 * 7), nn.LeakyReLU(0.2),
                                     nn.Unflatten(1, (4 * w, 7, 7)))

        def up(c_in, c_out):
            if upsample == "transposed":
                return _block(nn.ConvTranspose2d, c_in, c_out, norm, 4, stride=2, padding=1)
            return [nn.Conv2d(c_in, 4 * c_out, 3, padding=1, bias=(norm == "none")),
                    nn.PixelShuffle(2), norm_layer(norm, c_out), nn.LeakyReLU(0.2)]

        self.body = nn.Sequential(*up(4 * w, 2 * w), *up(2 * w, w),                  # 7->14->28
                                  nn.Conv2d(w, channels, 3, padding=1), nn.Tanh())

    def forward(self, z):
        return self.body(self.project(z.reshape(z.shape[0], -1)))


