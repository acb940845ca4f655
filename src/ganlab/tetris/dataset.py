"""The ``tetris`` dataset for the engine: examples are one-hot boards t+1, conditions one-hot
boards t (N, 2, 22, 10), so the engine trains G(z, board t) against D(board t+1, board t)."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..data import DATASETS, Dataset
from .recordings import load_recording, one_hot, record_pairs
from .rules import COLS, ROWS


def to_boards(t: torch.Tensor) -> torch.Tensor:
    """One-hot or probability maps (N, 2, 22, 10) -> 0/1 boards (N, 22, 10) by argmax."""
    return t.argmax(1).to(torch.int8)


def render(cond: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, scale: int = 6) -> np.ndarray:
    """Rows of board t | prediction | truth, filled cells white, separators grey."""
    rows = []
    for x, p, y in zip(to_boards(cond), to_boards(fake), to_boards(real)):
        sep = np.full((ROWS, 1), 128, np.uint8)
        x, p, y = (b.numpy().astype(np.uint8) * 255 for b in (x, p, y))
        rows.append(np.concatenate([x, sep, p, sep, y],
                                   1).astype(np.uint8))
        rows.append(np.full((1, 3 * COLS + 2), 128, np.uint8))
    img = np.concatenate(rows[:-1], 0)
    img = np.kron(img, np.ones((scale, scale), np.uint8))
    return np.repeat(img[..., None], 3, axis=2)


@DATASETS.register("tetris")
def tetris(path: Optional[str] = None, seed: int = 0, split: str = "train",
           record: int = 100_000) -> Dataset:
    """``path``: a recording (original-layout folder or compact file); without one, ``record``
    training pairs are recorded in memory with the run's seed."""
    if path:
        pairs = load_recording(path, split)[split]
    else:
        pairs = record_pairs(record, np.random.default_rng([seed, 0 if split == "train" else 1]))
    x, y = one_hot(pairs[:, 0]), one_hot(pairs[:, 1])
    return Dataset(examples=y, conditions=x, kind="boards", to_data_scale=to_boards,
                   info={"render": render, "pairs": len(pairs)})
