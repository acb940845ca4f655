"""Generators and discriminators: plain ``nn.Module``s registered by name.

Every generator takes ``latent_dim`` as its first argument (the engine passes ``latent.dim``) and
maps a ``(N, latent_dim)`` batch to examples shaped like the data (``(N, C, H, W)`` images or
``(N, D)`` points). Every discriminator maps a batch of examples to raw scores of shape ``(N,)``.
"""
from ..registry import MODELS

from . import conditional, cs231n, dcgan, goethe, norms, radford, toy  # noqa: E402,F401


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["MODELS", "count_params"]
