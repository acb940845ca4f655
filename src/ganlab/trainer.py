"""The training loop: iterations of the step, with the periodic work hung off it as callbacks.

Each iteration the loop asks every callback whether to stop (a time budget), sets the players'
learning rates, runs one :class:`~ganlab.step.GanStep` and keeps its device scalars pending,
then calls every callback's ``on_iteration`` in order (:mod:`ganlab.callbacks`: loss logging,
samples, checkpoints, histograms, evaluation). Pending scalars are fetched in one transfer by
:meth:`Trainer.flush`, which callbacks call at their log points: it checks them for NaN and
infinity, extends the loss history and logs interval means.
"""
from __future__ import annotations

import math
import time
from typing import Optional

import torch

from .distributed import average as dist_average
from .errors import NonFiniteLossError


class Callback:
    """Periodic work. Every method is optional."""

    def on_start(self, trainer: "Trainer", num_iter: int) -> None:
        pass

    def should_stop(self, trainer: "Trainer") -> bool:
        """Checked before every iteration."""
        return False

    def on_iteration(self, trainer: "Trainer") -> None:
        """After every iteration (``trainer.iteration`` is the number just finished)."""

    def on_close(self, trainer: "Trainer") -> None:
        """When ``play`` returns or fails (release what ``on_start`` took)."""

    def on_end(self, trainer: "Trainer") -> None:
        """After the loop has finished normally."""


class Trainer:
    """Runs ``game.step`` for a number of iterations with ``callbacks``."""

    def __init__(self, game, callbacks: list[Callback]):
        self.game, self.callbacks = game, list(callbacks)
        self.pending: list[dict] = []
        self.end = 0  # the iteration the current ``play`` stops at
        self._started: Optional[float] = None

    @property
    def iteration(self) -> int:
        return self.game.progress.iteration

    def elapsed(self) -> float:
        """Training wall time so far, the current ``play`` included."""
        started = self._started
        return self.game.progress.train_seconds + (
            time.perf_counter() - started if started else 0.0)

    def play(self, num_iter: int) -> None:
        """Train for ``num_iter`` more iterations, unless a callback stops the loop earlier."""
        game, progress = self.game, self.game.progress
        self.end = progress.iteration + int(num_iter)
        for cb in self.callbacks:
            cb.on_start(self, int(num_iter))
        t0 = self._started = time.perf_counter()
        try:
            while progress.iteration < self.end:
                if any(cb.should_stop(self) for cb in self.callbacks):
                    break
                game.players.set_learning_rates(progress.iteration)
                self.pending.append(game.step(progress.iteration))
                progress.iteration += 1
                for cb in self.callbacks:
                    cb.on_iteration(self)
            self.flush()
        finally:
            progress.train_seconds += time.perf_counter() - t0
            self._started = None
            for cb in self.callbacks:
                cb.on_close(self)
        for cb in self.callbacks:
            cb.on_end(self)

    def flush(self) -> None:
        """Fetch pending device scalars in one transfer, check them, extend the history, log
        interval means. A series (e.g. a lazy penalty) may be absent from some iterations.
        Under torchrun a collective: every rank flushes at the same points."""
        if not self.pending:
            return
        game = self.game
        first = self.iteration - len(self.pending) + 1
        entries = [(first + i, k, v) for i, row in enumerate(self.pending) for k, v in row.items()]
        self.pending.clear()
        stacked = torch.stack([v.float() for _, _, v in entries])
        if game.world > 1:  # log the mean over ranks (every rank pends the same series)
            stacked = dist_average(stacked, game.world)
        values = stacked.cpu().tolist()
        for (it, key, _), value in zip(entries, values):
            if not math.isfinite(value):
                last = (f"; the last good checkpoint is {game.last_checkpoint}"
                        if game.last_checkpoint else "; no checkpoint was written yet")
                raise NonFiniteLossError(f"iteration {it}: {key} is {value}; training stopped{last}")
        series: dict[str, list] = {}
        for (_, key, _), value in zip(entries, values):
            series.setdefault(key, []).append(value)
        for key, col in series.items():
            game.progress.history.setdefault(key, []).extend(col)
        means = {key: sum(col) / len(col) for key, col in series.items()}
        means["seconds"] = self.elapsed()
        game.tracker.log(self.iteration, means)
