"""Datasets, registered by name: each factory returns an in-memory :class:`Dataset`.

Factories take ``path`` (``data.path`` of the config, may be ``None``) and ``seed`` plus their own
keyword arguments (``data.args``). Examples are kept as one float tensor in the model's scale
(images in [-1, 1]); the dataset's :class:`~ganlab.tasks.Task` says what they are: how to draw
them, which metrics apply, and how generated examples map back to the data's own scale (MNIST:
[0, 1] intensities; toy points: coordinates as they are).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from ..registry import DATASETS, ConfigError
from ..tasks import ImageTask, PointsTask, Task


@dataclass
class Dataset:
    examples: Tensor  # (N, ...) float32, model scale
    labels: Optional[Tensor] = None  # (N,) int64 class labels, where the data has them
    conditions: Optional[Tensor] = None  # (N, ...) paired inputs (e.g. board t for board t+1)
    task: Task = field(default_factory=Task)  # what the examples are (ganlab.tasks)
    name: str = ""

    def __len__(self) -> int:
        return self.examples.shape[0]

    @property
    def example_shape(self) -> tuple:
        return tuple(self.examples.shape[1:])

    def to_data_scale(self, x: Tensor) -> Tensor:
        return self.task.to_data_scale(x)

    @classmethod
    def of(cls, examples) -> "Dataset":
        """A dataset of a plain tensor: images if it is (N, C, H, W), else points."""
        x = torch.as_tensor(examples, dtype=torch.float32)
        return cls(examples=x, task=ImageTask(unit_scale=False) if x.dim() == 4 else PointsTask())


class BatchSampler:
    """Random minibatches without replacement, epoch after epoch (last partial batch dropped).

    With ``world`` ranks every rank draws the same global batch of ``world * batch_size``
    indices and keeps its own slice (``rank``). Its whole state is the RNG state at the start of
    the current epoch plus the position in that epoch's permutation, so a resumed run draws
    exactly the batches the uninterrupted run draws.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if batch_size * world > n:
            ranks = f" x {world} ranks" if world > 1 else ""
            raise ConfigError(f"data.batch_size: {batch_size}{ranks} is larger than the dataset "
                              f"({n} examples)")
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
        self.gen = torch.Generator().manual_seed(seed)
        self._new_epoch()

    def _new_epoch(self):
        self.epoch_state = self.gen.get_state()
        self.perm = torch.randperm(self.n, generator=self.gen)
        self.pos = 0

    def next_indices(self) -> Tensor:
        step = self.batch_size * self.world
        if self.pos + step > self.n:
            self._new_epoch()
        start = self.pos + self.rank * self.batch_size
        idx = self.perm[start:start + self.batch_size]
        self.pos += step
        return idx

    def state_dict(self) -> dict:
        return {"epoch_state": self.epoch_state.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["epoch_state"])
        self._new_epoch()
        self.pos = int(state["pos"])


def load_dataset(name: str, path: Optional[str] = None, args: dict | None = None,
                 seed: int = 0) -> Dataset:
    ds = DATASETS.build(name, args, where="data", path=path, seed=seed)
    ds.name = name
    ds.ganlab_spec = {"name": name, "path": path, "args": dict(args or {})}  # for run configs
    return ds


from . import cifar, imagefolder, mnist, toy  # noqa: E402,F401  (register the datasets)

__all__ = ["DATASETS", "Dataset", "BatchSampler", "load_dataset"]
