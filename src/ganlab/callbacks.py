"""The periodic work of a training run, each a :class:`~ganlab.trainer.Callback`.

In the order the game hangs them on the loop:

- :class:`TimeBudget`: stop at ``train.max_seconds`` of training (checked every ``log_every``
  iterations; resumed runs count the time already spent; under torchrun rank 0 decides);
- :class:`LogLosses`: every ``log_every`` iterations (and at the end of ``play``), fetch the
  pending losses and log their interval means; a progress bar in a terminal;
- :class:`WriteSamples`: every ``sample_every`` iterations and at the end, a picture of the
  fixed grid's samples (the task draws it) to ``samples/`` and TensorBoard;
- :class:`SaveCheckpoints`: every ``checkpoint_every`` iterations and at the end, an atomic
  ``checkpoints/latest.pt``;
- :class:`WriteHistograms`: every ``histogram_every`` iterations, weights, gradients and D's
  scores as TensorBoard histograms, zero-gradient counts as scalars;
- :class:`Evaluate`: every ``eval_every`` iterations, the task's metrics, logged as ``eval``
  rows; with ``best_metric``, ``checkpoints/best.pt`` keeps the best model so far;
- :class:`LossPlot`: ``loss.png`` at the end.
"""
from __future__ import annotations

import sys
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
    def __init__(self, every: int, progress: Optional[bool]):
        self.every, self.progress = every, progress
        self.bar = None

    def on_start(self, trainer, num_iter):
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        self.start = trainer.iteration
        if show and num_iter >= 1:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=num_iter, desc="training", unit="it", dynamic_ncols=True)

    def on_iteration(self, trainer):
        if _every(trainer, self.every) or trainer.iteration == trainer.end:
            trainer.flush()
            if self.bar is not None:
                h = trainer.game.history
                self.bar.update(trainer.iteration - self.start - self.bar.n)
                self.bar.set_postfix(d=f"{h['d_loss'][-1]:.3f}", g=f"{h['g_loss'][-1]:.3f}")

    def on_close(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class WriteSamples(Callback):
    """Rank 0 only, with a run directory."""

    def __init__(self, every: int):
        self.every = every

    def on_iteration(self, trainer):
        if _every(trainer, self.every):
            self.write(trainer.game)

    def on_end(self, trainer):
        if trainer.iteration % self.every:
            self.write(trainer.game)

    @staticmethod
    def write(game) -> Path:
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


class SaveCheckpoints(Callback):
    """Every rank takes part (rank 0 writes), with a run directory."""

    def __init__(self, every: int):
        self.every = every

    def on_iteration(self, trainer):
        if _every(trainer, self.every):
            trainer.flush()
            trainer.game.save_checkpoint()

    def on_end(self, trainer):
        if trainer.iteration % self.every:
            trainer.game.save_checkpoint()


class WriteHistograms(Callback):
    """Rank 0 only, with a run directory."""

    def __init__(self, every: int):
        self.every = every

    def on_iteration(self, trainer):
        if _every(trainer, self.every):
            self.write(trainer.game)

    @staticmethod
    def zero_grad_counts(game) -> dict:
        """Parameter elements whose last gradient is exactly zero, per network (dead units)."""
        out = {}
        for name, model in (("G", game.G), ("D", game.D)):
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            out[f"zero_grads_{name}"] = int(sum((g == 0).sum().item() for g in grads))
        return out

    @torch.no_grad()
    def write(self, game) -> None:
        tb, it = game.tracker.tb, game.iteration
        for name, model in (("G", game.G), ("D", game.D)):
            for pname, p in model.named_parameters():
                tb.add_histogram(f"weights/{name}/{pname}", p.detach().float().cpu(), it)
                if p.grad is not None:
                    tb.add_histogram(f"grads/{name}/{pname}", p.grad.float().cpu(), it)
        for kind, scores in game.step.last_scores.items():
            tb.add_histogram(f"scores/{kind}", scores.float().cpu(), it)
        game.tracker.log(it, self.zero_grad_counts(game), kind="grads")


class Evaluate(Callback):
    """Every rank flushes (a collective under torchrun); rank 0 evaluates."""

    def __init__(self, every: int, best_metric: Optional[str], best_mode: str):
        self.every, self.best_metric, self.best_mode = every, best_metric, best_mode

    def on_iteration(self, trainer):
        if _every(trainer, self.every):
            trainer.flush()
            if trainer.game.is_main:
                self.evaluate(trainer.game)

    def evaluate(self, game) -> dict:
        metrics = game.data.task.evaluate(game)
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
