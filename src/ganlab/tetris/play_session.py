"""One game of interactive Tetris as a person plays it, whoever makes the boards: the rule engine
(``engine="rule"``, the reference game) or a trained emulator (``engine="model"``), which
produces every board from the last one and the key pressed. The terminal game (``ganlab tetris
play``) and the web page (``ganlab tetris serve``) are thin views of this object.

Each key press, and the game's timer, is an event (docs/TETRIS_RULES.md): ``step(event)``
returns the new board. Lines and score are read off the boards as the rules define them (full
rows of board t cleared by a spawn), so they count the same for both engines. With the model,
every board is judged with the spec's lenient reading and ``illegal`` says when the model made
one the rules do not allow. ``mode="prob"`` samples each cell from the model's per-cell
probabilities, as the original's probabilistic mode did, instead of taking the likeliest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import ConfigError
from .encoding import to_boards
from .interactive import EVENT_NAMES, InteractiveEngine
from .interactive_metrics import judge
from .interactive_recordings import append_layout
from .play_emulator import encode
from .rules import COLS, ROWS

ENGINES = ("rule", "model")
MODES = ("normal", "prob")
POINTS = {0: 0, 1: 40, 2: 100, 3: 300, 4: 1200}  # the classic scoring per rows cleared at once
TIMER_MS = 800  # the timer's drop interval


class PlaySession:
    def __init__(self, engine: str = "rule", game=None, mode: str = "normal", seed: int = 0,
                 record: Optional[str | Path] = None):
        if engine not in ENGINES:
            raise ConfigError(f"--engine: unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
        if mode not in MODES:
            raise ConfigError(f"--mode: unknown mode {mode!r}; valid: {', '.join(MODES)}")
        if engine == "model" and game is None:
            raise ConfigError("--engine model needs a trained interactive emulator (RUN)")
        self.engine_name, self.game, self.mode = engine, game, mode
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator(device=game.device if game is not None else "cpu"
                                   ).manual_seed(seed)
        self._cpu_gen = torch.Generator().manual_seed(seed + 1)
        self.record_to = Path(record) if record else None
        self.recorded: list[tuple[np.ndarray, int, np.ndarray]] = []
        self.new_game()

    # ------------------------------------------------------------------ state
    def new_game(self) -> np.ndarray:
        self.rules = InteractiveEngine(rng=self.rng)
        self.board = self.rules.board()
        self.lines = self.score = self.events = self.illegal_boards = 0
        self.over = False
        self.illegal = False  # the last board was one the rules do not allow
        return self.board

    def state(self) -> dict:
        return {"board": self.board.tolist(), "lines": self.lines, "score": self.score,
                "over": self.over, "illegal": self.illegal, "illegal_boards": self.illegal_boards,
                "events": self.events, "engine": self.engine_name, "mode": self.mode}

    # ------------------------------------------------------------------ one event
    def step(self, event: int) -> np.ndarray:
        if event not in range(len(EVENT_NAMES)):
            raise ValueError(f"event must be 0-4 ({', '.join(EVENT_NAMES)}), got {event!r}")
        if self.over:
            return self.board
        before = self.board
        if self.engine_name == "rule":
            after = self.rules.step(event)
            self.over, cleared = self.rules.over, self.rules.cleared
        else:
            after = self._predict(before, event)
            verdict = judge(before, event, after)
            self.illegal = not verdict["legal"]
            self.illegal_boards += self.illegal
            self.over = bool(verdict["over"])
            cleared = int((before > 0).all(1).sum()) if verdict["spawn"] else 0
        self.lines += cleared
        self.score += POINTS.get(cleared, 0)
        self.events += 1
        if self.record_to is not None:
            self.recorded.append((before, int(event), after))
        self.board = after
        return after

    @torch.no_grad()
    def _predict(self, board: np.ndarray, event: int) -> np.ndarray:
        game = self.game
        G = game.sampling_generator
        was = G.training
        G.eval()
        try:
            c = encode(board[None], np.array([event])).to(game.device)
            z = game.sample_latent(1, generator=self.gen)
            probs = G(z, c)
        finally:
            G.train(was)
        if self.mode == "prob":
            flat = probs[0].permute(1, 2, 0).reshape(-1, probs.shape[1]).float().cpu()
            cells = torch.multinomial(flat, 1, generator=self._cpu_gen).reshape(ROWS, COLS)
            return cells.numpy().astype(np.int8)
        return to_boards(probs)[0].cpu().numpy()

    # ------------------------------------------------------------------ recording
    def save_recording(self) -> Optional[range]:
        """Append the transitions played so far to ``record/train/`` (later layout)."""
        if self.record_to is None or not self.recorded:
            return None
        boards = np.stack([np.stack([b, a]) for b, _, a in self.recorded])
        events = np.array([e for _, e, _ in self.recorded])
        done = append_layout(self.record_to / "train", boards, events)
        self.recorded.clear()
        return done
