"""The interactive ruleset of ``docs/TETRIS_RULES.md`` (the original project's later game): a
person's key presses are events, every cell shows the colour (1-7) of the piece that put it
there, and full rows clear when the next piece spawns.

One event makes one new board (``InteractiveEngine.step``):

- ``DROP`` (0, the timer or the Down key) with no piece falling: clear every full row, then a
  piece drawn uniformly from the seven appears in its spawn array at top row 0, left column
  ``int(cols / 2 - width / 2)``; if it does not fit the game is over after this board; if it
  rests it locks. With a piece falling: it moves down one row and locks if it now rests.
- ``LEFT`` / ``RIGHT`` (1, 2): it moves one column if it fits there; then locks if it rests.
- ``ROTATE`` (3): the array turns a quarter clockwise (``np.rot90(a, -1)``) keeping its top-left
  corner; the first position that fits of in place, one column left, one column right, one row
  up is taken, else nothing changes; then it locks if it rests.
- ``INSTANT`` (4): the piece moves down until it rests, and locks.
- Any event but a drop with no piece falling leaves the board as it is.

A piece *fits* when its whole box lies on the board and none of its cells is on a locked cell;
it *rests* when it would not fit one row lower; it is drawn only over empty cells.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .rules import COLS, ROWS

DROP, LEFT, RIGHT, ROTATE, INSTANT = range(5)
EVENT_NAMES = ("drop", "left", "right", "rotate", "instant")
N_EVENTS = len(EVENT_NAMES)
N_CELLS = 8  # 0 empty, 1-7 the pieces' colours

# colour -> (name, spawn array), the spec's table; a piece's cells carry its colour
SPAWN_ARRAYS = {
    1: ("T", [[1, 1, 1], [0, 1, 0]]),
    2: ("S", [[0, 2, 2], [2, 2, 0]]),
    3: ("Z", [[3, 3, 0], [0, 3, 3]]),
    4: ("J", [[4, 0, 0], [4, 4, 4]]),
    5: ("L", [[0, 0, 5], [5, 5, 5]]),
    6: ("I", [[6, 6, 6, 6]]),
    7: ("O", [[7, 7], [7, 7]]),
}
COLOURS = tuple(SPAWN_ARRAYS)
PIECE_OF = {name: colour for colour, (name, _) in SPAWN_ARRAYS.items()}


def spawn_array(colour: int) -> np.ndarray:
    return np.array(SPAWN_ARRAYS[colour][1], dtype=np.int8)


def spawn_column(array: np.ndarray, cols: int = COLS) -> int:
    return int(cols / 2 - array.shape[1] / 2)


def fits(locked: np.ndarray, array: np.ndarray, top: int, left: int) -> bool:
    """The piece's whole box lies on the board and no cell of it is on a locked cell."""
    h, w = array.shape
    if top < 0 or left < 0 or top + h > locked.shape[0] or left + w > locked.shape[1]:
        return False
    return not ((array > 0) & (locked[top:top + h, left:left + w] > 0)).any()


def rests(locked: np.ndarray, array: np.ndarray, top: int, left: int) -> bool:
    return not fits(locked, array, top + 1, left)


def draw(locked: np.ndarray, array: np.ndarray, top: int, left: int) -> np.ndarray:
    """The board: locked cells plus the piece's cells where the board is empty."""
    board = locked.copy()
    h, w = array.shape
    view = board[top:top + h, left:left + w]  # the box is on the board (a spawn's always is)
    np.copyto(view, array, where=(array > 0) & (view == 0))
    return board


def clear_rows(locked: np.ndarray) -> tuple[np.ndarray, int]:
    """Remove every full row; the rows above move down and empty rows fill the top."""
    keep = ~(locked > 0).all(axis=1)
    n = int((~keep).sum())
    if not n:
        return locked, 0
    out = np.zeros_like(locked)
    out[n:] = locked[keep]
    return out, n


def rotated(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(array, -1))


ROTATION_TRIES = ((0, 0), (0, -1), (0, 1), (-1, 0))  # (rows, columns): in place, left, right, up


@dataclass
class Piece:
    array: np.ndarray
    top: int
    left: int

    @property
    def colour(self) -> int:
        return int(self.array.max())


@dataclass
class InteractiveEngine:
    """One game under the interactive ruleset; ``rng`` draws the spawned pieces. ``locked`` is
    the board without the falling piece; ``board()`` is what a frame shows."""

    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    rows: int = ROWS
    cols: int = COLS
    locked: Optional[np.ndarray] = None
    piece: Optional[Piece] = None
    over: bool = False
    cleared: int = 0  # rows cleared by the last event
    lines: int = 0  # rows cleared in this game
    spawns: int = 0  # pieces spawned in this game

    def __post_init__(self):
        if self.locked is None:
            self.locked = np.zeros((self.rows, self.cols), dtype=np.int8)

    def board(self) -> np.ndarray:
        if self.piece is None:
            return self.locked.copy()
        return draw(self.locked, self.piece.array, self.piece.top, self.piece.left)

    def _lock_if_resting(self) -> None:
        p = self.piece
        if p is not None and rests(self.locked, p.array, p.top, p.left):
            self.locked = draw(self.locked, p.array, p.top, p.left)
            self.piece = None

    def _try(self, array: np.ndarray, top: int, left: int) -> bool:
        if fits(self.locked, array, top, left):
            self.piece = Piece(array, top, left)
            return True
        return False

    def step(self, event: int, colour: Optional[int] = None) -> np.ndarray:
        """Apply one event and return the new board. ``colour`` forces the piece of a spawn
        (tests, replays); otherwise it is drawn uniformly. After game over it raises."""
        if self.over:
            raise RuntimeError("the game is over; start a new InteractiveEngine")
        if event not in range(N_EVENTS):
            raise ValueError(f"event must be 0-4 ({', '.join(EVENT_NAMES)}), got {event!r}")
        self.cleared = 0
        p = self.piece
        if p is None:
            if event == DROP:
                self._spawn(colour)
        elif event == DROP:
            self.piece = Piece(p.array, p.top + 1, p.left)
            self._lock_if_resting()
        elif event in (LEFT, RIGHT):
            self._try(p.array, p.top, p.left + (1 if event == RIGHT else -1))
            self._lock_if_resting()
        elif event == ROTATE:
            turned = rotated(p.array)
            any(self._try(turned, p.top + dr, p.left + dc) for dr, dc in ROTATION_TRIES)
            self._lock_if_resting()
        else:  # INSTANT
            top = p.top
            while fits(self.locked, p.array, top + 1, p.left):
                top += 1
            self.piece = Piece(p.array, top, p.left)
            self._lock_if_resting()
        return self.board()

    def _spawn(self, colour: Optional[int]) -> None:
        self.locked, self.cleared = clear_rows(self.locked)
        self.lines += self.cleared
        self.spawns += 1
        colour = int(self.rng.integers(1, 8)) if colour is None else int(colour)
        if colour not in SPAWN_ARRAYS:
            raise ValueError(f"colour must be 1-7, got {colour!r}")
        array = spawn_array(colour)
        left = spawn_column(array, self.cols)
        self.piece = Piece(array, 0, left)
        if not fits(self.locked, array, 0, left):
            self.over = True
            board = self.board()
            self.locked, self.piece = board, None
            return
        self._lock_if_resting()
