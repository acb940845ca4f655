"""Averages of the players' weights: historical averaging (a penalty towards the past mean) and
an exponential moving average of G used for sampling."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from ..hooks import SamplingModel, StepCallback
from ..registry import TRICKS


@TRICKS.register("historical-averaging")
class HistoricalAveraging(StepCallback):
    """Penalises each player's distance to the mean of its past parameters,
    ``weight * ||theta - mean_t(theta_t)||^2`` (Salimans et al. 2016, sec. 3.3). Its gradient
    ``2 weight (theta - mean)`` is added to the parameters' gradients directly (no autograd
    graph), and the mean is a running average updated in place after each step: a few fused
    passes over the parameters per step, O(parameters), instead of re-summing the history."""

    name = "historical_averaging"

    def __init__(self, weight: float = 1e-3, generator: bool = True, discriminator: bool = True):
        self.weight, self.which = float(weight), {"g": generator, "d": discriminator}
        self.count = {"g": 0, "d": 0}

    def setup(self, ctx) -> None:
        super().setup(ctx)
        self.params = {"g": list(ctx.G.parameters()), "d": list(ctx.D.parameters())}
        self.means = {k: [p.detach().clone() for p in v] for k, v in self.params.items()}

    @torch.no_grad()
    def before_update(self, player: str) -> Optional[Tensor]:
        if not self.which[player] or self.count[player] == 0:
            return None
        pairs = [(p, m) for p, m in zip(self.params[player], self.means[player])
                 if p.grad is not None]
        if not pairs:
            return None
        params, means = zip(*pairs)
        diffs = torch._foreach_sub(list(params), list(means))
        torch._foreach_add_([p.grad for p in params], diffs, alpha=2 * self.weight)
        return self.weight * torch.stack(torch._foreach_norm(diffs)).pow(2).sum()

    @torch.no_grad()
    def after_update(self, player: str) -> None:
        self.count[player] += 1
        w = 1.0 / (self.count[player] + 1)  # the mean of the initial and every updated value
        torch._foreach_lerp_(self.means[player], [p.detach() for p in self.params[player]], w)

    def state_dict(self) -> dict:
        return {"count": dict(self.count), "means": {k: [m.clone() for m in v]
                                                     for k, v in self.means.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.count = dict(state["count"])
        for k in self.means:
            for m, v in zip(self.means[k], state["means"][k]):
                m.copy_(v)


class _Call(nn.Module):
    """``update_bn`` passes one input: this unpacks a tuple of them into G's call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, args):
        return self.model(*args)


@TRICKS.register("ema")
class EMA(StepCallback, SamplingModel):
    """``G_ema <- decay * G_ema + (1 - decay) * G`` after each G step, from iteration ``start``
    (before it, G_ema copies G); samples and evaluation use G_ema (Yazıcı et al. 2019). The
    average is torch's :class:`~torch.optim.swa_utils.AveragedModel`. Batch-norm statistics of
    the online G do not fit the averaged weights, so before G_ema is used its running statistics
    are re-estimated (torch's ``update_bn``) from ``recalibrate`` batches of fresh noise and
    conditions drawn as samples draw them (its own random stream; training is untouched); 0
    copies G's."""

    name = "ema"

    def __init__(self, decay: float = 0.999, start: int = 0, recalibrate: int = 8):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay, self.start, self.recalibrate = float(decay), int(start), int(recalibrate)
        self._stale = True

    def setup(self, ctx) -> None:
        super().setup(ctx)
        self.average = AveragedModel(ctx.G, multi_avg_fn=get_ema_multi_avg_fn(self.decay),
                                     use_buffers=False)
        self.average.n_averaged.fill_(1)  # G's initial weights are the first value averaged
        self.model = self.average.module.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.src_b, self.dst_b = list(ctx.G.buffers()), list(self.model.buffers())
        self.has_norms = any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                             for m in self.model.modules())

    @torch.no_grad()
    def after_update(self, player: str) -> None:
        if player != "g":
            return
        if self.ctx.iteration < self.start:
            self.average.n_averaged.zero_()  # copy, do not average
        self.average.update_parameters(self.ctx.G)
        for d, s in zip(self.dst_b, self.src_b):
            d.copy_(s)
        self._stale = True

    def _batches(self):
        ctx = self.ctx
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed + 202)
        for _ in range(self.recalibrate):
            z = ctx.sample_latent(max(ctx.batch_size, 256), generator=gen)
            c = ctx.conditioning.draw(z.shape[0], gen)
            yield ((z,) if c is None else (z, c),)

    def sampling_model(self):
        if self._stale and self.has_norms and self.recalibrate > 0:
            update_bn(self._batches(), _Call(self.model).eval())  # leaves it in eval mode
        self._stale = False
        return self.model

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self._stale = True
