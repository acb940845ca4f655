"""The ``tetris`` dataset for the engine: examples are one-hot boards t+1, conditions one-hot
boards t (N, 2, 22, 10), so the engine trains G(z, board t) against D(board t+1, board t)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..data import Dataset
from ..registry import DATASETS
from .encoding import one_hot
from .recordings import RecordingError, load_recording, record_pairs
from .task import TetrisTask


@DATASETS.register("tetris")
def tetris(path: Optional[str] = None, seed: int = 0, split: str = "train",
           record: int = 100_000, eval_train: int = 2000, eval_test: int = 5000,
           eval_samples: int = 50, every_frame: bool = False) -> Dataset:
    """``path``: a recording (original-layout folder or compact file); without one, ``record``
    training pairs are recorded in memory with the run's seed. Evaluation (``train.eval_every``)
    uses the first ``eval_train`` training pairs and ``eval_test`` test pairs (the recording's
    test split, or freshly recorded games), with ``eval_samples`` noise draws per spawn input.

    ``every_frame`` (for a recording made here) takes every consecutive pair of a game, not only
    the original layout's (0, 1), (2, 3), ...: in that layout a game's first piece is seen as
    board t at every other row only (a height-2 piece locked on the empty floor, for one, is
    always an odd frame and never board t), while an emulator playing on its own output is fed
    every frame."""
    if path:
        pairs = load_recording(path, split)[split]
        other = "test" if split == "train" else "train"
        try:
            test = load_recording(path, other)[other][:eval_test]
        except RecordingError:
            test = None
    else:
        pairs = record_pairs(record, np.random.default_rng([seed, 0 if split == "train" else 1]),
                             every_frame)
        test = None
    if test is None and eval_test:
        test = record_pairs(eval_test, np.random.default_rng([seed, 2]))
    sets = {"train": pairs[:eval_train]} if eval_train else {}
    if test is not None and len(test):
        sets["test"] = test
    x, y = one_hot(pairs[:, 0]), one_hot(pairs[:, 1])
    return Dataset(examples=y, conditions=x, task=TetrisTask(sets, eval_samples))
