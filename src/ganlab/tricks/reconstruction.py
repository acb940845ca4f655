"""The reconstruction term of paired games (pix2pix, BicycleGAN's conditional-VAE half, and the
multiple-choice form), for generators that predict an output from a paired input."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..hooks import Penalty, StepBatch, StepCallback, derived_seed
from ..models.encoders import PairEncoder
from ..registry import TRICKS


@TRICKS.register("reconstruction")
class Reconstruction(Penalty, StepCallback):
    """A reconstruction term for paired games (pix2pix, Isola et al. 2017), in its best-of-many
    form against blur and mode collapse (Bhattacharyya et al. 2018): G makes ``k`` predictions
    per condition and only the closest to the truth is penalised, so a deterministic target is
    learnt exactly while a random one (a spawned piece) leaves room for every outcome.
    ``loss``: ``ce`` (outputs are per-cell probabilities over channels, e.g. Tetris) or ``l1``.

    ``codes: all`` is the multiple-choice form (Guzman-Rivera et al. 2012) for a ``categorical``
    latent and a task that marks which pairs have a random outcome (``task.stochastic``, e.g.
    Tetris spawns): on those, G predicts under every code and only the closest prediction is
    penalised (each code learns one outcome); on the others the sampled code's prediction must
    be the truth (every code learns the deterministic rule). ``diversity`` > 0 adds a hinge that
    keeps the codes' predictions for a random-outcome pair at least ``margin`` apart (mean
    absolute difference summed over the example, so ``margin: 4`` is two one-hot cells), the
    diversity-sensitive term of Yang et al. 2019 / Mao et al. 2019: no two codes may settle on
    the same outcome, so a code that wins nothing is pushed to an outcome nobody covers.
    ``relax`` = epsilon gives the losing codes epsilon of the loss, the relaxed winner-takes-all
    of Rupprecht et al. 2017, so that no code goes unused ("dead") for lack of a gradient.

    ``codes: encoded`` is the conditional-VAE half of BicycleGAN (Zhu et al. 2017) with a fixed
    encoder: the task names the random outcome of each pair (``task.encode``: an outcome
    index per pair, -1 where the outcome is not random; for Tetris, which of the seven pieces
    spawned) and G must reproduce the truth from that outcome's code, while every sampled code
    must reproduce the deterministic pairs. Each code then means one outcome, so uniformly drawn
    codes give each outcome equally often; D still judges G's predictions under random codes.

    ``codes: learned`` is the same conditional-VAE half with the encoder learnt, as BicycleGAN
    has it: a :class:`~ganlab.models.encoders.PairEncoder` E reads logits over the latent's codes
    off (condition, truth); G must reproduce the truth from E's code (the argmax, one-hot, with
    the softmax's gradient passed straight through to E: Bengio et al. 2013), and ``kl`` weighs
    each example's KL(softmax(E) || uniform), the VAE's pull towards the prior: where the code
    does not matter (a deterministic pair) E's choice stays near uniform, so G sees every code
    there and learns to ignore it; where it does (a random outcome) the reconstruction makes E
    confident and distinct outcomes take distinct codes. Nothing of the data is told to it. E has
    its own Adam (``encoder_lr``), stepped after G's; ``encoder_width``/``encoder_depth`` size
    it."""

    name = "reconstruction"

    def __init__(self, weight: float = 1.0, k: int = 1, loss: str = "ce", codes: str = "sampled",
                 diversity: float = 0.0, margin: float = 4.0, relax: float = 0.0,
                 kl: float = 0.1, encoder_lr: float = 1e-3, encoder_width: int = 32,
                 encoder_depth: int = 2):
        if k < 1 or loss not in ("ce", "l1"):
            raise ValueError(f"k must be >= 1 and loss ce or l1; got {k}, {loss!r}")
        if codes not in ("sampled", "all", "encoded", "learned"):
            raise ValueError(f"codes must be 'sampled', 'all', 'encoded' or 'learned', got "
                             f"{codes!r}")
        if kl < 0 or encoder_lr <= 0:
            raise ValueError(f"kl must be >= 0 and encoder_lr > 0; got {kl}, {encoder_lr}")
        self.kl, self.encoder_lr = float(kl), float(encoder_lr)
        self.encoder_width, self.encoder_depth = int(encoder_width), int(encoder_depth)
        self.encoder = None
        if codes != "sampled" and k != 1:
            raise ValueError(f"codes: {codes} chooses the codes itself; leave k at 1")
        if diversity < 0 or margin <= 0:
            raise ValueError(f"diversity must be >= 0 and margin > 0; got {diversity}, {margin}")
        if not 0 <= relax < 1:
            raise ValueError(f"relax must be in [0, 1), got {relax}")
        if (diversity or relax) and codes != "all":
            raise ValueError("diversity and relax need codes: all")
        self.weight, self.k, self.loss, self.codes = float(weight), int(k), loss, codes
        self.relax = float(relax)
        self.diversity, self.margin = float(diversity), float(margin)

    def setup(self, ctx) -> None:
        super().setup(ctx)
        if ctx.conditioning.kind != "paired":
            raise ValueError("needs a paired game (a dataset with conditions, e.g. tetris)")
        if self.codes != "sampled":
            if ctx.latent_dist != "categorical":
                raise ValueError(f"codes: {self.codes} needs latent.dist: categorical (one code "
                                 f"per outcome), got {ctx.latent_dist!r}")
            if self.codes == "learned":
                self._make_encoder(ctx)
                return
            key = "stochastic" if self.codes == "all" else "encode"
            if not callable(getattr(ctx.task, key, None)):
                raise ValueError(f"codes: {self.codes} needs a task that marks random-outcome "
                                 f"pairs (task.{key}); {ctx.data.name or 'this dataset'} "
                                 "does not (codes: learned needs nothing from the task)")

    def _make_encoder(self, ctx) -> None:
        cond = ctx.conditioning.values
        channels = cond.shape[1] + ctx.examples.shape[1]
        with torch.random.fork_rng(devices=[]):  # its own init from the run's seed, leaving
            torch.manual_seed(derived_seed(ctx.seed, self.key or self.name))  # the rest as is
            self.encoder = PairEncoder(channels, ctx.latent_dim, self.encoder_width,
                                       self.encoder_depth).to(ctx.device)
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), lr=self.encoder_lr,
                                            betas=(0.5, 0.999))

    def after_update(self, player: str) -> None:
        if self.encoder is not None and player == "g":
            self.encoder_opt.step()
            self.encoder_opt.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        if self.encoder is None:
            return {}
        return {"encoder": self.encoder.state_dict(), "encoder_opt": self.encoder_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.encoder is not None and state:
            self.encoder.load_state_dict(state["encoder"])
            self.encoder_opt.load_state_dict(state["encoder_opt"])

    def _learned(self, batch: StepBatch) -> Tensor:
        ctx, cond, real = self.ctx, batch.fake_cond, batch.real
        logits = self.encoder(cond, real)
        q = torch.softmax(logits, 1)
        hard = torch.nn.functional.one_hot(q.argmax(1), q.shape[1]).to(q.dtype)
        code = hard + q - q.detach()  # straight-through
        per = self._per_example(ctx.generate(code.to(real.dtype), cond), real)
        if self.kl:
            logq = torch.log_softmax(logits, 1)
            per = per + self.kl * ((q * logq).sum(1) + math.log(q.shape[1]))  # KL(q || U)
        return per

    def _per_example(self, pred: Tensor, real: Tensor) -> Tensor:
        if self.loss == "ce":
            # the smallest normal float, not a round 1e-7: below the clamp the log passes no
            # gradient, and a cell G is sure of wrongly (p < 1e-7) must still be pulled back
            tiny = torch.finfo(pred.dtype).tiny
            return -(real * pred.clamp_min(tiny).log()).sum(1).flatten(1).mean(1)
        return (pred - real).abs().flatten(1).mean(1)

    def g_penalty(self, batch: StepBatch) -> Tensor:
        ctx = self.ctx
        if self.codes == "learned":
            return self.weight * self._learned(batch).mean()
        losses = [self._per_example(batch.fake, batch.real)]
        for _ in range(self.k - 1):
            more = ctx.generate(ctx.noise(batch.real.shape[0]), batch.fake_cond)
            losses.append(self._per_example(more, batch.real))
        per = torch.stack(losses).min(0).values
        extra = None
        if self.codes == "all":
            per, extra = self._multiple_choice(per, batch)
        elif self.codes == "encoded":
            per = self._encoded(per, batch)
        loss = self.weight * per.mean()
        return loss if extra is None else loss + extra

    def _encoded(self, per: Tensor, batch: StepBatch) -> Tensor:
        ctx, cond, real = self.ctx, batch.fake_cond, batch.real
        outcome = ctx.task.encode(cond, real)
        if outcome.max() >= ctx.latent_dim:
            raise ValueError(f"the task names outcome {int(outcome.max())} but the latent has "
                             f"only {ctx.latent_dim} codes (latent.dim)")
        idx = (outcome >= 0).nonzero().flatten()
        if idx.numel() == 0:
            return per
        codes = torch.nn.functional.one_hot(outcome[idx], ctx.latent_dim).to(real.dtype)
        preds = ctx.generate(codes, cond[idx])
        return per.index_put((idx,), self._per_example(preds, real[idx]))

    def _multiple_choice(self, per: Tensor, batch: StepBatch):
        ctx, cond, real = self.ctx, batch.fake_cond, batch.real
        idx = ctx.task.stochastic(cond, real).nonzero().flatten()
        if idx.numel() == 0:
            return per, None
        m, k = idx.numel(), ctx.latent_dim
        codes = torch.eye(k, device=real.device, dtype=real.dtype).repeat(m, 1)
        preds = ctx.generate(codes, cond[idx].repeat_interleave(k, 0))
        choice = self._per_example(preds, real[idx].repeat_interleave(k, 0)).view(m, k)
        best = choice.min(1).values
        if self.relax:
            best = (1 - self.relax) * best + self.relax * choice.mean(1)
        per = per.index_put((idx,), best)
        if not self.diversity:
            return per, None
        flat = preds.reshape(m, k, -1)
        dist = (flat[:, :, None] - flat[:, None]).abs().sum(-1)  # (m, k, k)
        off = ~torch.eye(k, dtype=torch.bool, device=dist.device)
        hinge = torch.relu(self.margin - dist[:, off]).mean()
        return per, self.diversity * hinge
