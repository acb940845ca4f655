"""Rollouts: the emulator plays on its own output from an empty board.

Each transition is checked against the rules (a legal fall or a legal spawn). A legal spawn whose
piece rests at once with a cell in row 0 ends the game; so does any illegal transition that
leaves row 0 filled with no legal spawn behind it. After a game ends the rollout restarts from
an empty board, as the spec says.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import numpy as np

from .evaluate import predict
from .metrics import legal_fall, spawn_piece, spawned_piece_rests
from .pieces import CLASSIC, PieceSet
from .rules import empty_board
from .task import text_band


def rollout(game, frames: int, seed: int = 0, keep_frames: bool = False,
            pieces: PieceSet = CLASSIC, keep_errors: bool = False) -> dict:
    """``frames`` frames of the emulator on its own output, judged under the game ``pieces``.
    ``keep_errors``: also return each illegal transition as (frame index, board t, board t+1)
    under ``errors``."""
    board = empty_board(pieces)
    legal = illegal = games = 0
    counts = np.zeros(len(pieces), np.int64)
    kept = [board.copy()] if keep_frames else None
    errors = []
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        nxt = predict(game, board[None], 1, seed=int(rng.integers(2**31)))[0, 0].astype(np.int32)
        idx = spawn_piece(board, nxt, pieces)[0]
        spawn = idx >= 0
        ok = spawn or legal_fall(board, nxt, pieces)
        legal += ok
        illegal += not ok
        if keep_errors and not ok:
            errors.append((legal + illegal - 1, board.copy(), nxt.copy()))
        if spawn:
            counts[idx] += 1
        over = (spawn and spawned_piece_rests(board, nxt, pieces) and nxt[0].any()) or \
            (not ok and nxt[0].any() and not spawn)
        board = empty_board(pieces) if over else nxt
        games += over
        if keep_frames:
            kept.append(nxt)
            if over:
                kept.append(board.copy())
    total = legal + illegal
    return {"frames": total, "legal": int(legal), "legality": legal / total if total else None,
            "games_finished": int(games), "spawns": dict(zip(pieces.names, counts.tolist())),
            "frames_kept": kept, **({"errors": errors} if keep_errors else {})}


def board_image(board: np.ndarray, caption: str, scale: int = 12,
                palette: Optional[np.ndarray] = None) -> np.ndarray:
    """One frame: the board's filled cells white on black (or each cell value in its
    ``palette`` colour), a grey grid and outline, and a caption band above it."""
    board = np.asarray(board)
    rows, cols = board.shape
    img = np.zeros((rows * scale + 1, cols * scale + 1, 3), np.uint8)
    colours = (palette[board.astype(np.int64)] if palette is not None else
               np.repeat(((board > 0) * 235).astype(np.uint8)[..., None], 3, 2))
    img[:rows * scale, :cols * scale] = np.kron(colours, np.ones((scale, scale, 1), np.uint8))
    img[::scale, :] = np.maximum(img[::scale, :], 70)  # grid lines
    img[:, ::scale] = np.maximum(img[:, ::scale], 70)
    img[[0, -1], :] = 160  # outline
    img[:, [0, -1]] = 160
    return np.concatenate([text_band(img.shape[1], [(2, caption)]), img], 0)


def save_gif(frames: list, path: str | Path, scale: int = 12, ms: int = 80,
             limit: Optional[int] = 2000, events: Optional[list] = None,
             palette: Optional[np.ndarray] = None) -> Path:
    """The frames as an animated GIF, each captioned with its frame number (and the event that
    made it, where given). Warns when no frame differs from the first."""
    from PIL import Image
    frames = list(frames[:limit])
    if len(frames) > 1 and all(np.array_equal(frames[0], f) for f in frames[1:]):
        print(f"ganlab: warning: {path}: nothing moved in {len(frames)} frames (the emulator "
              "never changed the board)", file=sys.stderr)
    imgs = []
    for i, f in enumerate(frames):
        caption = f"frame {i}" + (f"  {events[i]}" if events and i < len(events) else "")
        imgs.append(Image.fromarray(board_image(f, caption, scale, palette)))
    path = Path(path)
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=ms, loop=0)
    return path
