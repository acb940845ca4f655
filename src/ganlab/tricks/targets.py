"""Tricks on D's targets: one-sided label smoothing, noisy labels, flipped labels.

Each is a :class:`~ganlab.hooks.TargetTransform`, so each needs a loss with targets (the config
refuses one without). They compose in config order: each receives the targets so far (``None``:
the loss's own 1 and 0).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..hooks import Seeded, TargetTransform
from ..registry import TRICKS


def default_targets(real_scores: Tensor, fake_scores: Tensor):
    return torch.ones_like(real_scores), torch.zeros_like(fake_scores)


def _uniform(like: Tensor, low: float, high: float, gen: torch.Generator) -> Tensor:
    return torch.rand(like.shape, generator=gen, device=like.device, dtype=like.dtype) * \
        (high - low) + low


@TRICKS.register("label-smoothing")
class LabelSmoothing(TargetTransform):
    """One-sided label smoothing (Salimans et al. 2016, sec. 3.4): real target ``real`` (0.9),
    fakes keep theirs."""

    name = "label_smoothing"

    def __init__(self, real: float = 0.9):
        if not 0 < real <= 1:
            raise ValueError(f"real: the smoothed real target must be in (0, 1], got {real}")
        self.real = float(real)

    def d_targets(self, targets, real_scores, fake_scores):
        rt, ft = targets or default_targets(real_scores, fake_scores)
        return rt * self.real, ft


@TRICKS.register("noisy-labels")
class NoisyLabels(Seeded, TargetTransform):
    """Real targets drawn from U[real_low, real_high], fake from U[fake_low, fake_high]
    ("ganhacks" trick 6)."""

    name = "noisy_labels"

    def __init__(self, real_low: float = 0.7, real_high: float = 1.0, fake_low: float = 0.0,
                 fake_high: float = 0.3):
        self.range = (real_low, real_high, fake_low, fake_high)

    def d_targets(self, targets, real_scores, fake_scores):
        rl, rh, fl, fh = self.range
        return _uniform(real_scores, rl, rh, self.gen), _uniform(fake_scores, fl, fh, self.gen)


@TRICKS.register("flip-labels")
class FlipLabels(Seeded, TargetTransform):
    """Each example's real or fake target is swapped (``t -> 1 - t``) with probability ``p``."""

    name = "flip_labels"

    def __init__(self, p: float = 0.05):
        if not 0 <= p <= 1:
            raise ValueError(f"p: a probability, got {p}")
        self.p = float(p)

    def d_targets(self, targets, real_scores, fake_scores):
        rt, ft = targets or default_targets(real_scores, fake_scores)
        fr = torch.rand(rt.shape, generator=self.gen, device=rt.device) < self.p
        ff = torch.rand(ft.shape, generator=self.gen, device=ft.device) < self.p
        return torch.where(fr, 1 - rt, rt), torch.where(ff, 1 - ft, ft)
