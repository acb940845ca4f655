"""Consistency regularization (Zhang et al. 2020): D's scores must not change under an
augmentation that does not change what an example is."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..hooks import Penalty, Seeded, StepBatch
from ..registry import TRICKS


@TRICKS.register("consistency")
class Consistency(Seeded, Penalty):
    """``weight * E ||D(x) - D(T(x))||^2`` over the real batch (CR-GAN, Zhang et al. 2020,
    "Consistency Regularization for Generative Adversarial Networks", eq. 1), and with
    ``fakes: true`` over the fake batch too (bCR, Zhao et al. 2021). ``T`` is the paper's
    augmentation: images (N, C, H, W) are flipped left-right with probability 1/2 and shifted
    by up to ``shift`` pixels each way (reflection padding, then a random crop); vectors get
    Gaussian noise of std ``noise``. D is scored through the input transforms, under the
    examples' own conditions."""

    name = "consistency"

    def __init__(self, weight: float = 10.0, shift: int = 4, noise: float = 0.01,
                 fakes: bool = False):
        if weight < 0 or shift < 0 or noise < 0:
            raise ValueError(f"weight, shift and noise must be >= 0; got {weight}, {shift}, "
                             f"{noise}")
        self.weight, self.shift, self.noise, self.fakes = float(weight), int(shift), \
            float(noise), bool(fakes)

    def augment(self, x: Tensor) -> Tensor:
        gen = self.gen
        if x.dim() != 4:
            return x + self.noise * torch.randn(x.shape, generator=gen, device=x.device,
                                                dtype=x.dtype)
        n, _, h, w = x.shape
        flip = torch.rand(n, generator=gen, device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        s = self.shift
        if not s:
            return x
        padded = F.pad(x, (s, s, s, s), mode="reflect")
        dy, dx = (torch.randint(0, 2 * s + 1, (n,), generator=gen, device=x.device)
                  for _ in range(2))
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        idx = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return padded[idx, chans, rows, cols]

    def d_penalty(self, batch: StepBatch) -> Tensor:
        pen = (batch.critic(self.augment(batch.real)) - batch.real_scores).pow(2).mean()
        if self.fakes:
            scores, _ = self.ctx.critic(self.augment(batch.fake), batch.fake_cond, "fake")
            pen = pen + (scores - batch.fake_scores).pow(2).mean()
        return self.weight * pen
