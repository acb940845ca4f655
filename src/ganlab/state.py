"""What a run is at a moment, and what a checkpoint holds of it.

:class:`Progress` is the loop's own bookkeeping (iteration, training time, the loss history, the
evaluations, the best value so far). :func:`capture` turns a whole game into a checkpoint: the
networks and optimizers, every random state exact resume needs (torch, numpy and python's
global generators; the training noise; the batch sampler; the grid's noise), the tricks' states
keyed by name, and the progress. :func:`restore` puts one back. A checkpoint holds tensors,
numbers, strings, lists and dicts only (``torch.load(weights_only=True)``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from . import checkpoint as ckpt
from .config import to_plain
from .errors import CheckpointError


class History(dict):
    """Per-iteration series (``d_loss``, ``g_loss``, penalties), each a list of floats."""

    def __repr__(self):
        parts = [f"{k}: {len(v)} values, last {v[-1]:.4g}" for k, v in self.items() if v]
        return f"History({'; '.join(parts)})"


@dataclass
class Progress:
    iteration: int = 0
    train_seconds: float = 0.0  # training wall time of the finished ``play`` calls
    history: History = field(default_factory=lambda: History(d_loss=[], g_loss=[]))
    eval_history: list = field(default_factory=list)
    best_value: Optional[float] = None


def capture(game, train_seconds: float) -> dict:
    """The checkpoint of ``game`` (rank-local random states; see ``rng_ranks``)."""
    p, players = game.progress, game.players
    return {
        "format": ckpt.FORMAT,
        "config": to_plain(game.config) if game.config is not None else None,
        "iteration": p.iteration,
        # what one example is, so a run rebuilds its networks without its data (a Tetris
        # emulator's board size, for one)
        "example_shape": list(game.data.example_shape),
        "train_seconds": train_seconds,
        "G": players.G.state_dict(), "D": players.D.state_dict(),
        "opt_g": players.opt_g.state_dict(), "opt_d": players.opt_d.state_dict(),
        "rng": {**ckpt.capture_rng(), **game.inputs.state_dict()},
        "fixed_noise": game.sampler.grid_noise.cpu(),
        # sampling filters keep no state: a filter added to a restored run (add_filter) leaves
        # the checkpoint loadable by the run's own config
        "hooks": {t.key: t.state_dict() for t in game.tricks.training},
        "best_value": p.best_value,
        "eval_history": p.eval_history,
        "history": {k: torch.tensor(v, dtype=torch.float64) for k, v in p.history.items()},
    }


def _restore_tricks(tricks, saved, source: str) -> None:
    """Tricks' states: keyed by name, or (checkpoints before the keys) a list in config order."""
    training = tricks.training
    if isinstance(saved, (list, tuple)):
        if len(saved) == len(tricks):  # written when sampling filters were saved too
            training = list(tricks)
        if len(saved) != len(training):
            raise CheckpointError(f"{source}: was written with {len(saved)} regularizers/tricks, "
                                  f"this game trains with {len(training)}")
        pairs = zip(training, saved)
    else:
        have = {t.key for t in training}
        if set(saved) != have:
            missing, extra = sorted(have - set(saved)), sorted(set(saved) - have)
            raise CheckpointError(
                f"{source}: its tricks do not match this game's"
                + (f"; it lacks {', '.join(missing)}" if missing else "")
                + (f"; it has {', '.join(extra)}, which this game does not train with"
                   if extra else ""))
        pairs = ((t, saved[t.key]) for t in training)
    for trick, state in pairs:
        trick.load_state_dict(state)


def restore(game, state: dict, source: str = "checkpoint") -> None:
    # tricks first: a schedule that swapped D must rebuild it before D's weights load
    _restore_tricks(game.tricks, state.get("hooks", []), source)
    saved = state.get("example_shape")
    if saved is not None and tuple(saved) != game.data.example_shape:
        raise CheckpointError(f"{source}: was trained on examples of shape {tuple(saved)}, but "
                              f"this game's data has {game.data.example_shape}")
    players = game.players
    try:
        players.G.load_state_dict(state["G"])
        players.D.load_state_dict(state["D"])
        players.opt_g.load_state_dict(state["opt_g"])
        players.opt_d.load_state_dict(state["opt_d"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{source}: does not fit these models/optimizers: {str(exc).splitlines()[0]}"
        ) from None
    p = game.progress
    p.iteration = int(state["iteration"])
    p.train_seconds = float(state.get("train_seconds", 0.0))
    rng = state["rng"]
    if game.world > 1:
        ranks = state.get("rng_ranks")
        if not ranks or len(ranks) != game.world:
            raise CheckpointError(f"{source}: was written by {len(ranks) if ranks else 1} "
                                  f"process(es); resume it with the same number (now "
                                  f"{game.world})")
        rng = ranks[game.rank]
    ckpt.restore_rng(rng)
    game.inputs.load_state_dict(state["rng"])
    game.sampler.grid_noise = state["fixed_noise"].to(game.device)
    p.best_value = state.get("best_value")
    p.eval_history = list(state.get("eval_history", []))
    p.history = History({k: v.tolist() for k, v in state["history"].items()})
