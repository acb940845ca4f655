"""Tricks on what D sees: instance noise, PacGAN packing, and the replay buffer of past fakes."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..hooks import FakeTransform, InputTransform, Seeded
from ..registry import TRICKS


@TRICKS.register("instance-noise")
class InstanceNoise(Seeded, InputTransform):
    """Gaussian noise added to every input of D, real and fake, its std annealed linearly from
    ``std`` to ``final_std`` over ``anneal_iters`` (Sønderby et al. 2017; Arjovsky & Bottou
    2017)."""

    name = "instance_noise"

    def __init__(self, std: float = 0.1, final_std: float = 0.0, anneal_iters: int = 10_000):
        self.std, self.final_std, self.anneal_iters = float(std), float(final_std), int(anneal_iters)

    def current_std(self, iteration: int) -> float:
        frac = min(1.0, iteration / self.anneal_iters) if self.anneal_iters > 0 else 1.0
        return self.std + (self.final_std - self.std) * frac

    def d_input(self, x: Tensor, phase: str) -> Tensor:
        s = self.current_std(self.ctx.iteration)
        if s <= 0:
            return x
        return x + s * torch.randn(x.shape, generator=self.gen, device=x.device, dtype=x.dtype)


@TRICKS.register("pack")
class Pack(InputTransform):
    """PacGAN (Lin et al. 2018): groups of ``m`` consecutive examples become one input to D,
    concatenated along dimension 1 (features of points, channels of images). The batch size
    must divide by m, and D must be built for m times the input size."""

    name = "pack"
    groups_d_rows = True

    def __init__(self, m: int = 2):
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        self.m = int(m)

    def setup(self, ctx) -> None:
        super().setup(ctx)
        if ctx.batch_size % self.m:
            raise ValueError(f"data.batch_size ({ctx.batch_size}) must divide by m ({self.m})")
        if ctx.conditioning.kind != "none":
            raise ValueError("packing is not defined for conditional games")
        probe = ctx.data.examples[:2 * self.m].to(ctx.device)
        try:
            with torch.no_grad():
                ctx.D.eval()
                ctx.D(self.d_input(probe, "probe"))
        except RuntimeError:
            shape = tuple(self.d_input(probe, "probe").shape[1:])
            raise ValueError(f"D does not accept packed inputs of shape {shape}: build it for "
                             f"{self.m} times the input size (e.g. "
                             f"model.discriminator.args.in_dim={shape[0]})") from None
        finally:
            ctx.D.train()

    def d_input(self, x: Tensor, phase: str) -> Tensor:
        n = x.shape[0]
        if n % self.m:
            raise ValueError(f"pack: a batch of {n} does not divide into groups of {self.m}")
        grouped = x.reshape((n // self.m, self.m) + tuple(x.shape[1:]))
        return grouped.flatten(1, 2)


@TRICKS.register("replay-buffer")
class ReplayBuffer(Seeded, FakeTransform):
    """Experience replay (Shrivastava et al. 2017): keeps up to ``size`` past fakes; each D step
    replaces a ``ratio`` share of the fake batch with random pool entries (with their
    conditions), then stores the fresh fakes in random pool slots."""

    name = "replay_buffer"

    def __init__(self, size: int = 1024, ratio: float = 0.5):
        if size < 1 or not 0 <= ratio <= 1:
            raise ValueError(f"size must be >= 1 and ratio in [0, 1]; got {size}, {ratio}")
        self.size, self.ratio = int(size), float(ratio)
        self.pool: Optional[Tensor] = None
        self.pool_labels: Optional[Tensor] = None
        self.filled = 0

    def d_fakes(self, fake, cond):
        fresh, fresh_cond = fake, cond
        n = fake.shape[0]
        k = int(round(self.ratio * n)) if self.filled else 0
        if k:
            take = torch.randint(self.filled, (k,), generator=self.gen, device=fake.device)
            slots = torch.randperm(n, generator=self.gen, device=fake.device)[:k]
            fake = fake.clone()
            fake[slots] = self.pool[take]
            if cond is not None:
                cond = cond.clone()
                cond[slots] = self.pool_labels[take]
        self._store(fresh, fresh_cond)
        return fake, cond

    def _store(self, x: Tensor, c: Optional[Tensor]) -> None:
        if self.pool is None:
            self.pool = x.new_zeros((self.size,) + tuple(x.shape[1:]))
            if c is not None:
                self.pool_labels = c.new_zeros((self.size,) + tuple(c.shape[1:]))
        n = x.shape[0]
        free = min(self.size - self.filled, n)
        idx = torch.arange(self.filled, self.filled + free, device=x.device)
        if n > free:  # pool full: overwrite random slots
            idx = torch.cat([idx, torch.randint(self.size, (n - free,), generator=self.gen,
                                                device=x.device)])
        self.pool[idx] = x.detach()
        if c is not None:
            self.pool_labels[idx] = c
        self.filled += free

    def state_dict(self) -> dict:
        s = super().state_dict()
        s.update({"filled": self.filled, "pool": self.pool, "pool_labels": self.pool_labels})
        return s

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.filled, self.pool, self.pool_labels = state["filled"], state["pool"], state["pool_labels"]
