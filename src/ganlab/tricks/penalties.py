"""Constraints on D's slope: WGAN-GP's gradient penalty, the zero-centred R1 and R2 penalties,
and WGAN's weight clipping."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..hooks import Penalty, StepBatch, StepCallback
from ..registry import TRICKS


@TRICKS.register("gradient-penalty")
class GradientPenalty(Penalty):
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


def _grad_sq_norm(critic, x: Tensor) -> Tensor:
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1)


class _ZeroCentred(Penalty):
    """``weight/2 * E||grad_x D(x)||^2`` on real (R1) or generated (R2) examples, optionally
    lazy: every ``interval`` D steps, scaled by ``interval`` (Karras et al. 2020)."""

    on = "real"

    def __init__(self, weight: float = 10.0, interval: int = 1):
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.weight, self.interval = float(weight), int(interval)

    def d_penalty(self, batch: StepBatch) -> Optional[Tensor]:
        if batch.iteration % self.interval:
            return None
        x = batch.real if self.on == "real" else batch.fake
        return (self.weight / 2) * self.interval * _grad_sq_norm(batch.critic, x).mean()


@TRICKS.register("r1")
class R1(_ZeroCentred):
    """R1 (Mescheder et al. 2018, eq. 9): ``weight/2 * E_real ||grad_x D(x)||^2``."""

    name = "r1"
    on = "real"


@TRICKS.register("r2")
class R2(_ZeroCentred):
    """R2 (Mescheder et al. 2018, eq. 10): the same penalty on generated samples."""

    name = "r2"
    on = "fake"


@TRICKS.register("weight-clip")
class WeightClip(StepCallback):
    """WGAN's weight clipping, Arjovsky et al. 2017, Algorithm 1: after every critic update,
    clamp every parameter of D to [-clip, clip]."""

    name = "weight_clip"

    def __init__(self, clip: float = 0.01):
        if clip <= 0:
            raise ValueError(f"clip must be positive, got {clip}")
        self.clip = float(clip)

    @torch.no_grad()
    def after_update(self, player: str) -> None:
        if player == "d":
            for p in self.ctx.D.parameters():
                p.clamp_(-self.clip, self.clip)
