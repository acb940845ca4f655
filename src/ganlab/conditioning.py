"""What G and D are conditioned on, as one object: nothing, class labels, or a paired input.

- :class:`Unconditional`: ``G(z)`` and ``D(x)``.
- :class:`ClassLabels`: ``G(z, y)`` and ``D(x, y)`` for class labels ``y`` (conditional GANs):
  real examples come with their own labels, fakes get uniformly drawn ones, sample grids one row
  per class.
- :class:`PairedInput`: ``G(z, c)`` and ``D(x, c)`` for a condition ``c`` stored with each
  example (image-to-image, the Tetris emulator's board t): fakes are generated from the real
  batch's own conditions, samples and references from conditions drawn from the data.

The training step, the sampler and every trick draw conditions through these methods and call
the networks through :meth:`Conditioning.call`, so none of them branches on the kind.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .errors import ConfigError


class Conditioning:
    """No conditioning: every draw is None."""

    kind = "none"
    num_classes = 0

    def __init__(self, values: Optional[Tensor] = None):
        self.values = values  # (N, ...) per data row: labels or paired conditions

    def call(self, model: nn.Module, x: Tensor, c: Optional[Tensor]):
        """``model(x)`` or ``model(x, c)``."""
        return model(x) if c is None else model(x, c)

    def of_rows(self, idx: Tensor) -> Optional[Tensor]:
        """The conditions of data rows ``idx`` (a real batch's own)."""
        return None if self.values is None else self.values.index_select(0, idx)

    def for_fakes(self, n: int, generator: torch.Generator, rank: int = 0, world: int = 1,
                  real: Optional[Tensor] = None) -> Optional[Tensor]:
        """Conditions for ``n`` fakes of a training step (``real``: the real batch's), drawn
        with the training noise ``generator`` (under torchrun: this rank's slice of the global
        draw)."""
        return None

    def draw(self, n: int, generator: torch.Generator, distinct: bool = False
             ) -> Optional[Tensor]:
        """Conditions for ``n`` samples or reference examples, from their own ``generator``
        (on the generator's device). ``distinct``: data rows without repetition."""
        return None

    def grid(self, n: int) -> Optional[Tensor]:
        """The fixed conditions of the sample grids."""
        return None

    def to(self, device) -> "Conditioning":
        if self.values is not None:
            self.values = self.values.to(device)
        return self


class ClassLabels(Conditioning):
    """Class labels in ``[0, num_classes)``; ``values``: the data's labels."""

    kind = "labels"

    def __init__(self, num_classes: int, values: Tensor):
        super().__init__(values)
        self.num_classes = int(num_classes)

    def for_fakes(self, n, generator, rank=0, world=1, real=None):
        y = torch.randint(self.num_classes, (n * world,), generator=generator,
                          device=generator.device)
        return y[rank * n:(rank + 1) * n] if world > 1 else y

    def draw(self, n, generator, distinct=False):
        return torch.randint(self.num_classes, (n,), generator=generator,
                             device=generator.device)

    def grid(self, n):
        return torch.arange(n, device=self.values.device) * self.num_classes // n


class PairedInput(Conditioning):
    """A paired input per example (``values``: (N, ...) conditions)."""

    kind = "paired"

    def for_fakes(self, n, generator, rank=0, world=1, real=None):
        if real is None:
            raise ValueError("a paired game generates fakes from the real batch's conditions")
        return real

    def draw(self, n, generator, distinct=False):
        rows = (torch.randperm(len(self.values), generator=generator)[:n] if distinct else
                torch.randint(len(self.values), (n,), generator=generator,
                              device=generator.device))
        return self.values[rows.to(self.values.device)]

    def grid(self, n):
        return self.values[:n]


def conditioning_for(G: nn.Module, labels: Optional[Tensor], conditions: Optional[Tensor]
                     ) -> Conditioning:
    """The conditioning a generator and a dataset imply: class labels for a generator with
    ``num_classes``, a paired input for a dataset with conditions, else none."""
    num_classes = int(getattr(G, "num_classes", 0) or 0)
    if num_classes and conditions is not None:
        raise ConfigError("model: a game is conditioned on labels or on paired conditions, "
                          "not both")
    if num_classes:
        if labels is None:
            raise ConfigError("model: a conditional generator needs a dataset with labels")
        return ClassLabels(num_classes, labels)
    if conditions is not None:
        return PairedInput(conditions)
    return Conditioning()
