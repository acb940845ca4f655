"""The interactive emulator's data for the engine, what its examples are, and how it is judged.

Examples are one-hot boards t+1 over the 8 cell kinds (N, 8, 22, 10); conditions are one-hot
boards t with the event as 5 constant planes (N, 13, 22, 10), so the engine trains
G(z, board t + event) against D(board t+1, board t + event) like any paired game. Nothing here
tells a network what a piece, a colour or an event means: the one-hot maps are only encodings.
The metrics (``interactive_metrics``) and the rollout use the rules to judge, never to train.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..data import Dataset
from ..registry import DATASETS
from ..tasks import Task
from ..viz import save_rgb
from .encoding import event_planes, one_hot, to_boards
from .evaluate import sample_boards
from .interactive import DROP, EVENT_NAMES, N_CELLS, N_EVENTS
from .interactive_metrics import (actual_spawns, emulator_metrics, falling_readings, judge,
                                  piece_diversity)
from .interactive_recordings import load_interactive, record_transitions
from .players import make_player
from .rules import COLS, ROWS

# the pieces' colours on screen (0 empty); the same palette as the web and terminal games
PALETTE = np.array([[0, 0, 0], [160, 0, 240], [0, 220, 0], [230, 0, 0], [0, 60, 240],
                    [240, 160, 0], [0, 220, 240], [240, 230, 0]], np.uint8)


def encode(boards: np.ndarray, events: np.ndarray) -> torch.Tensor:
    """Boards t (N, 22, 10) of 0-7 and events (N,) -> the conditions (N, 13, 22, 10)."""
    boards = np.asarray(boards)
    return torch.cat([one_hot(boards, N_CELLS), event_planes(events, boards.shape[1:],
                                                             N_EVENTS)], 1)


def decode_events(cond: torch.Tensor) -> torch.Tensor:
    return cond[:, N_CELLS:N_CELLS + N_EVENTS, 0, 0].argmax(1)


def predict(game, boards, events, samples: int = 1, seed: int = 0, batch: int = 2048
            ) -> np.ndarray:
    """Boards (N, 22, 10) of 0-7 and events (N,) -> (N, K, 22, 10) int8 predictions, one per
    noise draw, from the game's sampling generator in eval mode."""
    boards, events = np.asarray(boards), np.asarray(events)
    return sample_boards(game, lambda a, b: encode(boards[a:b], events[a:b]), len(boards),
                         boards.shape[1:], samples, seed, batch)


def evaluate_transitions(game, boards: np.ndarray, events: np.ndarray,
                         diversity_samples: int = 50, seed: int = 0) -> dict:
    """Every interactive metric on transitions ``boards`` (N, 2, 22, 10) and ``events`` (N,)."""
    x, y = boards[:, 0], boards[:, 1]
    p = predict(game, x, events, 1, seed)[:, 0]
    m = emulator_metrics(x, events, y, p)
    spawn = actual_spawns(x, events, y)
    if spawn.any() and diversity_samples:
        m.update(piece_diversity(x[spawn], predict(game, x[spawn], events[spawn],
                                                   diversity_samples, seed + 1)))
    return m


def evaluate_splits(game, sets: dict, diversity_samples: int = 50) -> dict:
    out = {}
    for split, (boards, events) in sets.items():
        m = evaluate_transitions(game, boards, events, diversity_samples)
        counts = m.pop("piece_counts", {})
        m.update({f"piece_{k}": v for k, v in counts.items()})
        out.update({f"{split}/{k}": v for k, v in m.items()})
    return out


def random_events(rng: np.random.Generator, n: int) -> np.ndarray:
    """The spec's rollout player: uniformly random events, a drop at least every third."""
    out, since = np.empty(n, np.int64), 0
    for i in range(n):
        e = DROP if since >= 2 else int(rng.integers(N_EVENTS))
        since = 0 if e == DROP else since + 1
        out[i] = e
    return out


class BoardView:
    """What a built-in player sees of a board the emulator made: the board read as the rules
    would (its first falling-piece reading, or none), shaped like an ``InteractiveEngine`` so
    the players can play on the model's output. ``spawns`` counts new pieces as they appear."""

    def __init__(self):
        self.spawns, self.locked, self.piece = 0, None, None

    def see(self, board: np.ndarray) -> "BoardView":
        reading = next(falling_readings(board), None)
        had = self.piece is not None
        self.locked, self.piece = reading if reading else (board.copy(), None)
        self.spawns += int(self.piece is not None and not had)
        return self


@torch.no_grad()
def rollout(game, events: int = 10_000, seed: int = 0, keep_frames: bool = False,
            player: str = "random") -> dict:
    """The emulator plays on its own output for ``events`` events from an empty board; each
    transition is judged with the spec's lenient reading, and an illegal board or a game over
    starts a new game. ``player``: ``random`` (the spec's checks: uniformly random events, a
    drop at least every third) or a built-in player that looks at the emulator's boards
    (``human``). Returns legality, games and (optionally) the frames and events."""
    rng = np.random.default_rng(seed)
    agent = None if player == "random" else make_player(player, rng)
    evs = random_events(rng, events) if agent is None else None
    G = game.sampling_generator
    was = G.training
    G.eval()
    gen = torch.Generator(device=game.device).manual_seed(seed)
    board, view = np.zeros((ROWS, COLS), np.int8), BoardView()
    legal, games, frames, played = 0, 0, [board] if keep_frames else [], []
    try:
        for i in range(events):
            e = int(evs[i]) if agent is None else int(agent(view.see(board)))
            c = encode(board[None], np.array([e])).to(game.device)
            nxt = to_boards(G(game.sample_latent(1, generator=gen), c))[0].cpu().numpy()
            verdict = judge(board, e, nxt)
            legal += verdict["legal"]
            if not verdict["legal"] or verdict["over"]:
                games += 1
                nxt = np.zeros_like(board)
                if agent is not None:
                    agent.new_game()
            board = nxt
            if keep_frames:
                frames.append(board)
                played.append(EVENT_NAMES[e])
    finally:
        G.train(was)
    return {"legality": legal / events, "legal": legal, "events": events, "games": games,
            "frames": frames, "played": played}


def render(cond: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, scale: int = 8
           ) -> np.ndarray:
    """Rows of board t | event | prediction | truth in the pieces' colours, with titles."""
    from PIL import Image, ImageDraw
    x, p, y = (to_boards(t[:, :N_CELLS]).cpu().numpy() for t in (cond, fake, real))
    ev = decode_events(cond).cpu().numpy()
    label_w, sep = 7 * scale, scale // 2
    w = 3 * COLS * scale + label_w + 3 * sep
    h = len(x) * (ROWS * scale + sep) + 16
    im = Image.new("RGB", (w, h), (70, 70, 70))
    draw = ImageDraw.Draw(im)
    for i, title in enumerate(("board t", "event", "prediction", "truth")):
        left = [0, COLS * scale + sep, COLS * scale + label_w + 2 * sep,
                2 * COLS * scale + label_w + 3 * sep][i]
        draw.text((left + 2, 2), title, fill=(230, 230, 230))
    for r in range(len(x)):
        top = 16 + r * (ROWS * scale + sep)
        for col, board in ((0, x[r]), (COLS * scale + label_w + 2 * sep, p[r]),
                           (2 * COLS * scale + label_w + 3 * sep, y[r])):
            pic = np.kron(PALETTE[board], np.ones((scale, scale, 1), np.uint8))
            im.paste(Image.fromarray(pic), (col, top))
        draw.text((COLS * scale + sep + 2, top + ROWS * scale // 2 - 5), EVENT_NAMES[ev[r]],
                  fill=(255, 255, 255))
    return np.array(im)  # writable, for TensorBoard


class TetrisPlayTask(Task):
    """(board t, event, board t+1) transitions; ``sets`` are {split: (boards, events)} evaluated
    during training, with ``samples`` noise draws per spawn input for piece diversity."""

    def __init__(self, sets: Optional[dict] = None, samples: int = 50):
        self.sets, self.samples = sets or {}, samples

    def to_data_scale(self, x):
        return to_boards(x)

    def draw(self, samples, path, *, conditions=None, truth=None, classes=0, title=""):
        grid = render(conditions, samples, truth)
        save_rgb(grid, path)
        return grid

    def evaluate(self, game, n=None, inception=None) -> dict:
        super().evaluate(game, n, inception)
        return evaluate_splits(game, self.sets, diversity_samples=self.samples)

    def describe(self) -> str:
        return "interactive Tetris transitions"


@DATASETS.register("tetris-play")
def tetris_play(path: Optional[str] = None, seed: int = 0, split: str = "train",
                record: int = 60_000, player: str = "human", test_player: Optional[str] = None,
                eval_train: int = 1000, eval_test: int = 2000, eval_samples: int = 50
                ) -> Dataset:
    """``path``: an interactive recording (later-layout folder or compact file); without one,
    ``record`` transitions of ``player`` are recorded in memory from the run's seed. Evaluation
    uses the first ``eval_train`` training transitions and ``eval_test`` test ones (the
    recording's other split, or games of ``test_player`` (default ``player``) recorded from
    another stream)."""
    make_player(test_player or player, np.random.default_rng(0))  # a bad name fails now
    test = None
    if path:
        data = load_interactive(path)
        if split not in data:
            raise ValueError(f"{path}: has no {split} split")
        boards, events = data[split]
        other = "test" if split == "train" else "train"
        if other in data:
            test = (data[other][0][:eval_test], data[other][1][:eval_test])
    else:
        boards, events = record_transitions(record, np.random.default_rng([seed, 0]), player)
    if test is None and eval_test:
        test = record_transitions(eval_test, np.random.default_rng([seed, 2]),
                                  test_player or player)
    sets = {"train": (boards[:eval_train], events[:eval_train])} if eval_train else {}
    if test is not None and len(test[1]):
        sets["test"] = test
    return Dataset(examples=one_hot(boards[:, 1], N_CELLS), conditions=encode(boards[:, 0], events),
                   task=TetrisPlayTask(sets, eval_samples))
