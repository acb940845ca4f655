"""The Tetris emulator's networks, from the original experiments.

ganlab's calling convention: ``G(z, x)`` predicts board t+1 from noise ``z`` and the one-hot
board t ``x`` (N, 2, 22, 10); ``D(y, x)`` scores a (board t, board t+1) pair. Internally the
originals' order is kept (noise broadcast after the board; D sees ``cat(x, y)``).
"""
from __future__ import annotations

import torch
from torch import nn

from ..models import MODELS
from ..models.layers import Scores


def _cbr(c_in, c_out, k=3, pad=1):
    return [nn.Conv2d(c_in, c_out, k, padding=pad, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


@MODELS.register("tetris-g")
class TetrisGenerator(nn.Module):
    """The original generator: a local block (two 3x3 conv+BN+ReLU on the board with the noise
    broadcast to every cell), a global block (conv, pool, conv, pool, linear to 10, ReLU)
    broadcast back to every cell, and a head (three conv+BN+ReLU, 1x1 conv to 2 channels,
    softmax). ``global_relu: false`` drops the ReLU after the global linear layer, as in the
    first experiments."""

    def __init__(self, latent_dim: int = 4, width: int = 16, global_features: int = 10,
                 global_relu: bool = True):
        super().__init__()
        w = width
        self.loc = nn.Sequential(*_cbr(2 + latent_dim, w), *_cbr(w, w))
        self.glob = nn.Sequential(*_cbr(w, w), nn.MaxPool2d(2), *_cbr(w, w), nn.MaxPool2d(2),
                                  nn.Flatten(), nn.Linear(w * 5 * 2, global_features),
                                  *([nn.ReLU()] if global_relu else []))
        self.head = nn.Sequential(*_cbr(w + global_features, w), *_cbr(w, w), *_cbr(w, w),
                                  nn.Conv2d(w, 2, 1), nn.Softmax(dim=1))

    def forward(self, z, x):
        n, _, h, w = x.shape
        zz = z.reshape(n, -1, 1, 1).expand(-1, -1, h, w)
        loc = self.loc(torch.cat([x, zz.to(x.dtype)], 1))
        g = self.glob(loc)[:, :, None, None].expand(-1, -1, h, w)
        return self.head(torch.cat([loc, g], 1))


class _PairD(nn.Module):
    def __init__(self, body: nn.Sequential):
        super().__init__()
        self.body = body

    def forward(self, y, x):
        return self.body(torch.cat([x, y], 1))


@MODELS.register("tetris-d")
class TetrisDiscriminator(_PairD):
    """conv, pool, conv+BN, pool, linear 16, linear 1 (the original)."""

    def __init__(self):
        super().__init__(nn.Sequential(
            nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            *_cbr(16, 16), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(160, 16), nn.ReLU(), nn.Linear(16, 1), Scores()))


def _conv(c_in: int, c_out: int, pad: int, batchnorm: bool) -> list:
    if batchnorm:
        return [nn.Conv2d(c_in, c_out, 3, padding=pad, bias=False), nn.BatchNorm2d(c_out),
                nn.ReLU()]
    return [nn.Conv2d(c_in, c_out, 3, padding=pad), nn.ReLU()]


def _more_conv_body(pads: tuple, batchnorm: bool) -> nn.Sequential:
    """conv, pool, then a 3x3 conv per entry of ``pads``; 11x5 maps end as 7x1 (112 features)."""
    convs = [m for pad in pads for m in _conv(16, 16, pad, batchnorm)]
    return nn.Sequential(nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), *convs,
                         nn.Flatten(), nn.Linear(112, 16), nn.ReLU(), nn.Linear(16, 1), Scores())


@MODELS.register("tetris-d-more-conv")
class DiscWithMoreConv(_PairD):
    """conv, pool, two unpadded convs (with BN if ``batchnorm``), linear 16, linear 1."""

    def __init__(self, batchnorm: bool = False):
        super().__init__(_more_conv_body((0, 0), batchnorm))


@MODELS.register("tetris-d-more-conv-pad")
class DiscWithMoreConvPad(_PairD):
    """conv, pool, a padded conv, two unpadded convs (BN optional), linear 16, linear 1."""

    def __init__(self, batchnorm: bool = False):
        super().__init__(_more_conv_body((1, 0, 0), batchnorm))
