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


def _outcomes(locked: np.ndarray, piece: Optional[Piece], event: int, over: Optional[list] = None
              ) -> Iterator[np.ndarray]:
    colours = SPAWN_ARRAYS if piece is None and event == DROP else (None,)
    for colour in colours:
        engine = InteractiveEngine(rng=np.random.default_rng(0), rows=locked.shape[0],
                                   cols=locked.shape[1], locked=locked.copy(), piece=piece)
        board = engine.step(event, colour)
        if over is not None:
            over.append(engine.over)
        yield board


def spawn_boards(board: np.ndarray, over: Optional[list] = None) -> list[np.ndarray]:
    """The seven next boards of a drop with no piece falling (clear full rows, then each piece
    in colour order); ``over`` gets whether each ends the game."""
    return list(_outcomes(np.asarray(board, dtype=np.int8), None, DROP, over))


def legal_next_boards(board: np.ndarray, event: int) -> dict[str, list[np.ndarray]]:
    """{"spawn": boards from the no-piece reading of a drop (one per piece, in colour order),
    "over": whether each of those ends the game, "move": boards from every other reading}; for
    a move with no piece the board itself is under "move"."""
    board = np.asarray(board, dtype=np.int8)
    out = {"spawn": [], "move": [], "over": []}  # over: per spawn board, whether the game ended
    if event == DROP:
        out["spawn"] = spawn_boards(board, out["over"])
    else:
        out["move"].append(board.copy())
    for locked, piece in falling_readings(board):
        out["move"].extend(_outcomes(locked, piece, event))
    return out


def _member(board: np.ndarray, boards: list[np.ndarray]) -> bool:
    return any(np.array_equal(board, b) for b in boards)


def _index(board: np.ndarray, boards: list[np.ndarray]) -> int:
    return next((i for i, b in enumerate(boards) if np.array_equal(board, b)), -1)


def judge(before: np.ndarray, event: int, after: np.ndarray) -> dict:
    """{"legal": ``after`` is a legal next board, "spawn": it is so only as a spawn (no piece
    falling in board t), "colour": the spawned piece's colour (1-7) or 0, "over": the spawn ends
    the game} under the lenient reading."""
    nexts = legal_next_boards(before, int(event))
    after = np.asarray(after, dtype=np.int8)
    move = _member(after, nexts["move"])
    i = -1 if move else _index(after, nexts["spawn"])
    return {"legal": move or i >= 0, "spawn": i >= 0, "colour": i + 1,
            "over": i >= 0 and nexts["over"][i]}


def legal_transition(before: np.ndarray, event: int, after: np.ndarray) -> bool:
    return judge(before, event, after)["legal"]


# --------------------------------------------------------------------------- emulator metrics

EVENT_KEYS = ("drop", "left", "right", "rotate", "instant")


def actual_spawns(x: np.ndarray, e: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per transition, whether a piece spawned: a drop after which row 0 shows a cell that was
    empty in board t (every spawn array has cells in its top row, and no move can raise a cell
    into row 0 on a drop)."""
    return (np.asarray(e) == DROP) & ((y[:, 0] > 0) & (x[:, 0] == 0)).any(1)


def emulator_metrics(x: np.ndarray, e: np.ndarray, y: np.ndarray, p: np.ndarray) -> dict:
    """The spec's interactive metrics of predictions ``p`` (N, 22, 10) for transitions (x, e, y):
    board accuracy per event type over the non-spawns (``board_accuracy_drop`` ...) and over all
    of them (``board_accuracy``), line-clear accuracy (rows 2-21 of the spawns that clear rows),
    spawn recall, precision and validity (a legal spawn of board t), cell accuracy."""
    x, y, p, e = (np.asarray(a) for a in (x, y, p, e))
    same = (p == y).reshape(len(p), -1).all(1)
    spawn, predicted = actual_spawns(x, e, y), actual_spawns(x, e, p)
    m = {"cell_accuracy": float((p == y).mean()) if len(p) else None}
    fixed = ~spawn
    m["board_accuracy"] = float(same[fixed].mean()) if fixed.any() else None
    for i, name in enumerate(EVENT_KEYS):
        sel = fixed & (e == i)
        m[f"board_accuracy_{name}"] = float(same[sel].mean()) if sel.any() else None
    clears = spawn & (x > 0).all(2).any(1)
    m["line_clears"] = int(clears.sum())
    m["line_clear_accuracy"] = (float((p[clears, 2:] == y[clears, 2:]).reshape(
        int(clears.sum()), -1).all(1).mean()) if clears.any() else None)
    tp = spawn & predicted
    m["spawns"] = int(spawn.sum())
    m["spawn_recall"] = float(tp.sum() / spawn.sum()) if spawn.any() else None
    m["spawn_precision"] = float(tp.sum() / predicted.sum()) if predicted.any() else None
    ok = [_member(p[i], spawn_boards(x[i])) for i in np.flatnonzero(predicted)]
    m["spawn_validity"] = float(np.mean(ok)) if ok else None
    return m


def piece_diversity(x: np.ndarray, samples: np.ndarray) -> dict:
    """For spawn inputs ``x`` (M, 22, 10) and K predictions each (M, K, 22, 10): how often each
    colour is the legal spawn predicted, and the total-variation distance of those counts to
    uniform over the seven (0: every piece equally often, 6/7: always the same)."""
    counts = np.zeros(len(SPAWN_ARRAYS), np.int64)
    for board, preds in zip(x, samples):
        spawns = np.stack(spawn_boards(board))  # (7, 22, 10)
        eq = (preds[:, None] == spawns[None]).reshape(len(preds), len(spawns), -1).all(-1)
        hit = eq.any(1)
        counts += np.bincount(eq.argmax(1)[hit], minlength=len(spawns))
    total = counts.sum()
    tv = float(0.5 * np.abs(counts / total - 1 / len(counts)).sum()) if total else None
    names = [SPAWN_ARRAYS[c][0] for c in sorted(SPAWN_ARRAYS)]
    return {"piece_counts": dict(zip(names, counts.tolist())), "piece_tv": tv,
            "valid_samples": int(total), "samples": int(samples.shape[0] * samples.shape[1])}
