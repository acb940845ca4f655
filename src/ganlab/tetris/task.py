"""What the emulator's examples are: (board t, board t+1) pairs as one-hot maps. The task draws
them (board t | prediction | truth), evaluates an emulator with the metrics of
``docs/TETRIS_RULES.md``, and names the random outcome of a pair (which piece spawned) for the
reconstruction trick."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..tasks import Task
from ..viz import save_rgb
from .encoding import to_boards
from .evaluate import evaluate_splits
from .pieces import CLASSIC, PieceSet


COLUMNS = ("board t", "prediction", "truth")


def render(cond: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, scale: int = 6,
           titles: bool = True) -> np.ndarray:
    """Rows of board t | prediction | truth, filled cells white, separators grey; with
    ``titles`` a band on top names the three columns."""
    rows = []
    h, w = cond.shape[-2:]
    for x, p, y in zip(to_boards(cond), to_boards(fake), to_boards(real)):
        sep = np.full((h, 1), 128, np.uint8)
        x, p, y = (b.cpu().numpy().astype(np.uint8) * 255 for b in (x, p, y))
        rows.append(np.concatenate([x, sep, p, sep, y],
                                   1).astype(np.uint8))
        rows.append(np.full((1, 3 * w + 2), 128, np.uint8))
    img = np.concatenate(rows[:-1], 0)
    img = np.kron(img, np.ones((scale, scale), np.uint8))
    img = np.repeat(img[..., None], 3, axis=2)
    if not titles:
        return img
    width = (w + 1) * scale
    band = text_band(img.shape[1], [(i * width + 1, name) for i, name in enumerate(COLUMNS)])
    return np.concatenate([band, img], 0)


def text_band(width: int, labels: list, height: int = 14) -> np.ndarray:
    """A dark (height, width, 3) band with each ``(x, text)`` written at x (PIL's own font)."""
    from PIL import Image, ImageDraw
    im = Image.new("RGB", (width, height), (40, 40, 40))
    draw = ImageDraw.Draw(im)
    for x, text in labels:
        draw.text((x, 1), text, fill=(230, 230, 230))
    return np.asarray(im)


def stochastic(cond: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Which (board t, board t+1) pairs of one-hot boards have a random outcome: the spawns
    (board t's row 0 empty and board t+1's row 0 filled, as the spec defines an actual spawn)."""
    return (cond[:, 1, 0].sum(-1) == 0) & (real[:, 1, 0].sum(-1) > 0)


def spawned_piece(cond: torch.Tensor, real: torch.Tensor,
                  pieces: PieceSet = CLASSIC) -> torch.Tensor:
    """Per pair of one-hot boards, the index (``pieces.names`` order) of the piece that spawned, or
    -1 for a fall: the random outcome of a Tetris tick, read as the spec's ruling reads a spawn
    (``metrics.spawn_piece``, in torch): board t's row 0 empty, rows 0-2 of board t+1 equal to
    board t united with the piece's spawn cells (on a stack that reaches row 1 the piece covers
    locked cells), rows 3-21 unchanged; of two matching masks (O and S) the first, O."""
    k = pieces.spawn_rows
    masks = torch.as_tensor(pieces.masks, dtype=real.dtype, device=real.device)
    union = (cond[:, None, 1, :k] + masks[None]).clamp_max(1)  # (N, pieces, k, cols)
    eq = (union == real[:, None, 1, :k]).flatten(2).all(-1)  # (N, pieces)
    rest_same = (cond[:, 1, k:] == real[:, 1, k:]).flatten(1).all(-1)
    idx = eq.to(torch.int64).argmax(1)
    ok = eq.any(1) & rest_same & (cond[:, 1, 0].sum(-1) == 0)
    return torch.where(ok, idx, torch.full_like(idx, -1))


class TetrisPairs(Task):
    """Emulator pairs of a game nobody named (a folder of ``.npy`` pairs with no piece file):
    training needs nothing but the pairs, so this task draws them and sizes the networks to
    the board, and has neither metrics nor a reader of the spawned piece (``encode``), both of
    which need the piece set. See :class:`TetrisTask` for a game with one."""

    def model_args(self, data) -> dict:
        _, rows, cols = data.example_shape  # the board size comes from the data
        return {"rows": rows, "cols": cols}

    def to_data_scale(self, x):
        return to_boards(x)

    def draw(self, samples, path, *, conditions=None, truth=None, classes=0, title=""):
        grid = render(conditions, samples, truth, scale=8)
        save_rgb(grid, path)
        return grid

    @staticmethod
    def stochastic(cond, real):
        return stochastic(cond, real)

    def describe(self) -> str:
        return "Tetris board pairs"


class TetrisTask(TetrisPairs):
    """Emulator pairs of a game with a known piece set; ``sets`` are the (N, 2, rows, cols)
    pairs evaluated during training (``train`` and ``test`` splits), with ``samples`` noise draws
    per spawn input for piece diversity. ``pieces`` (the game's piece set) is used only by the
    metrics and the hand-written reader (``encode``)."""

    def __init__(self, sets: Optional[dict] = None, samples: int = 50,
                 pieces: PieceSet = CLASSIC):
        self.sets, self.samples, self.pieces = sets or {}, samples, pieces

    def evaluate(self, game, n=None, inception=None) -> dict:
        super().evaluate(game, n, inception)
        return evaluate_splits(game, self.sets, diversity_samples=self.samples,
                               pieces=self.pieces)

    def encode(self, cond, real):
        """The hand-written reader of the spawned piece (the piece set's spawn masks)."""
        return spawned_piece(cond, real, self.pieces)
