"""Class-conditional generators and discriminators.

The conditional lab's design: an ``nn.Embedding(num_classes, num_classes)`` on both sides; G
concatenates the label embedding with the noise, D concatenates it with its input (flattened
input for the MLP, constant feature maps for the conv net). The engine samples labels for fakes
uniformly and uses the true labels for reals.

``mode`` selects how D uses the label:

- ``concat``: the embedding joins D's input (Mirza & Osindero 2014);
- ``projection``: ``score = psi(phi(x)) + <embed(y), phi(x)>`` (Miyato & Koyama 2018, eq. 3);
- ``acgan``: D scores real/fake without the label and a second head classifies the class;
  it returns ``(scores, class_logits)`` and the ``acgan`` hook adds the classification losses
  (Odena et al. 2017).

Every conditional generator has ``num_classes``, which is how the engine knows a game is
conditional. Image sizes: 28 (MNIST) or 32 (CIFAR-10).
"""
from __future__ import annotations

import torch
from torch import nn

from . import MODELS
from .dcgan import discriminator_layers, generator_layers

MODES = ("concat", "projection", "acgan")


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode: unknown mode {mode!r}; valid: {', '.join(MODES)}")


class _Head(nn.Module):
    """The label-dependent output of a conditional discriminator from features ``phi``."""

    def __init__(self, features: int, num_classes: int, mode: str):
        super().__init__()
        _check_mode(mode)
        self.mode = mode
        self.score = nn.Linear(features, 1)
        if mode == "projection":
            self.embed = nn.Embedding(num_classes, features)
        if mode == "acgan":
            self.classify = nn.Linear(features, num_classes)

    def forward(self, phi, labels):
        score = self.score(phi).reshape(phi.shape[0])
        if self.mode == "projection":
            score = score + (self.embed(labels) * phi).sum(1)
        if self.mode == "acgan":
            return score, self.classify(phi)
        return score


@MODELS.register("cgan-mlp-g")
class CondMLPGenerator(nn.Module):
    def __init__(self, latent_dim: int = 100, num_classes: int = 10, hidden: int = 256,
                 layers: int = 2, shape: tuple = (1, 28, 28)):
        super().__init__()
        self.num_classes, self.shape = num_classes, tuple(shape)
        self.embed = nn.Embedding(num_classes, num_classes)
        mods, width = [], latent_dim + num_classes
        for i in range(layers):
            mods += [nn.Linear(width, hidden * 2 ** i), nn.LeakyReLU(0.2)]
            width = hidden * 2 ** i
        out = 1
        for d in self.shape:
            out *= d
        self.net = nn.Sequential(*mods, nn.Linear(width, out), nn.Tanh())

    def forward(self, z, labels):
        h = torch.cat([z.reshape(z.shape[0], -1), self.embed(labels)], 1)
        return self.net(h).reshape((z.shape[0],) + self.shape)


@MODELS.register("cgan-mlp-d")
class CondMLPDiscriminator(nn.Module):
    def __init__(self, num_classes: int = 10, hidden: int = 512, layers: int = 2,
                 shape: tuple = (1, 28, 28), mode: str = "concat"):
        super().__init__()
        _check_mode(mode)
        self.mode = mode
        size = 1
        for d in shape:
            size *= d
        self.embed = nn.Embedding(num_classes, num_classes) if mode == "concat" else None
        mods, width = [], size + (num_classes if mode == "concat" else 0)
        for i in range(layers):
            mods += [nn.Linear(width, hidden // 2 ** i), nn.LeakyReLU(0.2)]
            width = hidden // 2 ** i
        self.body = nn.Sequential(*mods)
        self.head = _Head(width, num_classes, mode)

    def forward(self, x, labels):
        h = x.reshape(x.shape[0], -1)
        if self.embed is not None:
            h = torch.cat([h, self.embed(labels)], 1)
        return self.head(self.body(h), labels)


@MODELS.register("cgan-conv-g")
class CondConvGenerator(nn.Module):
    """Label embedding ++ noise, then the ``dcgan-g`` layers (linear to (4w, s/4, s/4), two
    stride-2 transposed convs with norm and ReLU, 3x3 conv, tanh)."""

    def __init__(self, latent_dim: int = 100, num_classes: int = 10, channels: int = 1,
                 image_size: int = 28, width: int = 64, norm: str = "batch"):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, num_classes)
        self.body = nn.Sequential(*generator_layers(latent_dim + num_classes, channels,
                                                    image_size, width, norm))

    def forward(self, z, labels):
        return self.body(torch.cat([z.reshape(z.shape[0], -1), self.embed(labels)], 1))


@MODELS.register("cgan-conv-d")
class CondConvDiscriminator(nn.Module):
    """The ``dcgan-d`` layers; the label enters as constant feature maps (concat), by
    projection, or through an ACGAN head."""

    def __init__(self, num_classes: int = 10, channels: int = 1, image_size: int = 28,
                 width: int = 64, mode: str = "concat", norm: str = "none"):
        super().__init__()
        _check_mode(mode)
        self.mode = mode
        self.embed = nn.Embedding(num_classes, num_classes) if mode == "concat" else None
        c_in = channels + (num_classes if mode == "concat" else 0)
        self.body = nn.Sequential(*discriminator_layers(c_in, width, norm))
        s = image_size // 4
        self.head = _Head(4 * width * s * s, num_classes, mode)

    def forward(self, x, labels):
        if self.embed is not None:
            maps = self.embed(labels)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, maps.to(x.dtype)], 1)
        return self.head(self.body(x), labels)
