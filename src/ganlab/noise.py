"""Latent samplers: functions ``(n, dim, generator, device) -> Tensor`` looked up by name."""
from __future__ import annotations

import torch

from .registry import LATENTS


@LATENTS.register("uniform")
def uniform_pm1(n: int, dim: int, generator: torch.Generator | None = None, device="cpu"):
    """Uniform on (-1, 1): CS231N's ``sample_noise``."""
    return torch.rand(n, dim, generator=generator, device=device).mul_(2).sub_(1)


@LATENTS.register("normal")
def normal(n: int, dim: int, generator: torch.Generator | None = None, device="cpu"):
    """Standard normal N(0, 1): the DCGAN / Goethe assignment choice."""
    return torch.randn(n, dim, generator=generator, device=device)


@LATENTS.register("uniform01")
def uniform01(n: int, dim: int, generator: torch.Generator | None = None, device="cpu"):
    """Uniform on [0, 1): the Tetris emulator's noise."""
    return torch.rand(n, dim, generator=generator, device=device)


def sample_latent(dist: str, n: int, dim: int, generator=None, device="cpu") -> torch.Tensor:
    return LATENTS.get(dist, "latent.dist")(n, dim, generator=generator, device=device)


@LATENTS.register("categorical")
def categorical(n: int, dim: int, generator: torch.Generator | None = None, device="cpu"):
    """A uniformly drawn one-hot code of ``dim`` categories (InfoGAN's categorical code, Chen et
    al. 2016): the noise of a generator whose randomness is a choice among ``dim`` outcomes, such
    as the Tetris emulator's seven pieces."""
    idx = torch.randint(dim, (n,), generator=generator, device=device)
    return torch.nn.functional.one_hot(idx, dim).float()


class CategoricalPrior:
    """A one-hot code of ``len(probs)`` categories drawn with the given probabilities: the
    ``categorical`` latent with a prior learnt from the data in place of the uniform one (a
    trick sets it through :meth:`ganlab.hooks.TrainingContext.set_latent_prior`, e.g. the share
    of each outcome the reconstruction term's clusters found)."""

    def __init__(self, probs: torch.Tensor):
        probs = torch.as_tensor(probs, dtype=torch.float64).flatten()
        if len(probs) < 1 or not torch.isfinite(probs).all() or (probs < 0).any() \
                or probs.sum() <= 0:
            raise ValueError(f"a categorical prior needs finite probabilities >= 0 with a "
                             f"positive sum; got {probs.tolist()}")
        self.probs = (probs / probs.sum()).float()

    def __call__(self, n: int, dim: int, generator: torch.Generator | None = None,
                 device="cpu") -> torch.Tensor:
        if dim != len(self.probs):
            raise ValueError(f"the prior has {len(self.probs)} categories, latent.dim is {dim}")
        if n == 0:  # as the other samplers give: torch's multinomial refuses zero draws
            return torch.zeros(0, dim, device=device)
        idx = torch.multinomial(self.probs.to(device), n, replacement=True, generator=generator)
        return torch.nn.functional.one_hot(idx, dim).float()
