"""The ``tetris`` dataset for the engine: examples are one-hot boards t+1, conditions one-hot
boards t (N, 2, 22, 10), so the engine trains G(z, board t) against D(board t+1, board t)."""
from __future__ import annotations

from functools import partial
from typing import Optional

import numpy as np
import torch

from ..data import DATASETS, Dataset
from .recordings import RecordingError, load_recording, one_hot, record_pairs
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
           record: int = 100_000, eval_train: int = 2000, eval_test: int = 5000,
           eval_samples: int = 50) -> Dataset:
    """``path``: a recording (original-layout folder or compact file); without one, ``record``
    training pairs are recorded in memory with the run's seed. Evaluation (``train.eval_every``)
    uses the first ``eval_train`` training pairs and ``eval_test`` test pairs (the recording's
    test split, or freshly recorded games), with ``eval_samples`` noise draws per spawn input."""
    if path:
        pairs = load_recording(path, split)[split]
        other = "test" if split == "train" else "train"
        try:
            test = load_recording(path, other)[other][:eval_test]
        except RecordingError:
            test = None
    else:
        pairs = record_pairs(record, np.random.default_rng([seed, 0 if split == "train" else 1]))
        test = None
    if test is None and eval_test:
        test = record_pairs(eval_test, np.random.default_rng([seed, 2]))
    sets = {"train": pairs[:eval_train]}
    if test is not None and len(test):
        sets["test"] = test
    x, y = one_hot(pairs[:, 0]), one_hot(pairs[:, 1])
    return Dataset(examples=y, conditions=x, kind="boards", to_data_scale=to_boards,
                   info={"render": render, "pairs": len(pairs),
                         "evaluate": partial(_evaluate, sets=sets, samples=eval_samples)})


def _evaluate(game, sets: dict, samples: int) -> dict:
    from .evaluate import evaluate_splits
    return evaluate_splits(game, sets, diversity_samples=samples)
