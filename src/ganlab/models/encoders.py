"""Encoders that read a latent code off a (condition, example) pair, for BicycleGAN-style
training (Zhu et al. 2017): the network learns which part of the example is the random outcome.
"""
from __future__ import annotations

import torch
from torch import nn


class PairEncoder(nn.Module):
    """Logits over ``codes`` from a paired condition and example stacked as channels
    (N, C, H, W): a residual CNN of ``depth`` 3x3 conv pairs, then max- and mean-pooled features
    through a two-layer MLP. Pooling over the whole map makes it size-agnostic; the example is
    concatenated after the condition, so the change between them is one conv away."""

    def __init__(self, in_channels: int, codes: int, width: int = 32, depth: int = 2):
        super().__init__()
        if in_channels < 1 or codes < 2 or width < 1 or depth < 1:
            raise ValueError(f"in_channels >= 1, codes >= 2, width >= 1 and depth >= 1; got "
                             f"{in_channels}, {codes}, {width}, {depth}")
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(width, width, 3, padding=1)) for _ in range(depth))
        self.head = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Linear(width, codes))

    def forward(self, cond: torch.Tensor, example: torch.Tensor) -> torch.Tensor:
        h = self.stem(torch.cat([cond, example], 1))
        for block in self.blocks:
            h = h + block(h)
        h = torch.relu(h)
        return self.head(torch.cat([h.amax((2, 3)), h.mean((2, 3))], 1))
