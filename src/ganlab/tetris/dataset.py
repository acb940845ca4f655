"""The ``tetris`` dataset for the engine: examples are one-hot boards t+1, conditions one-hot
boards t (N, 2, 22, 10), so the engine trains G(z, board t) against D(board t+1, board t)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..data import Dataset
from ..registry import DATASETS
from .encoding import one_hot
from .pieces import CLASSIC, load_pieces, pieces_beside
from .recordings import RecordingError, load_recording, record_pairs
from .task import TetrisPairs, TetrisTask


@DATASETS.register("tetris")
def tetris(path: Optional[str] = None, seed: int = 0, split: str = "train",
           record: int = 100_000, eval_train: int = 2000, eval_test: int = 5000,
           eval_samples: int = 50, every_frame: bool = False, pieces: Optional[str] = None,
           rows: Optional[int] = None, cols: Optional[int] = None) -> Dataset:
    """``path``: a recording (original-layout folder or compact file) of any board size; without
    one, ``record`` training pairs are recorded in memory with the run's seed, of the game in the
    piece file ``pieces`` (the seven tetrominoes unless given) on a ``rows`` x ``cols`` board. The
    metrics read a recording's piece set from the ``pieces.json`` beside it (22 x 10 recordings
    without one, the original project's, are taken as the seven tetrominoes); a recording of another
    size without one trains all the same, with evaluation off. Evaluation (``train.eval_every``)
    uses the first ``eval_train`` training pairs and ``eval_test`` test pairs (the recording's test
    split, or freshly recorded games), with ``eval_samples`` noise draws per spawn input.

    ``every_frame`` (for a recording made here) takes every consecutive pair of a game, not only
    the original layout's (0, 1), (2, 3), ...: in that layout a game's first piece is seen as
    board t at every other row only (a height-2 piece locked on the empty floor, for one, is
    always an odd frame and never board t), while an emulator playing on its own output is fed
    every frame."""
    if path:
        if pieces or rows or cols:
            raise ValueError("data.args.pieces, rows and cols make an in-memory recording; a "
                             "recording at data.path names its own (pieces.json)")
        pairs = load_recording(path, split)[split]
        game = pieces_beside(path)
        if game is None and pairs.shape[2:] == (CLASSIC.rows, CLASSIC.cols):
            game = CLASSIC
        other = "test" if split == "train" else "train"
        try:
            test = load_recording(path, other)[other][:eval_test]
        except RecordingError:
            test = None
    else:
        game = (load_pieces(pieces, rows, cols) if pieces else CLASSIC.resized(rows, cols))
        pairs = record_pairs(record, np.random.default_rng([seed, 0 if split == "train" else 1]),
                             every_frame, game)
        test = None
    if game is not None and (game.rows, game.cols) != pairs.shape[2:]:
        raise RecordingError(f"{path}: its pieces.json is for {game.rows} x {game.cols} boards, "
                             f"but the pairs are {pairs.shape[2]} x {pairs.shape[3]}")
    if test is None and eval_test and game is not None:
        test = record_pairs(eval_test, np.random.default_rng([seed, 2]), pieces=game)
    sets = {"train": pairs[:eval_train]} if eval_train else {}
    if test is not None and len(test):
        sets["test"] = test
    x, y = one_hot(pairs[:, 0]), one_hot(pairs[:, 1])
    task = TetrisPairs() if game is None else TetrisTask(sets, eval_samples, game)
    return Dataset(examples=y, conditions=x, task=task)
