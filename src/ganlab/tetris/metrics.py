"""The emulator metrics of ``docs/TETRIS_RULES.md`` on (x = board t, y = true t+1, p = predicted t+1).

Boards are 0/1 arrays or tensors of shape (N, 22, 10), or of another game's board size: the
functions that judge a spawn or a fall take its ``pieces`` (a :class:`~.pieces.PieceSet`, the
seven tetrominoes unless given). Undefined values (nothing predicted, no
spawn in the split) are returned as ``None``, never as 0 or NaN, so callers report them as such.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .pieces import CLASSIC, PieceSet


def _np(a, pieces: Optional[PieceSet] = None) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or (pieces is not None and a.shape[-2:] != (pieces.rows, pieces.cols)):
        want = f"{pieces.rows}, {pieces.cols}" if pieces is not None else "rows, cols"
        raise ValueError(f"boards must have shape (N, {want}), got {a.shape}")
    return a.astype(bool)


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num) / float(den) if den else None


def actual_spawns(x, y) -> np.ndarray:
    """x row 0 empty and y row 0 has a filled cell."""
    x, y = _np(x), _np(y)
    return ~x[:, 0].any(-1) & y[:, 0].any(-1)


def predicted_spawns(x, p) -> np.ndarray:
    """x row 0 empty and p row 0 has a filled cell."""
    x, p = _np(x), _np(p)
    return ~x[:, 0].any(-1) & p[:, 0].any(-1)


def spawn_piece(x, p, pieces: PieceSet = CLASSIC) -> np.ndarray:
    """Per example, the index into ``pieces.names`` of the piece that ``p`` shows spawned on ``x``,
    or -1: the spec's ruling on spawn validity. A spawn is valid when x's row 0 is empty, rows 0-2
    of p are rows 0-2 of x united with the piece's spawn mask (``p[0:3] == x[0:3] | mask``: the
    piece may cover a locked cell in row 1) and rows 3-21 are unchanged. Where two masks match (O
    and S, when x has both (1, 3) and (1, 5) filled) it is the first in PIECE_NAMES, O. This one
    reading serves validity, piece diversity, the rollout's legal spawns and the trainer's
    outcome of a pair (``task.spawned_piece``). For another piece set, "rows 0-2" are its spawn
    rows (``pieces.spawn_rows``: the tallest piece's height plus one)."""
    x, p = _np(x, pieces), _np(p, pieces)
    k = pieces.spawn_rows
    rest_same = (p[:, k:] == x[:, k:]).all(axis=(1, 2)) & ~x[:, 0].any(-1)
    union = x[:, None, :k] | pieces.masks[None].astype(bool)  # (N, pieces, k, cols)
    eq = (union == p[:, None, :k]).all(axis=(2, 3))  # (N, pieces)
    return np.where(eq.any(1) & rest_same, eq.argmax(1), -1)


def board_ceiling(spawn_share: float, n_pieces: int = 7) -> float:
    """The best board accuracy any emulator can expect: (1 - s) + s / 7 (7: the pieces)."""
    return (1 - spawn_share) + spawn_share / n_pieces


def emulator_metrics(x, y, p, pieces: PieceSet = CLASSIC) -> dict:
    """Cell, board and fall accuracy; spawn recall, precision and validity; the split's
    ceilings. ``p`` holds one prediction per example. Spawn validity follows the spec's ruling
    (``spawn_piece``), so the true boards score 1.0 on it."""
    x, y, p = _np(x, pieces), _np(y, pieces), _np(p, pieces)
    n = len(x)
    same = p == y
    board_ok = same.all(axis=(1, 2))
    act, pred = actual_spawns(x, y), predicted_spawns(x, p)
    valid = spawn_piece(x, p, pieces) >= 0
    tp = (act & pred).sum()
    falls = ~act
    share = act.mean() if n else 0.0
    return {
        "n": int(n),
        "cell_accuracy": float(same.mean()) if n else None,
        "board_accuracy": float(board_ok.mean()) if n else None,
        "fall_accuracy": _ratio(board_ok[falls].sum(), falls.sum()),
        "spawn_recall": _ratio(tp, act.sum()),
        "spawn_precision": _ratio(tp, pred.sum()),
        "spawn_validity": _ratio((pred & valid).sum(), pred.sum()),
        "spawn_share": float(share),
        "board_accuracy_ceiling": board_ceiling(float(share), len(pieces)),
        "actual_spawns": int(act.sum()),
        "predicted_spawns": int(pred.sum()),
    }


def piece_diversity(x_spawn, samples, pieces: PieceSet = CLASSIC) -> dict:
    """For actual-spawn inputs ``x_spawn`` (N, rows, cols) and ``samples`` (N, K, rows, cols)
    predicted with K noise draws each: counts of each valid spawned piece and the total-variation
    distance of their distribution to uniform (0: all pieces equally often; 6/7 for the seven:
    always the same piece)."""
    x = _np(x_spawn, pieces)
    s = samples.detach().cpu().numpy() if hasattr(samples, "detach") else np.asarray(samples)
    shape = (pieces.rows, pieces.cols)
    if s.ndim != 4 or s.shape[0] != len(x) or s.shape[2:] != shape:
        raise ValueError(f"samples must have shape (N={len(x)}, K, {shape[0]}, {shape[1]}), "
                         f"got {s.shape}")
    k, m = s.shape[1], len(pieces)
    which = spawn_piece(np.repeat(x, k, axis=0), s.reshape(-1, *shape), pieces)
    counts = np.bincount(which[which >= 0], minlength=m)
    total = counts.sum()
    tv = 0.5 * float(np.abs(counts / total - 1 / m).sum()) if total else None
    return {"piece_counts": dict(zip(pieces.names, counts.tolist())), "piece_tv": tv,
            "valid_spawns": int(total), "samples": int(len(which))}


def _resting(cells_mask: np.ndarray, others: np.ndarray) -> bool:
    """Whether a piece (mask) rests: a cell in the last row or above a cell of ``others``."""
    if cells_mask[-1].any():
        return True
    return bool((cells_mask[:-1] & others[1:]).any())


def legal_fall(before, after, pieces: PieceSet = CLASSIC) -> bool:
    """``after`` is ``before`` with one falling piece (a spawn-orientation shape anywhere, not
    resting) moved down one row, everything else unchanged."""
    b, a = _np(before, pieces)[0], _np(after, pieces)[0]
    rows, cols = b.shape
    removed, added = b & ~a, a & ~b
    if not removed.any() or removed.sum() != added.sum():
        return False
    top = np.argwhere(removed)[:, 0].min()  # every shape has a cell in its top row
    for cells in pieces.shapes:
        rr = cells[:, 0] + top
        if rr.max() >= rows - 1:
            continue  # on the floor it would rest, so it cannot fall
        for dc in range(-cells[:, 1].min(), cols - cells[:, 1].max()):
            cc = cells[:, 1] + dc
            if not b[rr, cc].all():
                continue
            piece = np.zeros((rows, cols), bool)
            piece[rr, cc] = True
            rest = b & ~piece
            if _resting(piece, rest):
                continue
            moved = np.zeros((rows, cols), bool)
            moved[rr + 1, cc] = True
            if np.array_equal(rest | moved, a) and not (moved & rest).any():
                return True
    return False


def legal_spawn(before, after, pieces: PieceSet = CLASSIC) -> bool:
    """``after`` is ``before`` plus one piece's spawn cells, with row 0 of ``before`` empty (no
    game over): a valid spawn in the sense of ``spawn_piece`` (a spawn cell may already be
    locked, a stack reaching row 1; it then shows as filled)."""
    return bool(spawn_piece(before, after, pieces)[0] >= 0)


def spawned_piece_rests(before, after, pieces: PieceSet = CLASSIC) -> bool:
    """After a legal spawn: whether the new piece rests at once (it locks; with a cell in row 0
    the game is over)."""
    b = _np(before, pieces)[0]
    idx = spawn_piece(before, after, pieces)[0]
    if idx < 0:
        raise ValueError("spawned_piece_rests: the transition is not a legal spawn")
    piece = np.zeros(b.shape, bool)
    piece[:pieces.spawn_rows] = pieces.masks[idx].astype(bool)
    if (piece & b).any():
        return True
    return _resting(piece, b)
