"""Tricks that rewrite the networks before training: spectral normalisation and virtual batch
normalisation (each a :class:`~ganlab.hooks.ModelTransform`)."""
from __future__ import annotations

import torch
from torch import nn

from ..hooks import ModelTransform
from ..models.norms import attach_reference, to_virtual_batch_norm
from ..registry import TRICKS


def apply_spectral_norm(model: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """torch's spectral normalisation on every linear and convolution layer of ``model``."""
    from torch.nn.utils.parametrizations import spectral_norm
    targets = [m for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d))]
    for m in targets:
        dim = 1 if isinstance(m, nn.ConvTranspose2d) else 0
        spectral_norm(m, n_power_iterations=n_power_iterations, dim=dim)
    return model


@TRICKS.register("spectral-norm")
class SpectralNorm(ModelTransform):
    """Spectral normalisation of D's (and, with ``generator: true``, G's) linear and convolution
    weights (Miyato et al. 2018)."""

    name = "spectral_norm"

    def __init__(self, discriminator: bool = True, generator: bool = False,
                 power_iterations: int = 1):
        self.which, self.n_power = (discriminator, generator), int(power_iterations)

    def transform(self) -> None:
        for flag, model in zip(self.which, (self.ctx.D, self.ctx.G)):
            if flag:
                apply_spectral_norm(model, self.n_power)


@TRICKS.register("virtual-batch-norm")
class VirtualBatchNorm(ModelTransform):
    """Virtual batch norm (Salimans et al. 2016, sec. 3.5): every batch-norm layer of G (and of D
    with ``discriminator: true``) becomes a :class:`~ganlab.models.norms.VirtualBatchNorm`, and a
    reference batch of ``size`` inputs, chosen once at the start, runs with every call: G's is
    noise with conditions drawn as samples draw them (uniform labels; distinct rows of a paired
    data set), D's the first ``size`` real examples of a fixed permutation (with their
    conditions). D's reference enters D as stored: the input transforms (instance noise) are not
    applied to it. Costs one extra forward of ``size`` rows per call."""

    name = "virtual_batch_norm"

    def __init__(self, size: int = 64, generator: bool = True, discriminator: bool = False):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size, self.which = int(size), (generator, discriminator)

    def transform(self) -> None:
        ctx = self.ctx
        clash = [t.key for t in ctx.tricks if t.groups_d_rows or t.reads_d_activations]
        if self.which[1] and clash:
            raise ValueError(f"a virtual-batch-norm D does not combine with {clash[0]}: its "
                             f"reference rows would enter the packed groups / features")
        gen = torch.Generator().manual_seed(ctx.seed + 303)
        for flag, model, who in zip(self.which, (ctx.G, ctx.D), ("G", "D")):
            if not flag:
                continue
            if not to_virtual_batch_norm(model):
                raise ValueError(f"{who} has no batch-norm layer to make virtual (build it with "
                                 f"norm: batch)")
            ref = self._g_reference(gen) if who == "G" else self._d_reference(gen)
            attach_reference(model, tuple(t.to(ctx.device) for t in ref))

    def _g_reference(self, gen):
        z = self.ctx.sample_latent(self.size, generator=gen, device="cpu")
        c = self.ctx.conditioning.draw(self.size, gen, distinct=True)
        return (z,) if c is None else (z, c)

    def _d_reference(self, gen):
        data = self.ctx.data
        idx = torch.randperm(len(data), generator=gen)[:self.size]
        c = self.ctx.conditioning.of_rows(idx.to(self.ctx.device))
        x = data.examples[idx]
        return (x,) if c is None else (x, c)
