"""Feature matching: G matches the mean of D's features on real data (Salimans et al. 2016)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..hooks import Penalty, StepBatch
from ..registry import TRICKS


@TRICKS.register("feature-matching")
class FeatureMatching(Penalty):
    """``weight * ||E f(x) - E f(G(z))||^2`` with f the output of D's module ``layer`` (a name
    from ``D.named_modules()``; default: the input of D's last linear layer), Salimans et al.
    2016, sec. 3.1. ``replace: true`` drops G's adversarial loss (the paper's form); ``false``
    adds the term to it. Each G step scores one more real batch with D."""

    name = "feature_matching"
    reads_d_activations = True

    def __init__(self, layer: str = "", weight: float = 1.0, replace: bool = True):
        self.layer, self.weight = layer, float(weight)
        self.adversarial_weight = 0.0 if replace else 1.0
        self._feat: Optional[Tensor] = None

    def setup(self, ctx) -> None:
        super().setup(ctx)
        modules = dict(ctx.D.named_modules())
        if self.layer:
            if self.layer not in modules:
                names = ", ".join(n for n in modules if n)
                raise ValueError(f"layer: D has no module {self.layer!r}; valid: {names}")
            modules[self.layer].register_forward_hook(self._keep_output)
        else:
            last = [m for m in ctx.D.modules() if isinstance(m, nn.Linear)][-1]
            last.register_forward_pre_hook(self._keep_input)

    def _keep_output(self, module, inputs, output):
        self._feat = output

    def _keep_input(self, module, inputs):
        self._feat = inputs[0]

    def g_penalty(self, batch: StepBatch) -> Tensor:
        fake_feat = self._feat.flatten(1).mean(0)
        real, real_c = self.ctx.real_batch()
        with torch.no_grad():
            self.ctx.critic(real, real_c, "real")
        real_feat = self._feat.flatten(1).mean(0)
        return self.weight * (real_feat - fake_feat).pow(2).sum()
