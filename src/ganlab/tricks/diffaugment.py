"""DiffAugment (Zhao et al. 2020): differentiable augmentations of every image D sees."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..hooks import InputTransform, Seeded
from ..registry import TRICKS

POLICIES = ("color", "translation", "cutout")


@TRICKS.register("diffaugment")
class DiffAugment(Seeded, InputTransform):
    """Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for
    Data-Efficient GAN Training"): every image D sees, real and fake, in D's step and in G's, is
    augmented by the same random family of differentiable transforms, so D cannot memorise a
    small training set and G still gets gradients through the augmentation. ``policy`` lists
    the transforms, applied in this order, each with fresh randomness per image (the paper's
    ``color,translation,cutout``):

    - ``color``: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5);
    - ``translation``: a shift by up to ``translation`` (1/8) of the size each way, zero-filled;
    - ``cutout``: a square of ``cutout`` (1/2) of the size set to zero at a random place.

    Images are assumed in [-1, 1]; colour is applied as the paper does on that scale."""

    name = "diffaugment"

    def __init__(self, policy: str = "color,translation,cutout", translation: float = 0.125,
                 cutout: float = 0.5):
        parts = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = [p for p in parts if p not in POLICIES]
        if unknown or not parts:
            raise ValueError(f"policy: unknown {', '.join(unknown) or '(empty)'}; valid: "
                             f"{', '.join(POLICIES)} (comma-separated)")
        if not 0 <= translation < 1 or not 0 <= cutout < 1:
            raise ValueError(f"translation and cutout are fractions in [0, 1); got "
                             f"{translation}, {cutout}")
        self.policy, self.translation_ratio, self.cutout_ratio = parts, float(translation), \
            float(cutout)

    def setup(self, ctx) -> None:
        super().setup(ctx)
        if not ctx.task.images:
            raise ValueError(f"augments images; these examples are {ctx.task.describe()}")

    def _rand(self, n: int, like: Tensor) -> Tensor:
        return torch.rand(n, generator=self.gen, device=like.device, dtype=like.dtype)

    def d_input(self, x: Tensor, phase: str) -> Tensor:
        for part in self.policy:
            x = getattr(self, part)(x)
        return x.contiguous()

    def color(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        x = x + (self._rand(n, x) - 0.5).view(n, 1, 1, 1)
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * (self._rand(n, x) * 2).view(n, 1, 1, 1) + mean
        mean = x.mean((1, 2, 3), keepdim=True)
        return (x - mean) * (self._rand(n, x) + 0.5).view(n, 1, 1, 1) + mean

    def translation(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        sh, sw = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
        dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=self.gen, device=x.device)
        dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=self.gen, device=x.device)
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        # pad by one zero pixel all round, then read each output pixel from its shifted place
        src_r = (rows + dy + 1).clamp(0, h + 1)
        src_c = (cols + dx + 1).clamp(0, w + 1)
        padded = F.pad(x, (1, 1, 1, 1))
        idx = torch.arange(n, device=x.device).view(n, 1, 1)
        return padded.permute(0, 2, 3, 1)[idx, src_r, src_c].permute(0, 3, 1, 2)

    def cutout(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=self.gen, device=x.device)
        ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=self.gen, device=x.device)
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        top, left = oy - ch // 2, ox - cw // 2  # the square, clipped where it leaves the image
        inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
        return x * (~inside).unsqueeze(1).to(x.dtype)
