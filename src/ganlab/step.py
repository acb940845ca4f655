"""The GAN training step: a D phase and a G phase.

The contract (what one iteration does):

0. Every :class:`~ganlab.hooks.IterationHook` runs ``before_iteration``; a player any of them
   says not to train (``trains``) is skipped this iteration (freeze schedules).
1. **D phase**, ``n_critic`` times. A real batch with its conditions and a noise batch are
   drawn; fakes are generated without building G's graph (so they are detached), under
   conditions from :mod:`ganlab.conditioning` (uniform labels; a paired game's own conditions).
   Only D's parameters require gradients. Fake transforms may swap fakes (the replay buffer);
   D scores both batches through the input transforms (instance noise, packing); target
   transforms may replace the loss's 1/0 targets. D minimises ``loss.discriminator`` plus every
   penalty's ``d_penalty``.
2. **G phase**, once. Fresh noise (and, in a paired game, a real batch whose truth the penalties
   see); only G's parameters require gradients. G minimises ``adversarial_weight *
   loss.generator`` plus every ``g_penalty``. With ``reuse_fakes`` the last critic step
   generates its fakes with G's graph kept (D still sees them detached) and the G phase scores
   those same fakes, conditions and real batch under the updated D instead of generating anew:
   one G forward less per iteration, as in PyTorch's DCGAN example.
3. In each phase, after ``backward``: under torchrun the gradients are averaged over the ranks;
   each :class:`~ganlab.hooks.StepCallback` runs ``before_update`` (closed-form gradient
   edits), the optimizer steps, then ``after_update`` (weight clipping, averages, EMA).

What it returns, as device scalars (no host sync per step): ``d_loss`` and ``g_loss``, the
whole objective each player minimised (adversarial loss plus every penalty), and each penalty
alone as ``d_NAME`` / ``g_NAME``; with ``n_critic > 1`` every D value is the mean over the
critic steps of the iteration.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .distributed import average_gradients
from .hooks import (FakeTransform, InputTransform, IterationHook, Penalty, StepBatch,
                    StepCallback, TargetTransform, Tricks)
from .inputs import TrainingInputs
from .losses import LossPair
from .players import Players


class GanStep:
    """One training iteration of ``players`` on ``inputs`` under ``loss`` and ``tricks``."""

    def __init__(self, players: Players, inputs: TrainingInputs, loss: LossPair, tricks: Tricks,
                 n_critic: int = 1, keep_scores: bool = False, reuse_fakes: bool = False):
        self.players, self.inputs, self.loss, self.tricks = players, inputs, loss, tricks
        self.n_critic, self.keep_scores, self.reuse_fakes = n_critic, keep_scores, reuse_fakes
        self.last_scores: dict = {}  # D's last real/fake scores (for histograms)

    # --- the networks' calls -------------------------------------------------------------------
    def generate(self, z: Tensor, cond: Optional[Tensor] = None) -> Tensor:
        return self.inputs.conditioning.call(self.players.G_fwd, z, cond)

    def critic(self, x: Tensor, cond: Optional[Tensor] = None, phase: str = "fake"):
        """D's ``(scores, aux)`` on ``x`` after the input transforms; ``aux`` is an auxiliary
        head's output (ACGAN's class logits), else None."""
        for t in self.tricks[InputTransform]:
            x = t.d_input(x, phase)
        out = self.inputs.conditioning.call(self.players.D_fwd, x, cond)
        return out if isinstance(out, tuple) else (out, None)

    def _scores_fn(self, cond, phase):
        return lambda x: self.critic(x, cond, phase)[0]

    # --- the phases ----------------------------------------------------------------------------
    def __call__(self, iteration: int) -> dict:
        for t in self.tricks[IterationHook]:
            t.before_iteration()
        train_d = all(t.trains("d") for t in self.tricks[IterationHook])
        train_g = all(t.trains("g") for t in self.tricks[IterationHook])
        self.players.G.train()
        self.players.D.train()
        out, kept = {}, None
        if train_d:
            self.players.train_only("d")
            keep = self.reuse_fakes and train_g
            steps = [self.d_phase(iteration, keep and k == self.n_critic - 1)
                     for k in range(self.n_critic)]
            kept = steps[-1].pop("_kept", None)
            out.update(steps[0] if len(steps) == 1 else _mean_rows(steps))
        if train_g:
            self.players.train_only("g")
            out.update(self.g_phase(iteration, kept))
        self.players.train_only(None)
        return out

    def d_phase(self, iteration: int, keep: bool = False) -> dict:
        """One critic step; ``keep``: generate with G's graph and return it as ``_kept``."""
        inputs = self.inputs
        real, real_c, rows = inputs.real_rows()
        fake_c = inputs.fake_conditions(real.shape[0], real_c)
        kept = None
        if keep:  # G's graph is built now and used by the G phase; D sees the fakes detached
            self.players.train_only(None)
            kept = (self.generate(inputs.noise(real.shape[0]), fake_c), fake_c, real, rows)
            self.players.train_only("d")
            fake = kept[0].detach()
        else:
            with torch.no_grad():
                fake = self.generate(inputs.noise(real.shape[0]), fake_c)
        for t in self.tricks[FakeTransform]:
            fake, fake_c = t.d_fakes(fake, fake_c)
        real_scores, real_aux = self.critic(real, real_c, "real")
        fake_scores, fake_aux = self.critic(fake, fake_c, "fake")
        targets = None
        for t in self.tricks[TargetTransform]:
            targets = t.d_targets(targets, real_scores, fake_scores)
        if targets is None:
            loss = self.loss.discriminator(real_scores, fake_scores)
        else:
            loss = self.loss.discriminator_with_targets(real_scores, fake_scores, *targets)
        batch = StepBatch(real, fake, real_scores, fake_scores, self._scores_fn(real_c, "real"),
                          iteration, real_c, fake_c, real_aux, fake_aux, rows)
        if self.keep_scores:
            self.last_scores = {"real": real_scores.detach(), "fake": fake_scores.detach()}
        out = self._update("d", loss, batch)
        if kept is not None:
            out["_kept"] = kept
        return out

    def g_phase(self, iteration: int, kept: Optional[tuple] = None) -> dict:
        """G's step on fresh fakes, or on ``kept`` (fakes with G's graph, their conditions and
        the real batch) from the D phase."""
        inputs = self.inputs
        paired = inputs.conditioning.kind == "paired"
        rows = None
        if kept is not None:
            fake, fake_c, real, rows = kept
            real, rows = (real, rows) if paired else (None, None)
        else:
            real = None
            if paired:  # predict for real inputs, keep their truth
                real, fake_c, rows = inputs.real_rows()
            else:
                fake_c = inputs.fake_conditions(inputs.batch_size)
            n = inputs.batch_size if real is None else real.shape[0]
            fake = self.generate(inputs.noise(n), fake_c)
        fake_scores, fake_aux = self.critic(fake, fake_c, "g")
        weight = 1.0
        for t in self.tricks[Penalty]:
            weight *= t.adversarial_weight
        loss = (weight * self.loss.generator(None, fake_scores) if weight
                else fake_scores.new_zeros(()))
        batch = StepBatch(real, fake, None, fake_scores, self._scores_fn(fake_c, "g"),
                          iteration, fake_c if real is not None else None, fake_c, None, fake_aux,
                          rows)
        return self._update("g", loss, batch)

    def _update(self, player: str, loss: Tensor, batch: StepBatch) -> dict:
        """Add the penalties of ``player``, step its optimizer, run the step callbacks."""
        out = {}
        for t in self.tricks[Penalty]:
            pen = t.d_penalty(batch) if player == "d" else t.g_penalty(batch)
            if pen is not None:
                out[f"{player}_{t.name}"] = pen.detach()
                loss = loss + pen
        opt = self.players.optimizer(player)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        total = loss.detach()
        if self.inputs.world > 1:
            average_gradients([p for g in opt.param_groups for p in g["params"]],
                              self.inputs.world)
        for t in self.tricks[StepCallback]:
            pen = t.before_update(player)
            if pen is not None:  # its gradient is in already; its value joins the objective
                out[f"{player}_{t.name}"] = pen.detach()
                total = total + pen.detach()
        opt.step()
        for t in self.tricks[StepCallback]:
            t.after_update(player)
        out[f"{player}_loss"] = total
        return out


def _mean_rows(rows: list[dict]) -> dict:
    """Each series' mean over the critic steps that logged it."""
    keys = dict.fromkeys(k for row in rows for k in row)
    return {k: torch.stack([row[k] for row in rows if k in row]).mean() for k in keys}
