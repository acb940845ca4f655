"""Alarms: the known signs of a failing GAN, checked at every evaluation of a training run.

Each sign has a threshold in ``train.alarms`` (``null`` turns it off) and must show at
``patience`` evaluations in a row:

- ``modes_drop``: modes captured (mixtures, Stacked MNIST) fell that many below the run's best;
- ``class_kl``: the class histogram of the samples (MNIST) is that far from uniform (KL);
- ``piece_tv``: the Tetris emulator's piece distribution is that far from uniform (TV);
- ``d_accuracy``: D tells its last real and fake batches apart that well (D wins);
- ``d_loss``: D's adversarial loss on its last batches is below it (D wins; losses bounded
  below by 0 only);
- ``g_grad``: the norm of G's last gradient fell below this share of the largest one seen at an
  evaluation of this run (G's gradients vanish);
- ``diversity``: the mean pairwise distance of a batch of samples is below this share of the
  data's (the samples collapse to near-duplicates).

An alarm is printed, logged as a ``metrics.jsonl`` row of kind ``alarm``, written to
TensorBoard as text, and shown in the run's report; ``train.stop_on_alarm`` ends the run at
the first one (the last checkpoint is written as at any end, and ``best.pt`` keeps the best).
"""
from __future__ import annotations

import sys
from typing import Optional

import torch

from .config import AlarmConfig
from .trainer import Callback

BOUNDED_LOSSES = ("minimax", "nonsaturating", "nonsaturating-half", "lsgan", "hinge")


def pairwise_distance(x: torch.Tensor) -> float:
    """Mean L2 distance between different rows of ``x`` (flattened)."""
    f = x.detach().float().flatten(1)
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / (n * (n - 1))) if n > 1 else 0.0


class Alarms(Callback):
    """At every ``every`` iterations (after the evaluation of that iteration), check the signs
    of ``cfg``; ``stop``: end the run at the first alarm."""

    def __init__(self, cfg: AlarmConfig, every: int, stop: bool = False, log=None,
                 sample_size: int = 256):
        self.cfg, self.every, self.stop = cfg, every, stop
        self.log = log or (lambda msg: print(f"ganlab: {msg}", file=sys.stderr, flush=True))
        self.sample_size = sample_size
        self.streak: dict = {}
        self.best_modes: Optional[int] = None
        self.max_g_grad = 0.0
        self.fired: list[dict] = []
        self._stop_now = False

    def on_start(self, trainer, num_iter):
        modes = [e.get("modes_captured", e.get("stacked_modes"))
                 for e in trainer.game.progress.eval_history]
        modes = [m for m in modes if m is not None]
        if modes:  # a resumed run: the best so far is in its evaluations
            self.best_modes = max(modes)

    def should_stop(self, trainer) -> bool:
        return self.stop and self._stop_now

    def on_iteration(self, trainer):
        if not self.every or trainer.iteration % self.every or not trainer.game.is_main:
            return
        game = trainer.game
        signs = self.signs(game)
        for name, (value, threshold, message) in signs.items():
            self.streak[name] = self.streak.get(name, 0) + 1
            if self.streak[name] == self.cfg.patience:
                self.raise_alarm(game, name, value, threshold, message)
        for name in list(self.streak):
            if name not in signs:
                self.streak[name] = 0

    def raise_alarm(self, game, name: str, value: float, threshold: float, message: str):
        it = game.iteration
        self.log(f"alarm at iteration {it}: {message}")
        row = {"alarm": name, "value": value, "threshold": threshold, "message": message}
        self.fired.append({"iteration": it, **row})
        game.tracker.event(it, "alarm", row)
        game.tracker.text(f"alarms/{name}", f"iteration {it}: {message}", it)
        self._stop_now = True

    # --- the signs ----------------------------------------------------------------------------
    def signs(self, game) -> dict:
        """{name: (value, threshold, message)} of the signs showing now."""
        cfg, out = self.cfg, {}
        last = game.progress.eval_history[-1] if game.progress.eval_history else {}
        if last.get("iteration") != game.iteration:
            last = {}
        modes = last.get("modes_captured", last.get("stacked_modes"))
        if modes is not None and cfg.modes_drop is not None:
            self.best_modes = modes if self.best_modes is None else max(self.best_modes, modes)
            if self.best_modes - modes >= cfg.modes_drop:
                out["modes_drop"] = (modes, self.best_modes - cfg.modes_drop,
                                     f"modes captured dropped to {modes} from {self.best_modes}")
        kl = last.get("class_kl")
        if kl is not None and cfg.class_kl is not None and kl > cfg.class_kl:
            out["class_kl"] = (kl, cfg.class_kl, f"class-histogram KL {kl:.3f} is above "
                                                 f"{cfg.class_kl} (some digits are missing)")
        tv = last.get("test/piece_tv", last.get("train/piece_tv", last.get("piece_tv")))
        if tv is not None and cfg.piece_tv is not None and tv > cfg.piece_tv:
            out["piece_tv"] = (tv, cfg.piece_tv, f"piece TV {tv:.3f} is above {cfg.piece_tv} "
                                                 "(the emulator favours some pieces)")
        out.update(self._d_signs(game))
        g = self._g_grad(game)
        if g is not None and cfg.g_grad is not None:
            self.max_g_grad = max(self.max_g_grad, g)
            share = g / self.max_g_grad if self.max_g_grad > 0 else 0.0
            if share < cfg.g_grad:
                out["g_grad"] = (share, cfg.g_grad,
                                 f"G's gradient norm {g:.2e} is {share:.1e} of its largest "
                                 f"({self.max_g_grad:.2e}), below {cfg.g_grad:g} (G's "
                                 "gradients vanish)")
        if cfg.diversity is not None and game.conditioning.kind != "paired":
            ratio = self._diversity(game)
            if ratio is not None and ratio < cfg.diversity:
                out["diversity"] = (ratio, cfg.diversity,
                                    f"samples are {ratio:.3f} as far apart as the data's "
                                    f"examples, below {cfg.diversity} (they collapse to "
                                    "near-duplicates)")
        return out

    def _d_signs(self, game) -> dict:
        scores = game.step.last_scores
        if not scores:
            return {}
        cfg, out = self.cfg, {}
        real, fake = scores["real"].float(), scores["fake"].float()
        acc = float(torch.cat([real > 0, fake < 0]).float().mean())
        if cfg.d_accuracy is not None and acc >= cfg.d_accuracy:
            out["d_accuracy"] = (acc, cfg.d_accuracy, f"D's accuracy on its last batches is "
                                                      f"{acc:.3f} (D wins)")
        if cfg.d_loss is not None and game.config.loss.name in BOUNDED_LOSSES:
            loss = float(game.loss.discriminator(real, fake))
            if loss < cfg.d_loss:
                out["d_loss"] = (loss, cfg.d_loss, f"D's loss on its last batches is "
                                                   f"{loss:.2e}, below {cfg.d_loss:g} (D wins)")
        return out

    @staticmethod
    def _g_grad(game) -> Optional[float]:
        grads = [p.grad for p in game.G.parameters() if p.grad is not None]
        if not grads:
            return None
        return float(torch.stack([g.float().norm() for g in grads]).norm())

    def _diversity(self, game) -> Optional[float]:
        n = min(self.sample_size, len(game.data))
        if n < 2:
            return None
        real = game.inputs.examples[torch.randperm(len(game.data),
                                                   generator=torch.Generator().manual_seed(0))[:n]
                                    .to(game.device)]
        fake = game.sample(n)
        base = pairwise_distance(real)
        return pairwise_distance(fake) / base if base > 0 else None
