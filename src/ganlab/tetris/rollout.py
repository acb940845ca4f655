"""Rollouts: the emulator plays on its own output from an empty board.

Each transition is checked against the rules (a legal fall or a legal spawn). A legal spawn whose
piece rests at once with a cell in row 0 ends the game; so does any illegal transition that
leaves row 0 filled with no legal spawn behind it. After a game ends the rollout restarts from
an empty board, as the spec says.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .evaluate import predict
from .metrics import legal_fall, legal_spawn, spawn_piece, spawned_piece_rests
from .rules import PIECE_NAMES, empty_board


def rollout(game, frames: int, seed: int = 0, keep_frames: bool = False) -> dict:
    board = empty_board()
    legal = illegal = games = 0
    counts = np.zeros(7, np.int64)
    kept = [board.copy()] if keep_frames else None
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        nxt = predict(game, board[None], 1, seed=int(rng.integers(2**31)))[0, 0].astype(np.int32)
        spawn = legal_spawn(board, nxt)
        ok = spawn or legal_fall(board, nxt)
        legal += ok
        illegal += not ok
        if spawn:
            idx = spawn_piece(board[None], nxt[None])[0]
            if idx >= 0:
                counts[idx] += 1
        over = (spawn and spawned_piece_rests(board, nxt) and nxt[0].any()) or \
            (not ok and nxt[0].any() and not spawn)
        board = empty_board() if over else nxt
        games += over
        if keep_frames:
            kept.append(nxt)
            if over:
                kept.append(board.copy())
    total = legal + illegal
    return {"frames": total, "legal": int(legal), "legality": legal / total if total else None,
            "games_finished": int(games), "spawns": dict(zip(PIECE_NAMES, counts.tolist())),
            "frames_kept": kept}


def save_gif(frames: list, path: str | Path, scale: int = 12, ms: int = 80,
             limit: Optional[int] = 2000) -> Path:
    from PIL import Image
    imgs = []
    for f in frames[:limit]:
        a = np.kron(np.asarray(f, np.uint8) * 255, np.ones((scale, scale), np.uint8))
        imgs.append(Image.fromarray(a))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=ms, loop=0)
    return path
