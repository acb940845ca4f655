"""Adversarial losses as pure functions.

Each loss is a function of the discriminator's raw outputs (logits, not probabilities) on a batch
of real and a batch of generated examples, and returns a scalar tensor (a mean over the batch and
over any extra score dimensions). Two signatures exist:

- ``loss(real_scores, fake_scores)``: every discriminator and generator loss. Generator losses
  accept ``real_scores`` for uniformity (a relativistic loss would need it) and may ignore it;
  ``None`` is allowed where it is unused.
- ``loss(real_scores, fake_scores, real_targets, fake_targets)``: the discriminator losses with
  per-example targets in place of 1 and 0 (``*_targets_discriminator_loss``), for the tricks
  that change D's targets (label smoothing, noisy and flipped labels).

A :class:`LossPair` couples a discriminator loss with a generator loss under one registered name,
plus the regularizers that belong to the method (WGAN's weight clipping, WGAN-GP's gradient
penalty; see :mod:`ganlab.tricks`).

All sigmoid-cross-entropy terms are written with ``softplus``, which is the numerically stable form:
``-log(sigmoid(x)) = softplus(-x)`` and ``-log(1 - sigmoid(x)) = softplus(x)``, exact for any finite
logit (no ``log(0)`` for confident discriminators).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch.nn.functional as F
from torch import Tensor

from .registry import LOSSES

LossFn = Callable[[Optional[Tensor], Tensor], Tensor]


# --- the original GAN (Goodfellow et al. 2014, "Generative Adversarial Nets", eq. 1) -------------

def bce_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Discriminator loss of the original GAN: ``-E[log D(x)] - E[log(1 - D(G(z)))]``.

    Goodfellow et al. 2014, eq. 1, negated to be minimised; binary cross-entropy on logits with
    target 1 for real and 0 for fake (the CS231N form: the sum of the two batch means).
    """
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


def minimax_generator_loss(real_scores: Optional[Tensor], fake_scores: Tensor) -> Tensor:
    """Saturating (zero-sum) generator loss: ``E[log(1 - D(G(z)))]``, minimised.

    Goodfellow et al. 2014, eq. 1. Its gradient vanishes when D confidently rejects the fakes, which
    is why section 3 of the paper recommends the non-saturating form instead.
    """
    return -F.softplus(fake_scores).mean()


def nonsaturating_generator_loss(real_scores: Optional[Tensor], fake_scores: Tensor) -> Tensor:
    """Non-saturating generator loss: ``-E[log D(G(z))]``.

    Goodfellow et al. 2014, section 3 ("maximize log D(G(z))"); the CS231N generator loss.
    """
    return F.softplus(-fake_scores).mean()


def half_bce_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """``-1/2 E[ln D(x)] - 1/2 E[ln(1 - D(G(z)))]``: the 1/2-weighted form of the Goethe assignment.

    Goodfellow 2016, "NIPS 2016 Tutorial: Generative Adversarial Networks", eq. 8 (J^(D)).
    """
    return 0.5 * bce_discriminator_loss(real_scores, fake_scores)


def half_nonsaturating_generator_loss(real_scores: Optional[Tensor], fake_scores: Tensor) -> Tensor:
    """``-1/2 E[ln D(G(z))]``: the non-saturating J^(G) of Goodfellow 2016, eq. 13."""
    return 0.5 * nonsaturating_generator_loss(real_scores, fake_scores)


def bce_targets_discriminator_loss(real_scores: Tensor, fake_scores: Tensor,
                                   real_targets: Tensor, fake_targets: Tensor) -> Tensor:
    """:func:`bce_discriminator_loss` with per-example targets in [0, 1] instead of 1 and 0:
    ``E[BCE(D(x), t_real)] + E[BCE(D(G(z)), t_fake)]`` (label smoothing, Salimans et al. 2016
    sec. 3.4; noisy and flipped labels)."""
    return (F.binary_cross_entropy_with_logits(real_scores, real_targets) +
            F.binary_cross_entropy_with_logits(fake_scores, fake_targets))


def half_bce_targets_discriminator_loss(real_scores, fake_scores, real_targets, fake_targets):
    """The 1/2-weighted :func:`bce_targets_discriminator_loss`."""
    return 0.5 * bce_targets_discriminator_loss(real_scores, fake_scores, real_targets,
                                                fake_targets)


# --- least squares GAN (Mao et al. 2017, "Least Squares Generative Adversarial Networks") ---------

def lsgan_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """LSGAN discriminator loss, Mao et al. 2017 eq. 9 with a=0, b=1:
    ``1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]`` on raw scores."""
    return 0.5 * (real_scores - 1).pow(2).mean() + 0.5 * fake_scores.pow(2).mean()


def lsgan_targets_discriminator_loss(real_scores: Tensor, fake_scores: Tensor,
                                     real_targets: Tensor, fake_targets: Tensor) -> Tensor:
    """LSGAN eq. 9 with per-example targets b (real) and a (fake):
    ``1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]``."""
    return 0.5 * (real_scores - real_targets).pow(2).mean() + \
        0.5 * (fake_scores - fake_targets).pow(2).mean()


def lsgan_generator_loss(real_scores: Optional[Tensor], fake_scores: Tensor) -> Tensor:
    """LSGAN generator loss, Mao et al. 2017 eq. 9 with c=1: ``1/2 E[(D(G(z)) - 1)^2]``."""
    return 0.5 * (fake_scores - 1).pow(2).mean()


# --- Wasserstein GAN (Arjovsky et al. 2017; Gulrajani et al. 2017) --------------------------------

def wasserstein_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Critic loss of WGAN, Arjovsky et al. 2017, Algorithm 1: ``E[D(G(z))] - E[D(x)]``.

    Only meaningful with a Lipschitz constraint on D: weight clipping (WGAN) or the gradient
    penalty (WGAN-GP, Gulrajani et al. 2017, Algorithm 1); the ``wgan`` and ``wgan-gp`` loss names
    attach them.
    """
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(real_scores: Optional[Tensor], fake_scores: Tensor) -> Tensor:
    """Generator loss of WGAN, Arjovsky et al. 2017, Algorithm 1: ``-E[D(G(z))]``."""
    return -fake_scores.mean()


# --- hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018) --------------------------

def hinge_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Hinge discriminator loss, Lim & Ye 2017 / Miyato et al. 2018 eq. 16:
    ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def hinge_generator_loss(real_scores: Optional[Tensor], fake_scores: Tensor) -> Tensor:
    """Hinge generator loss, Miyato et al. 2018 eq. 17: ``-E[D(G(z))]``."""
    return -fake_scores.mean()


# --- named pairs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class LossPair:
    """A discriminator loss, a generator loss and the regularizers the method needs.

    ``regularizers`` maps a trick name (see :data:`ganlab.registry.TRICKS`) to its default
    arguments; a config may override them (``loss.args``).
    """

    discriminator: LossFn
    generator: LossFn
    doc: str
    regularizers: dict = field(default_factory=dict)
    # the discriminator loss with per-example targets, for losses that have targets
    discriminator_targets: Optional[Callable[..., Tensor]] = None

    def discriminator_with_targets(self, real_scores, fake_scores, real_targets, fake_targets):
        if self.discriminator_targets is None:
            raise ValueError(f"this loss ({self.doc}) has no targets to smooth, noise or flip")
        return self.discriminator_targets(real_scores, fake_scores, real_targets, fake_targets)


# name: (discriminator loss, generator loss, what it is, its tricks, D's loss with targets)
PAIRS = {
    "minimax": (bce_discriminator_loss, minimax_generator_loss,
                "original saturating GAN (Goodfellow et al. 2014)", {},
                bce_targets_discriminator_loss),
    "nonsaturating": (bce_discriminator_loss, nonsaturating_generator_loss,
                      "non-saturating GAN, BCE on logits (CS231N)", {},
                      bce_targets_discriminator_loss),
    "nonsaturating-half": (half_bce_discriminator_loss, half_nonsaturating_generator_loss,
                           "1/2-weighted non-saturating GAN (Goethe assignment; Goodfellow 2016)",
                           {}, half_bce_targets_discriminator_loss),
    "lsgan": (lsgan_discriminator_loss, lsgan_generator_loss,
              "least squares GAN, eq. 9 of Mao et al. 2017", {},
              lsgan_targets_discriminator_loss),
    "wgan": (wasserstein_discriminator_loss, wasserstein_generator_loss,
             "Wasserstein GAN with weight clipping (Arjovsky et al. 2017)",
             {"weight-clip": {"clip": 0.01}}, None),
    "wgan-gp": (wasserstein_discriminator_loss, wasserstein_generator_loss,
                "Wasserstein GAN with gradient penalty (Gulrajani et al. 2017)",
                {"gradient-penalty": {"weight": 10.0, "target": 1.0}}, None),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss,
              "hinge loss (Lim & Ye 2017; Miyato et al. 2018)", {}, None),
}
for _name, _parts in PAIRS.items():
    LOSSES.register(_name, LossPair(*_parts))
del _name, _parts


def get_loss(name: str, where: str = "loss.name") -> LossPair:
    return LOSSES.get(name, where)


__all__ = [n for n in dir() if n.endswith("_loss")] + ["LossPair", "LOSSES", "get_loss"]
