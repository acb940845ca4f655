"""Sampling a trained generator: fresh samples (through the sampling filters) and the fixed
grid the run's pictures are drawn from.

Samples come from the sampling generator (an EMA copy where a trick keeps one) in eval mode,
with a random stream of their own seeded by the run's seed and iteration, so sampling never
moves training's random state and the same checkpoint always gives the same samples.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from .conditioning import Conditioning
from .hooks import SampleFilter, SamplingModel, Tricks


class Sampler:
    """Samples of the game's generator. ``G`` is a callable returning the current G."""

    def __init__(self, G: Callable[[], nn.Module], conditioning: Conditioning, latent: Callable,
                 latent_dim: int, tricks: Tricks, seed: int, device: torch.device,
                 grid_size: int = 64):
        self._G, self.conditioning, self.latent = G, conditioning, latent
        self.latent_dim, self.tricks, self.seed, self.device = latent_dim, tricks, seed, device
        gen = torch.Generator(device=device).manual_seed(seed + 3)
        self.grid_noise = latent(grid_size, latent_dim, generator=gen, device=device)
        self.grid_cond = conditioning.grid(grid_size)  # one row per class; paired: data rows
        if self.grid_cond is not None:
            self.grid_noise = self.grid_noise[:len(self.grid_cond)]

    @property
    def generator(self) -> nn.Module:
        """The generator used for samples and evaluation: an EMA copy where a trick keeps one."""
        for t in self.tricks[SamplingModel]:
            return t.sampling_model()
        return self._G()

    def generate(self, G: nn.Module, z: Tensor, cond: Optional[Tensor] = None) -> Tensor:
        """``G(z, cond)`` in chunks of 1,024."""
        if cond is None:
            return torch.cat([G(chunk) for chunk in z.split(1024)])
        return torch.cat([G(a, b) for a, b in zip(z.split(1024), cond.split(1024))])

    @torch.no_grad()
    def sample(self, iteration: int, n: Optional[int] = None, noise: Optional[Tensor] = None,
               cond: Optional[Tensor] = None, reject: bool = True,
               max_rounds: int = 1000) -> tuple[Tensor, Optional[Tensor]]:
        """``n`` samples (or one per row of ``noise``) in eval mode. Conditional games draw
        their conditions (uniform labels; a paired game's from its data) unless ``cond`` is
        given. With sampling filters and no ``noise`` given, every rejected row is drawn again,
        under its own condition, until all are accepted; ``reject=False`` skips that. Returns
        the samples and their conditions."""
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 4 + iteration)
        filters = self.tricks[SampleFilter] if (reject and noise is None) else []
        if noise is None:
            noise = self.latent(n, self.latent_dim, generator=gen, device=self.device)
        if cond is None:
            cond = self.conditioning.draw(noise.shape[0], gen)
        G = self.generator
        was = G.training
        G.eval()
        try:
            out = self.generate(G, noise, cond)
            if filters:
                out = self._redraw_rejected(G, noise, out, cond, filters, gen, max_rounds)
        finally:
            G.train(was)
        return out.float().contiguous(), cond

    def _redraw_rejected(self, G: nn.Module, noise: Tensor, out: Tensor, cond, filters: list,
                         gen: torch.Generator, max_rounds: int) -> Tensor:
        """Rejection sampling: rows any filter rejects are drawn again (same condition) until
        every row is accepted. ``noise`` (drawn by ``sample`` itself) is updated in place."""
        pending = torch.arange(out.shape[0], device=self.device)
        for _ in range(max_rounds):
            z, x = noise.index_select(0, pending), out.index_select(0, pending)
            c = cond.index_select(0, pending) if cond is not None else None
            keep = torch.ones(len(pending), dtype=torch.bool, device=self.device)
            for f in filters:
                keep &= f.accept(z, x, c, gen)
            pending = pending[~keep]
            if not len(pending):
                return out
            noise[pending] = self.latent(len(pending), self.latent_dim, generator=gen,
                                         device=self.device)
            out[pending] = self.generate(G, noise[pending], c[~keep] if c is not None else None)
        raise RuntimeError(f"sample: {len(pending)} of {out.shape[0]} samples still rejected "
                           f"after {max_rounds} rounds of {', '.join(f.key for f in filters)}")


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation between the rows of ``a`` and ``b`` (White 2016, "Sampling
    Generative Networks"); along the great circle, so an interpolated Gaussian latent keeps a
    typical norm. Parallel rows fall back to a straight line."""
    an = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    bn = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    straight = (1 - t) * a + t * b
    curved = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so.clamp_min(1e-12)
    return torch.where(so > 1e-6, curved, straight)


def latent_walk(game, keyframes: int, steps: int = 12, walks: int = 8, seed: int = 0
                ) -> list[Tensor]:
    """Frames of a walk through latent space: ``keyframes`` random latents visited in a loop,
    ``steps`` frames from each to the next by :func:`slerp`. Each frame holds ``walks``
    independent walks side by side (a class-conditional game: one walk per class, all on the
    same path). Returns the frames' images, each (walks, C, H, W) in [-1, 1]."""
    gen = torch.Generator(device=game.device).manual_seed(seed)
    cond = game.conditioning
    if cond.kind == "labels":
        walks = cond.num_classes
        labels = torch.arange(walks, device=game.device)
        keys = [game.sample_latent(1, generator=gen).expand(walks, -1) for _ in range(keyframes)]
    else:
        labels = None
        keys = [game.sample_latent(walks, generator=gen) for _ in range(keyframes)]
    frames = []
    for i in range(keyframes):
        a, b = keys[i], keys[(i + 1) % keyframes]
        for s in range(steps):
            frames.append(game.sample(noise=slerp(a, b, s / steps), labels=labels))
    return frames
