"""MLPs for 2-D toy distributions, sized as in PacGAN's experiments (Lin et al. 2018, sec. 5.1):
G with 4 hidden layers of 400 ReLU units and batch norm, D with hidden layers of 200 units.
``norm`` is ``batch``, ``layer`` or ``none`` (:mod:`ganlab.models.norms`)."""
from __future__ import annotations

from torch import nn

from . import MODELS
from .layers import Scores
from .norms import norm_layer


def _hidden(width: int, hidden: int, norm: str, activation: nn.Module) -> list[nn.Module]:
    """linear (no bias when a norm follows) -> norm -> activation."""
    if norm == "none":
        return [nn.Linear(width, hidden), activation]
    return [nn.Linear(width, hidden, bias=False), norm_layer(norm, hidden, dims=0), activation]


@MODELS.register("toy-mlp-g")
class ToyGenerator(nn.Sequential):
    def __init__(self, latent_dim: int = 2, hidden: int = 400, layers: int = 4,
                 norm: str = "batch", out_dim: int = 2):
        norm_layer(norm, 1, dims=0)  # validates the name
        mods, width = [], latent_dim
        for _ in range(layers):
            mods += _hidden(width, hidden, norm, nn.ReLU())
            width = hidden
        super().__init__(*mods, nn.Linear(width, out_dim))


@MODELS.register("toy-mlp-d")
class ToyDiscriminator(nn.Sequential):
    """``layers`` hidden layers of ``hidden`` units with LeakyReLU(0.2)."""

    def __init__(self, hidden: int = 200, layers: int = 3,
                 in_dim: int = 2, slope: float = 0.2, norm: str = "none"):
        norm_layer(norm, 1, dims=0)
        mods, width = [], in_dim
        for _ in range(layers):
            mods += _hidden(width, hidden, norm, nn.LeakyReLU(slope))
            width = hidden
        super().__init__(*mods, nn.Linear(width, 1), Scores())
