"""Regularizers and tricks: small objects the engine calls at named points of a training step.

Every hook is optional (the base class :class:`Regularizer` makes each a no-op). In the order the
engine calls them:

- ``setup(game)``: once, after the models are built and initialised and before the optimizers
  exist (spectral normalisation re-parametrises D here; EMA copies G). Hooks with
  ``rewrites_models = True`` (spectral and virtual batch norm) are set up first, so the others
  (EMA's copy, historical averaging's parameter list) see the final models.
- ``before_iteration(game)`` and ``trains(player, game) -> bool``: at the start of every
  iteration; a player ("d" or "g") any hook says not to train is skipped (freeze schedules).
- ``d_fakes(fake, fake_labels, game) -> (fake, fake_labels)``: D's fake batch (replay buffer).
- ``transform_d_input(x, phase, game) -> x``: every input to D, ``phase`` "real" or "fake" in
  D's step and "g" in G's (instance noise, PacGAN packing).
- ``d_targets(targets, real_scores, fake_scores, game) -> targets``: per-example targets for
  D's loss, ``None`` meaning the loss's own 1/0 (label smoothing, noisy and flipped labels).
- ``d_penalty(batch)`` / ``g_penalty(batch)``: a term added to D's / G's loss (gradient
  penalties, feature matching, historical averaging, ACGAN's classification loss).
- ``g_adversarial_weight``: a factor on G's adversarial loss (0: feature matching alone).
- ``before_d_step(game)`` / ``before_g_step(game)``: after ``backward``, before the optimizer
  step; may edit gradients directly (a penalty whose gradient is known in closed form) and
  return a value to log.
- ``after_d_step(game)`` / ``after_g_step(game)``: after the optimizer step (weight clipping,
  running averages, EMA).
- ``sampling_model()``: a generator to sample and evaluate with instead of G (EMA).
- ``accept(z, x, labels, game, generator) -> bool Tensor``: for hooks with
  ``filters_samples``, which of a batch of samples ``x = G(z, labels)`` to keep;
  :meth:`Game.sample` draws rejected rows again (discriminator rejection sampling, Jacobian
  truncation).
- ``state_dict()`` / ``load_state_dict(state)``: whatever exact resume needs (buffers, averages).

``batch`` is a :class:`StepBatch`. Penalties come back with their weight applied and are logged
as ``d_NAME`` / ``g_NAME`` after the hook's ``name``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from .registry import ConfigError, Registry

REGULARIZERS = Registry("regularizer")


@dataclass
class StepBatch:
    real: Optional[Tensor]  # None in G's step, except in paired games: the truth for the fakes
    fake: Tensor  # detached in D's step
    real_scores: Optional[Tensor]
    fake_scores: Tensor
    critic: Callable[[Tensor], Tensor]  # D's scores on new inputs (labels, input hooks applied)
    iteration: int
    real_labels: Optional[Tensor] = None
    fake_labels: Optional[Tensor] = None
    real_aux: Optional[Tensor] = None  # auxiliary head outputs (ACGAN class logits)
    fake_aux: Optional[Tensor] = None


class Regularizer:
    """Base class: every hook is a no-op."""

    name = "regularizer"
    g_adversarial_weight = 1.0
    rewrites_models = False
    filters_samples = False

    def setup(self, game) -> None:
        pass

    def before_iteration(self, game) -> None:
        pass

    def trains(self, player: str, game) -> bool:
        return True

    def d_fakes(self, fake: Tensor, fake_labels: Optional[Tensor], game):
        return fake, fake_labels

    def transform_d_input(self, x: Tensor, phase: str, game) -> Tensor:
        return x

    def d_targets(self, targets, real_scores: Tensor, fake_scores: Tensor, game):
        return targets

    def d_penalty(self, batch: StepBatch) -> Optional[Tensor]:
        return None

    def g_penalty(self, batch: StepBatch) -> Optional[Tensor]:
        return None

    def before_d_step(self, game) -> Optional[Tensor]:
        return None

    def before_g_step(self, game) -> Optional[Tensor]:
        return None

    def after_d_step(self, game) -> None:
        pass

    def after_g_step(self, game) -> None:
        pass

    def sampling_model(self):
        return None

    def accept(self, z: Tensor, x: Tensor, labels: Optional[Tensor], game, generator) -> Tensor:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
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
        regs.append(build_regularizer(name, args, f"loss.args.{name}"))
    for i, comp in enumerate(extra):
        regs.append(build_regularizer(comp.name, comp.args, f"regularizers[{i}]"))
    return regs


def build_regularizer(name: str, args: dict, where: str) -> Regularizer:
    """One regularizer or trick by name; bad names and arguments are ConfigErrors at ``where``."""
    try:
        reg = REGULARIZERS.build(name, args, where=where)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}.args: {exc}") from None
    reg.where = f"{where} ({name})"
    return reg


from . import tricks  # noqa: E402,F401  (register the tricks)


