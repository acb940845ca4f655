"""Judging transitions of the interactive ruleset (``docs/TETRIS_RULES.md``, "Metrics"): which
next boards the rules allow from (board t, event).

A board does not mark its falling piece, so a transition is judged under the spec's lenient
reading: every way of reading some cells of board t as the falling piece (a placement of a
piece's array, in any rotation, whose cells all show that piece's colour and which does not rest
on the other cells), and the reading that no piece is falling. The legal next boards are the
union over the readings of what the engine makes of each (all seven pieces for a spawn). These
functions are for judging an emulator; nothing here is used to train one.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .interactive import DROP, SPAWN_ARRAYS, InteractiveEngine, Piece, rests, rotated


def _rotations(colour: int) -> list[np.ndarray]:
    out, a = [], np.array(SPAWN_ARRAYS[colour][1], dtype=np.int8)
    for _ in range(4):
        if not any(a.shape == b.shape and (a == b).all() for b in out):
            out.append(a)
        a = rotated(a)
    return out


ROTATIONS = {c: _rotations(c) for c in SPAWN_ARRAYS}


def falling_readings(board: np.ndarray) -> Iterator[tuple[np.ndarray, Piece]]:
    """Every (locked board, falling piece) reading of ``board``: the piece's cells show its colour
    and it does not rest on the rest of the board."""
    board = np.asarray(board)
    for colour in np.unique(board):
        colour = int(colour)
        if colour not in ROTATIONS:
            continue
        same = board == colour
        for array in ROTATIONS[colour]:
            h, w = array.shape
            if h > board.shape[0] or w > board.shape[1]:
                continue
            mask = array > 0
            windows = sliding_window_view(same, (h, w))  # (rows-h+1, cols-w+1, h, w)
            hits = np.argwhere((windows | ~mask).all(axis=(2, 3)))
            for top, left in hits:
                locked = board.copy()
                locked[top:top + h, left:left + w][mask] = 0
                if not rests(locked, array, int(top), int(left)):
                    yield locked, Piece(array, int(top), int(left))


def _outcomes(locked: np.ndarray, piece: Optional[Piece], event: int) -> Iterator[np.ndarray]:
    colours = SPAWN_ARRAYS if piece is None and event == DROP else (None,)
    for colour in colours:
        engine = InteractiveEngine(rng=np.random.default_rng(0), rows=locked.shape[0],
                                   cols=locked.shape[1], locked=locked.copy(), piece=piece)
        yield engine.step(event, colour)


def legal_next_boards(board: np.ndarray, event: int) -> dict[str, list[np.ndarray]]:
    """{"spawn": boards from the no-piece reading of a drop (one per piece), "move": boards from
    every other reading}; for a move with no piece the board itself is under "move"."""
    board = np.asarray(board, dtype=np.int8)
    out = {"spawn": [], "move": []}
    if event == DROP:
        out["spawn"] = list(_outcomes(board, None, DROP))
    else:
        out["move"].append(board.copy())
    for locked, piece in falling_readings(board):
        out["move"].extend(_outcomes(locked, piece, event))
    return out


def _member(board: np.ndarray, boards: list[np.ndarray]) -> bool:
    return any(np.array_equal(board, b) for b in boards)


def judge(before: np.ndarray, event: int, after: np.ndarray) -> dict:
    """{"legal": ``after`` is a legal next board, "spawn": it is so only as a spawn (no piece
    falling in board t)} under the lenient reading."""
    nexts = legal_next_boards(before, int(event))
    after = np.asarray(after, dtype=np.int8)
    move = _member(after, nexts["move"])
    spawn = not move and _member(after, nexts["spawn"])
    return {"legal": move or spawn, "spawn": spawn}


def legal_transition(before: np.ndarray, event: int, after: np.ndarray) -> bool:
    return judge(before, event, after)["legal"]
