"""The ``tetris`` dataset for the engine: examples are one-hot boards t+1, conditions one-hot
boards t (N, 2, 22, 10), so the engine trains G(z, board t) against D(board t+1, board t)."""
from __future__ import annotations

from functools import partial
from typing import Optional

import numpy as np
import torch

from ..data import DATASETS, Dataset
from .recordings import RecordingError, load_recording, one_hot, record_pairs
from .rules import COLS, ROWS, SPAWN_MASKS


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


def stochastic(cond: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Which (board t, board t+1) pairs of one-hot boards have a random outcome: the spawns
    (board t's row 0 empty and board t+1's row 0 filled, as the spec defines an actual spawn)."""
    return (cond[:, 1, 0].sum(-1) == 0) & (real[:, 1, 0].sum(-1) > 0)


def spawned_piece(cond: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per pair of one-hot boards, the index (``PIECE_NAMES`` order) of the piece that spawned, or
    -1 for a fall: the random outcome of a Tetris tick. As in the rules (and
    ``metrics.legal_spawn``), rows 0-2 of board t+1 are board t united with the piece's spawn
    cells: on a stack that reaches row 1 the piece covers locked cells, so ``t+1 - t`` is not its
    mask and the difference alone would call the pair deterministic. Where the stack makes two
    pieces' unions identical, the first is named (both outcomes are the same board)."""
    masks = torch.as_tensor(SPAWN_MASKS, dtype=real.dtype, device=real.device)
    union = (cond[:, None, 1, :3] + masks[None]).clamp_max(1)  # (N, 7, 3, 10)
    eq = (union == real[:, None, 1, :3]).flatten(2).all(-1)  # (N, 7)
    idx = eq.to(torch.int64).argmax(1)
    return torch.where(eq.any(1) & stochastic(cond, real), idx, torch.full_like(idx, -1))


# what the reconstruction trick's ``codes: all`` / ``codes: encoded`` read from a paired dataset
OUTCOME_HOOKS = {"stochastic": stochastic, "encode": spawned_piece}


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
    return Dataset(examples=y, conditions=x, kind="boards", to_data_scale=to_boards,
                   info={"render": render, "pairs": len(pairs), **OUTCOME_HOOKS,
                         "evaluate": partial(_evaluate, sets=sets, samples=eval_samples)})


def _evaluate(game, sets: dict, samples: int) -> dict:
    from .evaluate import evaluate_splits
    return evaluate_splits(game, sets, diversity_samples=samples)
