"""The classic ruleset of ``docs/TETRIS_RULES.md``: 22 x 10 board, row 0 at the top; pieces
spawn in rows 0-1, fall one row per tick with no side moves or rotation, and lock the tick they
come to rest.

One tick (``TetrisEngine.tick``):

1. if any *locked* cell is in row 0 the game is over: no new frame;
2. with no piece falling, a piece drawn uniformly from the seven appears at its spawn cells;
   otherwise the falling piece moves down one row;
3. if the piece now rests (a cell in row 21, or a locked cell directly below one of its cells)
   it locks at once;
4. the frame is the locked cells plus the falling piece's cells.

A spawn cell that is already locked (a stack that reached row 1) simply shows as filled; the
piece then rests at once, locks into row 0 and the game ends on the next tick.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .pieces import CLASSIC, PieceSet

ROWS, COLS = CLASSIC.rows, CLASSIC.cols
PIECES = dict(zip(CLASSIC.names, CLASSIC.cells))
PIECE_NAMES = CLASSIC.names


def empty_board(pieces: PieceSet = CLASSIC) -> np.ndarray:
    return np.zeros((pieces.rows, pieces.cols), dtype=np.int32)


SPAWN_MASKS = CLASSIC.masks  # (7, 3, 10): rows 0-2


@dataclass
class TetrisEngine:
    """One game under the classic ruleset. ``rng`` draws the spawned pieces; ``pieces`` is the
    piece set and board size (the seven tetrominoes on 22 x 10 unless given another)."""

    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    pieces: PieceSet = CLASSIC
    locked: Optional[np.ndarray] = None
    falling: Optional[np.ndarray] = None  # (n, 2) rows and columns of the falling piece
    piece: Optional[str] = None
    over: bool = False

    def __post_init__(self):
        if self.locked is None:
            self.locked = np.zeros((self.pieces.rows, self.pieces.cols), dtype=bool)

    def frame(self) -> np.ndarray:
        board = self.locked.astype(np.int32)
        if self.falling is not None:
            board[self.falling[:, 0], self.falling[:, 1]] = 1
        return board

    def _rests(self, cells: np.ndarray) -> bool:
        rows, cols = cells[:, 0], cells[:, 1]
        if (rows == self.pieces.rows - 1).any():
            return True
        return bool(self.locked[rows + 1, cols].any())

    def tick(self, piece: Optional[str] = None) -> Optional[np.ndarray]:
        """Advance one tick and return the new frame, or None if the game is over. ``piece``
        forces the piece of a spawn (tests, replays); otherwise it is drawn uniformly."""
        if self.over or self.locked[0].any():
            self.over = True
            return None
        if self.falling is None:
            names = self.pieces.names
            name = piece if piece is not None else names[self.rng.integers(len(names))]
            if name not in names:
                raise ValueError(f"unknown piece {name!r}; valid: {', '.join(names)}")
            self.piece = name
            self.falling = np.array(self.pieces.cells[names.index(name)], dtype=np.int64)
        else:
            self.falling = self.falling + np.array([1, 0])
        if self._rests(self.falling):
            self.locked[self.falling[:, 0], self.falling[:, 1]] = True
            self.falling, self.piece = None, None
        return self.frame()

    def play(self, max_frames: int = 100_000) -> np.ndarray:
        """Frames of a whole game from the empty board (frame 0) until game over."""
        frames = [self.frame()]
        while len(frames) < max_frames:
            f = self.tick()
            if f is None:
                break
            frames.append(f)
        return np.stack(frames)

