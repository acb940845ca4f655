"""The training step's inputs: real batches from the data and latents from the noise stream.

Both streams are seeded from the run's seed and checkpointed (the batch sampler's epoch state
and position, the noise generator's state), so a resumed run draws exactly what the
uninterrupted run draws. Under torchrun every rank draws the global batch and keeps its slice.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from .conditioning import Conditioning
from .data import BatchSampler


class TrainingInputs:
    """Real batches (examples on the device with their conditions) and training noise."""

    def __init__(self, examples: Tensor, conditioning: Conditioning, latent: Callable,
                 latent_dim: int, batch_size: int, seed: int, device: torch.device,
                 rank: int = 0, world: int = 1):
        self.examples, self.conditioning = examples, conditioning
        self.latent, self.latent_dim = latent, latent_dim
        self.batch_size, self.device, self.rank, self.world = batch_size, device, rank, world
        self.sampler = BatchSampler(len(examples), batch_size, seed + 1, rank, world)
        self.noise_gen = torch.Generator(device=device).manual_seed(seed + 2)

    def real_batch(self) -> tuple[Tensor, Optional[Tensor]]:
        """The next real batch and its own labels or conditions (None when unconditioned)."""
        return self.real_rows()[:2]

    def real_rows(self) -> tuple[Tensor, Optional[Tensor], Tensor]:
        """:meth:`real_batch` with the rows of ``examples`` it holds."""
        idx = self.sampler.next_indices().to(self.device, non_blocking=True)
        return self.examples.index_select(0, idx), self.conditioning.of_rows(idx), idx

    def noise(self, n: int) -> Tensor:
        """Latents for ``n`` examples: with several ranks, this rank's slice of the global draw."""
        z = self.latent(n * self.world, self.latent_dim, generator=self.noise_gen,
                        device=self.device)
        return z[self.rank * n:(self.rank + 1) * n] if self.world > 1 else z

    def fake_conditions(self, n: int, real: Optional[Tensor] = None) -> Optional[Tensor]:
        """Conditions for ``n`` fakes (``real``: the real batch's, which paired games reuse)."""
        return self.conditioning.for_fakes(n, self.noise_gen, self.rank, self.world, real)

    def state_dict(self) -> dict:
        return {"noise": self.noise_gen.get_state(), "sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.noise_gen.set_state(state["noise"])
        self.sampler.load_state_dict(state["sampler"])
