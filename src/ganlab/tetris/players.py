"""Built-in players of the interactive ruleset, which make recordings to train the emulator on.

- ``human``: plays like a person. For each new piece it picks a target rotation and column with a
  simple placement heuristic (low stack, few holes, flat surface, cleared lines; Lee's weights),
  sometimes a worse one, walks the piece there with rotate / left / right, hesitates and slips,
  while the game's timer drops the piece now and then; at the target it mostly presses instant
  drop, else lets it fall. Each game draws its own skill, so recordings hold long games with
  clears of every size as well as tall stacks and quick game overs. Its events come out in about
  the proportions of the original project's human recordings (40% drop, 24% right, 15% left, 11%
  rotate, 10% instant drop).
- ``random``: uniformly random events, with a drop at least every third event (the spec's rollout
  player).

A player is called once per event with the engine (it sees the board and the falling piece, as a
person at the screen does) and returns the event.
"""
from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np

from ..errors import ConfigError
from .interactive import DROP, INSTANT, LEFT, RIGHT, ROTATE, InteractiveEngine, draw, rotated

# Lee's weights for height, lines, holes and bumpiness (a well-known hand-tuned Tetris heuristic)
W_HEIGHT, W_LINES, W_HOLES, W_BUMPS = -0.51, 0.76, -0.36, -0.18


def _scores(boards: np.ndarray) -> np.ndarray:
    """Lee's score of each board (K, rows, cols) once its full rows are cleared."""
    filled = boards > 0
    k, rows, cols = filled.shape
    full = filled.all(2)  # (K, rows)
    lines = full.sum(1)
    kept = filled & ~full[:, :, None]
    below = np.cumsum((~full)[:, ::-1], 1)[:, ::-1]  # rows that stay, from each row down
    any_c = kept.any(1)
    top = np.where(any_c, kept.argmax(1), rows - 1)  # (K, cols)
    heights = np.where(any_c, np.take_along_axis(below, top, 1), 0)
    holes = (heights - kept.sum(1)).sum(1)
    bumps = np.abs(np.diff(heights, axis=1)).sum(1)
    score = W_HEIGHT * heights.sum(1) + W_LINES * lines + W_HOLES * holes + W_BUMPS * bumps
    return score


def placements(locked: np.ndarray, array: np.ndarray, top: int, well: bool = False
               ) -> list[tuple[float, np.ndarray, int]]:
    """(score, array, left) of every rotation and column the piece could be instant-dropped
    into from above the stack, best first. With ``well`` the last column is kept free for an
    I piece (placements that put a cell there without clearing lines score lower), as players
    who aim for four-row clears do."""
    rows, cols = locked.shape
    filled = locked > 0
    surface = np.where(filled.any(0), filled.argmax(0), rows)  # first filled row per column
    moves, boards, seen, a = [], [], [], array
    for _ in range(4):
        if not any(np.array_equal(a, s) for s in seen):
            seen.append(a)
            h, w = a.shape
            bottom = h - 1 - (a[::-1] > 0).argmax(0)  # lowest cell of each of the piece's columns
            for left in range(cols - w + 1):
                r = int((surface[left:left + w] - 1 - bottom).min())
                if r < top:
                    continue  # the stack is higher than the piece: out of reach
                moves.append((a, left))
                boards.append(draw(locked, a, r, left))
        a = rotated(a)
    if not moves:
        return []
    boards = np.stack(boards)
    score = _scores(boards)
    if well:
        in_last = np.array([left + a.shape[1] == cols for a, left in moves])
        lines = (boards > 0).all(2).sum(1)
        score = score - 3.0 * (in_last & (lines == 0)) + 1.5 * np.maximum(lines - 1, 0)
    order = np.argsort(-score, kind="stable")
    return [(float(score[i]), *moves[i]) for i in order]


class HumanPlayer:
    """Plays like a person (module docstring). ``rng`` drives every choice."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self._plan = None  # (target array, target left, rotations left to try)
        self._piece_id = None
        self.new_game()

    def new_game(self) -> None:
        r = self.rng
        self.blunder = float(r.uniform(0.0, 0.45) * r.random())  # chance of a random placement
        self.timer = float(r.uniform(0.28, 0.4))  # chance that the timer drops before a move
        self.instant = float(r.uniform(0.8, 0.98))  # at the target: instant drop, else fall
        self.slip = 0.12  # a move in the wrong direction, or a needless rotation
        self.idle = 0.3  # with no piece falling: a key press that changes nothing
        self.well = bool(r.random() < 0.5)  # keeps the last column free for four-row clears

    def _new_plan(self, engine: InteractiveEngine) -> None:
        p = engine.piece
        options = placements(engine.locked, p.array, p.top, self.well)
        if not options:
            self._plan = None
            return
        if self.rng.random() < self.blunder:
            _, array, left = options[int(self.rng.integers(len(options)))]
        else:
            _, array, left = options[0]
        self._plan = [array, left, 4]

    def __call__(self, engine: InteractiveEngine) -> int:
        r, p = self.rng, engine.piece
        if p is None:
            self._piece_id = None
            if r.random() < self.idle:
                return int(r.choice([LEFT, RIGHT, ROTATE, INSTANT], p=[0.35, 0.45, 0.1, 0.1]))
            return DROP
        if self._piece_id != engine.spawns:
            self._piece_id = engine.spawns
            self._new_plan(engine)
        if r.random() < self.timer or self._plan is None:
            return DROP
        array, left, tries = self._plan
        if r.random() < self.slip:
            return int(r.choice([LEFT, RIGHT, ROTATE], p=[0.45, 0.45, 0.1]))
        if tries and not np.array_equal(p.array, array):
            self._plan[2] -= 1
            return ROTATE
        if p.left != left:
            return RIGHT if left > p.left else LEFT
        return INSTANT if r.random() < self.instant else DROP


class RandomPlayer:
    """Uniformly random events, with a drop at least every third event."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self._since_drop = rng, 0

    def new_game(self) -> None:
        self._since_drop = 0

    def __call__(self, engine: InteractiveEngine) -> int:
        e = DROP if self._since_drop >= 2 else int(self.rng.integers(5))
        self._since_drop = 0 if e == DROP else self._since_drop + 1
        return e


PLAYERS = {"human": HumanPlayer, "random": RandomPlayer}


def make_player(name: str, rng: np.random.Generator):
    if name not in PLAYERS:
        raise ConfigError(f"unknown player {name!r}; valid: {', '.join(PLAYERS)}")
    return PLAYERS[name](rng)


def play_game(player, rng: np.random.Generator, max_events: int = 20_000,
              engine: Optional[InteractiveEngine] = None, stats: Optional[dict] = None):
    """One game from the empty board until game over (or ``max_events``): boards (T + 1, 22, 10)
    int8 and the T events between them. ``stats``, if given, gathers "games" (finished),
    "events", "spawns" and "clears" (a Counter of rows cleared at once) over the calls it is
    passed to."""
    engine = engine or InteractiveEngine(rng=rng)
    player.new_game()
    boards, events, cleared = [engine.board()], [], []
    while not engine.over and len(events) < max_events:
        e = player(engine)
        boards.append(engine.step(e))
        events.append(e)
        cleared.append(engine.cleared)
    if stats is not None:
        stats["games"] = stats.get("games", 0) + int(engine.over)
        stats["spawns"] = stats.get("spawns", 0) + engine.spawns
        stats["events"] = stats.get("events", 0) + len(events)
        stats.setdefault("clears", Counter()).update(c for c in cleared if c)
    return np.stack(boards), np.array(events, dtype=np.int8)
