"""The periodic work of a training run, each a :class:`~ganlab.trainer.Callback`.

In the order the game hangs them on the loop:

- :class:`TimeBudget`: stop at ``train.max_seconds`` of training (checked every ``log_every``
  iterations; resumed runs count the time already spent; under torchrun rank 0 decides);
- :class:`LogLosses`: every ``log_every`` iterations (and at the end of ``play``), fetch the
  pending losses and log their interval means; a progress bar in a terminal;
- :class:`WriteSamples`: every ``sample_every`` iterations and at the end, a picture of the
  fixed grid's samples (the task draws it) to ``samples/`` and TensorBoard;
- :class:`Evaluate`: every ``eval_every`` iterations, the task's metrics, logged as ``eval``
  rows; with ``best_metric``, ``checkpoints/best.pt`` keeps the best model so far;
- :class:`SaveCheckpoints`: every ``checkpoint_every`` iterations and at the end, an atomic
  ``checkpoints/latest.pt`` (after the evaluation of the same iteration, which it holds);
- :class:`WriteHistograms`: every ``histogram_every`` iterations, weights, gradients and D's
  scores as TensorBoard histograms, zero-gradient counts as scalars;
- :class:`LossPlot`: ``loss.png`` at the end.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import torch

from . import checkpoint as ckpt
from .errors import ConfigError
from .trainer import Callback, Trainer
from .viz import save_loss_plot


def _every(trainer: Trainer, n: int) -> bool:
    return bool(n) and trainer.iteration % n == 0


class TimeBudget(Callback):
    def __init__(self, max_seconds: Optional[float], every: int):
        self.max_seconds, self.every = max_seconds, every

    def should_stop(self, trainer):
        if self.max_seconds is None or trainer.iteration % self.every:
            return False
        flag = torch.tensor(float(trainer.elapsed() >= self.max_seconds))
        game = trainer.game
        if game.world > 1:  # their clocks differ, and a rank that stopped alone would hang
            import torch.distributed as tdist
            flag = flag.to(game.device)
            tdist.broadcast(flag, 0)
        return bool(flag.item())


class LogLosses(Callback):
    """Fetch and log the losses every ``every`` iterations, and show progress: in a terminal a
    bar that moves every iteration; elsewhere (CI logs, ``nohup``, notebooks' captured output)
    a line every 5% with the speed and the time left. ``progress``: True or False forces the
    bar on or all progress off; None decides by the terminal."""

    def __init__(self, every: int, progress: Optional[bool], stream=None):
        self.every, self.progress = every, progress
        self.stream = stream
        self.bar = None
        self.lines = False

    def on_start(self, trainer, num_iter):
        stream = self.stream or sys.stderr
        tty = stream.isatty()
        self.start, self.total, self.t0 = trainer.iteration, num_iter, time.perf_counter()
        self.lines = self.progress is None and not tty and num_iter >= 1
        self.next_line = 1
        if (self.progress or (self.progress is None and tty)) and num_iter >= 1:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=num_iter, desc="training", unit="it", dynamic_ncols=True,
                            file=stream)

    def on_iteration(self, trainer):
        if _every(trainer, self.every) or trainer.iteration == trainer.end:
            trainer.flush()
            if self.bar is not None:
                h = trainer.game.history
                self.bar.set_postfix(d=f"{h['d_loss'][-1]:.3f}" if h.get("d_loss") else "-",
                                     g=f"{h['g_loss'][-1]:.3f}" if h.get("g_loss") else "-",
                                     refresh=False)
        if self.bar is not None:
            self.bar.update(trainer.iteration - self.start - self.bar.n)
        elif self.lines:
            done = trainer.iteration - self.start
            if done >= self.next_line * self.total / 20 or done == self.total:
                self.next_line = int(20 * done / self.total) + 1
                self._line(trainer, done)

    def _line(self, trainer, done: int) -> None:
        secs = time.perf_counter() - self.t0
        rate = done / secs if secs > 0 else float("inf")
        left = (self.total - done) / rate if rate > 0 else 0.0
        h = trainer.game.history
        losses = (f"; d_loss {h['d_loss'][-1]:.3f}, g_loss {h['g_loss'][-1]:.3f}"
                  if h.get("d_loss") and h.get("g_loss") else "")
        print(f"iteration {trainer.iteration} ({100 * done / self.total:.0f}% of this run's "
              f"{self.total}): {rate:.1f} it/s, {_duration(left)} left{losses}",
              file=self.stream or sys.stderr, flush=True)

    def on_close(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _duration(secs: float) -> str:
    secs = int(round(secs))
    if secs < 60:
        return f"{secs} s"
    if secs < 3600:
        return f"{secs // 60} min {secs % 60:02d} s"
    return f"{secs // 3600} h {secs % 3600 // 60:02d} min"


class Periodic(Callback):
    """Work done every ``every`` iterations (and, with ``at_end``, once more at the end of
    ``play`` unless it was just done); ``flush`` fetches the pending losses first."""

    at_end = False
    flush = False

    def __init__(self, every: int):
        self.every = every

    def on_iteration(self, trainer):
        if _every(trainer, self.every):
            if self.flush:
                trainer.flush()
            self.run(trainer.game)

    def on_end(self, trainer):
        if self.at_end and trainer.iteration % self.every:
            self.run(trainer.game)

    def run(self, game) -> None:
        raise NotImplementedError


class WriteSamples(Periodic):
    """Rank 0 only, with a run directory."""

    at_end = True

    def run(self, game) -> Path:
        s = game.sampler
        x = game.sample(noise=s.grid_noise, labels=s.grid_cond)
        path = game.run_dir / "samples" / f"iter_{game.iteration:07d}.png"
        truth = game.inputs.examples[:len(x)] if game.conditioning.kind == "paired" else None
        picture = game.data.task.draw(x, path, conditions=s.grid_cond, truth=truth,
                                      classes=game.conditioning.num_classes,
                                      title=f"iteration {game.iteration}")
        if picture is not None:
            game.tracker.image("samples", torch.from_numpy(picture).permute(2, 0, 1),
                               game.iteration)
        return path


class SaveCheckpoints(Periodic):
    """Every rank takes part (rank 0 writes), with a run directory."""

    at_end = True
    flush = True

    def run(self, game) -> None:
        game.save_checkpoint()


class WriteHistograms(Periodic):
    """Rank 0 only, with a run directory."""

    @staticmethod
    def zero_grad_counts(game) -> dict:
        """Parameter elements whose last gradient is exactly zero, per network (dead units)."""
        out = {}
        for name, model in (("G", game.G), ("D", game.D)):
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            out[f"zero_grads_{name}"] = int(sum((g == 0).sum().item() for g in grads))
        return out

    @torch.no_grad()
    def run(self, game) -> None:
        tb, it = game.tracker.tb, game.iteration
        for name, model in (("G", game.G), ("D", game.D)):
            for pname, p in model.named_parameters():
                tb.add_histogram(f"weights/{name}/{pname}", p.detach().float().cpu(), it)
                if p.grad is not None:
                    tb.add_histogram(f"grads/{name}/{pname}", p.grad.float().cpu(), it)
        for kind, scores in game.step.last_scores.items():
            tb.add_histogram(f"scores/{kind}", scores.float().cpu(), it)
        game.tracker.log(it, self.zero_grad_counts(game), kind="grads")


class Evaluate(Periodic):
    """Every rank flushes (a collective under torchrun); rank 0 evaluates."""

    flush = True

    def __init__(self, every: int, best_metric: Optional[str], best_mode: str,
                 samples: Optional[int] = None):
        super().__init__(every)
        self.best_metric, self.best_mode, self.samples = best_metric, best_mode, samples

    def run(self, game) -> None:
        if game.is_main:
            self.evaluate(game)

    def evaluate(self, game) -> dict:
        metrics = game.data.task.evaluate(game, self.samples)
        if not metrics:
            return {}
        p = game.progress
        p.eval_history.append({"iteration": p.iteration, **metrics})
        game.tracker.log(p.iteration, metrics, kind="eval")
        if self.best_metric:
            if self.best_metric not in metrics:
                raise ConfigError(f"train.best_metric: {self.best_metric!r} is not a metric of "
                                  f"this dataset; valid: {', '.join(sorted(metrics))}")
            value = metrics[self.best_metric]
            better = value is not None and (p.best_value is None or (
                value > p.best_value if self.best_mode == "max" else value < p.best_value))
            if better:
                p.best_value = value
                if game.run_dir:
                    ckpt.atomic_save(game.state_dict(), game.run_dir / "checkpoints" / "best.pt")
        return metrics


class LossPlot(Callback):
    """Rank 0 only, with a run directory: ``loss.png`` and a flush of TensorBoard."""

    def on_end(self, trainer):
        game = trainer.game
        save_loss_plot(game.history, game.run_dir / "loss.png")
        game.tracker.flush()
