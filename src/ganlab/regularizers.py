"""Regularizers: small objects the engine calls at named points of a training step.

A regularizer may implement any of these hooks (all optional; see :class:`Regularizer`):

- ``d_penalty(batch) -> Tensor | None``: a term added to the discriminator's loss;
- ``g_penalty(batch) -> Tensor | None``: a term added to the generator's loss;
- ``after_d_step(game)`` / ``after_g_step(game)``: run after the optimizer step.

``batch`` is a :class:`StepBatch`: the real batch, the fake batch (detached for D's step), the
scores on both, and ``critic``, the discriminator as a function of examples (conditioning closed
over), so a penalty can evaluate D on new inputs. Penalties are returned with their weight applied
and are logged under their name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from .registry import Registry

REGULARIZERS = Registry("regularizer")


@dataclass
class StepBatch:
    real: Tensor
    fake: Tensor
    real_scores: Optional[Tensor]
    fake_scores: Tensor
    critic: Callable[[Tensor], Tensor]
    iteration: int


class Regularizer:
    """Base class: every hook is a no-op."""

    name = "regularizer"

    def d_penalty(self, batch: StepBatch) -> Optional[Tensor]:
        return None

    def g_penalty(self, batch: StepBatch) -> Optional[Tensor]:
        return None

    def after_d_step(self, game) -> None:
        pass

    def after_g_step(self, game) -> None:
        pass


@REGULARIZERS.register("gradient-penalty")
class GradientPenalty(Regularizer):
    """WGAN-GP's two-sided penalty, Gulrajani et al. 2017, Algorithm 1:
    ``weight * E[(||grad_x D(x_hat)||_2 - target)^2]`` with ``x_hat = a x + (1 - a) G(z)`` and
    ``a ~ U[0, 1]`` drawn once per example (not per pixel)."""

    name = "gradient_penalty"

    def __init__(self, weight: float = 10.0, target: float = 1.0):
        self.weight, self.target = float(weight), float(target)

    def d_penalty(self, batch: StepBatch) -> Tensor:
        real, fake = batch.real, batch.fake
        shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        alpha = torch.rand(shape, device=real.device, dtype=real.dtype)
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        scores = batch.critic(x_hat)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
        norms = grad.flatten(1).norm(2, dim=1)
        return self.weight * (norms - self.target).pow(2).mean()


@REGULARIZERS.register("weight-clip")
class WeightClip(Regularizer):
    """WGAN's weight clipping, Arjovsky et al. 2017, Algorithm 1: after every critic update, clamp
    every parameter of D to [-clip, clip]."""

    name = "weight_clip"

    def __init__(self, clip: float = 0.01):
        if clip <= 0:
            raise ValueError(f"clip must be positive, got {clip}")
        self.clip = float(clip)

    @torch.no_grad()
    def after_d_step(self, game) -> None:
        for p in game.D.parameters():
            p.clamp_(-self.clip, self.clip)


def build_regularizers(loss_pair, loss_args: dict, extra: list) -> list[Regularizer]:
    """The loss's own regularizers (with ``loss.args`` overrides) followed by the config's list."""
    regs = []
    for name, defaults in loss_pair.regularizers.items():
        args = {**defaults, **loss_args.get(name, {})}
        regs.append(REGULARIZERS.build(name, args, where=f"loss.args.{name}"))
    for i, comp in enumerate(extra):
        regs.append(REGULARIZERS.build(comp.name, comp.args, where=f"regularizers[{i}]"))
    return regs


