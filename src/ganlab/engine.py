"""The GAN game: one engine that trains any generator/discriminator pair with any loss.

The training step contract (what :meth:`Game.play` does each iteration):

1. ``n_critic`` discriminator steps. Each draws a real batch and a noise batch, generates a fake
   batch without building G's graph (so it is detached), scores both with D and minimises
   ``loss.discriminator(real_scores, fake_scores)`` plus every regularizer's ``d_penalty``; G's
   parameters have ``requires_grad`` off. After the optimizer step, ``after_d_step`` hooks run
   (e.g. WGAN's weight clipping).
2. One generator step: a fresh noise batch, ``loss.generator(real_scores, fake_scores)`` plus every
   ``g_penalty``, with D's parameters' ``requires_grad`` off; then ``after_g_step`` hooks.

Losses stay on the device between log points (no host sync per step); every ``log_every``
iterations they are fetched at once, checked for non-finite values, appended to the history and
written to ``metrics.jsonl`` and TensorBoard (interval means). Every ``sample_every`` iterations a
grid (or scatter plot) of samples from a fixed noise batch is written; every ``checkpoint_every``
iterations, and at the end of ``play``, an atomic checkpoint holding everything exact resume needs.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from . import checkpoint as ckpt
from .config import OptimizerConfig, RunConfig, to_plain
from .data import BatchSampler, Dataset, load_dataset
from .distributed import average as dist_average
from .distributed import average_gradients, gather_objects, local_device
from .distributed import barrier as dist_barrier
from .distributed import world as dist_world
from .init import apply_init
from .losses import LossPair, get_loss
from .models import MODELS
from .noise import LATENTS
from .regularizers import (REGULARIZERS, Regularizer, StepBatch, build_regularizer,
                           build_regularizers)
from .registry import ConfigError
from .tracking import Tracker


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stopped with the last good checkpoint kept."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: unknown device {name!r}; valid: auto, cpu, cuda, cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} asked for, but torch sees no CUDA device")
    return dev


def make_optimizer(params, cfg: OptimizerConfig, device: torch.device) -> torch.optim.Optimizer:
    impl = {}
    if cfg.implementation == "fused" or (cfg.implementation == "auto" and device.type == "cuda"):
        impl = {"fused": True}
    elif cfg.implementation in ("foreach", "auto"):
        impl = {"foreach": True}
    elif cfg.implementation == "for-loop":
        impl = {"foreach": False}
    params = list(params)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas),
                                weight_decay=cfg.weight_decay, **impl)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas),
                                 weight_decay=cfg.weight_decay, **impl)
    impl.pop("fused", None)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **impl)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.betas[0],
                               weight_decay=cfg.weight_decay, **impl)
    raise ConfigError(f"optim.name: unknown optimizer {cfg.name!r}")


def decayed_lr(cfg: OptimizerConfig, iteration: int, total: int) -> float:
    """The learning rate at ``iteration`` under ``cfg.decay`` (stateless, so resume is exact)."""
    if cfg.decay == "none" or total <= 0:
        return cfg.lr
    start = cfg.decay_start * total
    if iteration <= start:
        return cfg.lr
    return cfg.lr * max(0.0, 1.0 - (iteration - start) / (total - start))


def set_requires_grad(model: nn.Module, flag: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(flag)


class History(dict):
    """Per-iteration series (``d_loss``, ``g_loss``, penalties), each a list of floats."""

    def __repr__(self):
        parts = [f"{k}: {len(v)} values, last {v[-1]:.4g}" for k, v in self.items() if v]
        return f"History({'; '.join(parts)})"


class Game:
    """A GAN training run: two networks, data, a loss, optimizers and everything to resume.

    Notebook use::

        game = Game(G, D, images, latent_dim=96, loss="lsgan", lr_g=1e-3, lr_d=1e-3)
        history = game.play(2000)        # returns the loss history so far
        game.save("game.pt"); game.load("game.pt")
        imgs = game.sample(16)

    ``data`` is a :class:`ganlab.data.Dataset` or a tensor of examples in the model's scale.
    With ``run_dir`` the game writes metrics, TensorBoard events, samples and checkpoints there.
    """

    def __init__(self, G: nn.Module, D: nn.Module, data, *, latent_dim: int,
                 latent_dist: str = "normal", loss: str | LossPair = "nonsaturating",
                 loss_args: dict | None = None, regularizers: list[Regularizer] | tuple = (),
                 batch_size: int = 128, n_critic: int = 1,
                 lr_g: float = 2e-4, lr_d: float = 2e-4, betas=(0.5, 0.999),
                 optim_g: OptimizerConfig | None = None, optim_d: OptimizerConfig | None = None,
                 seed: int = 0, device: str | torch.device = "cpu", run_dir: str | Path | None = None,
                 log_every: int = 50, sample_every: int = 500, checkpoint_every: int = 1000,
                 num_samples: int = 64, compile: bool = False, channels_last: bool = False,
                 progress: Optional[bool] = None, total_iterations: int = 0,
                 eval_every: int = 0, best_metric: Optional[str] = None, best_mode: str = "max",
                 histogram_every: int = 0, max_seconds: Optional[float] = None,
                 config: RunConfig | None = None):
        self.rank, self.world = dist_world()
        device = torch.device(device) if not isinstance(device, torch.device) else device
        self.device = local_device(device)
        self.data = data if isinstance(data, Dataset) else Dataset(
            examples=torch.as_tensor(data, dtype=torch.float32),
            kind="image" if torch.as_tensor(data).dim() == 4 else "points")
        self.config = config
        ckpt.seed_everything(seed + 104729 * self.rank)  # per-rank global RNG (dropout, GP)
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.num_classes = int(getattr(G, "num_classes", 0) or 0)
        if self.num_classes and self.data.labels is None:
            raise ConfigError("model: a conditional generator needs a dataset with labels")
        self.labels = self.data.labels.to(self.device) if self.data.labels is not None else None
        # paired conditioning (image-to-image, the Tetris emulator): G(z, c) and D(x, c) for a
        # condition c stored with each example; fakes are generated from the real batch's c
        self.conditions = (self.data.conditions.to(self.device)
                           if self.data.conditions is not None else None)
        if self.conditions is not None and self.num_classes:
            raise ConfigError("model: a game is conditioned on labels or on paired conditions, "
                              "not both")
        self.loss = get_loss(loss) if isinstance(loss, str) else loss
        self.regularizers = list(regularizers) or (
            build_regularizers(self.loss, loss_args or {}, []) if isinstance(loss, str) else [])
        self.latent_dim, self.latent_dist = latent_dim, latent_dist
        self._sample_noise = LATENTS.get(latent_dist, "latent.dist")
        self.batch_size, self.n_critic = batch_size, n_critic
        self.seed = seed
        if self.world > 1:  # every rank starts from rank 0's weights
            import torch.distributed as tdist
            with torch.no_grad():
                for t in [*self.G.state_dict().values(), *self.D.state_dict().values()]:
                    tdist.broadcast(t, 0)
        # may rewrite or copy the models: before optimizers exist, the rewriting hooks first
        first = sorted(self.regularizers, key=lambda h: not getattr(h, "rewrites_models", False))
        for hook in first:
            try:
                hook.setup(self)
            except ValueError as exc:
                where = getattr(hook, "where", hook.name)
                raise ConfigError(f"{where}: {exc}") from None
        self.channels_last = channels_last and self.data.kind == "image"
        self.examples = self.data.examples.to(self.device)
        if self.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
            self.examples = self.examples.contiguous(memory_format=torch.channels_last)
        self._G_fwd = torch.compile(self.G) if compile else self.G
        self._D_fwd = torch.compile(self.D) if compile else self.D
        og = optim_g or OptimizerConfig(lr=lr_g, betas=tuple(betas))
        od = optim_d or OptimizerConfig(lr=lr_d, betas=tuple(betas))
        self._schedules = [(opt_cfg, which) for opt_cfg, which in ((og, "g"), (od, "d"))
                           if opt_cfg.decay != "none"]
        self.total_iterations = total_iterations
        self.opt_g = make_optimizer(self.G.parameters(), og, self.device)
        self.opt_d = make_optimizer(self.D.parameters(), od, self.device)
        self.sampler = BatchSampler(len(self.data), batch_size, seed + 1, self.rank, self.world)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(seed + 2)
        fixed_gen = torch.Generator(device=self.device).manual_seed(seed + 3)
        self.fixed_noise = self._sample_noise(num_samples, latent_dim, generator=fixed_gen,
                                              device=self.device)
        # conditional grids: one row per class
        self.fixed_labels = (torch.arange(num_samples, device=self.device) * self.num_classes
                             // num_samples if self.num_classes else None)
        if self.conditions is not None:
            self.fixed_labels = self.conditions[:num_samples]
            self.fixed_noise = self.fixed_noise[:len(self.fixed_labels)]
        self.iteration = 0
        self.history = History(d_loss=[], g_loss=[])
        self._pending: list[dict] = []
        self.run_dir = Path(run_dir) if run_dir else None
        self.is_main = self.rank == 0
        self.tracker = Tracker(self.run_dir if self.is_main else None)
        self.log_every, self.sample_every = log_every, sample_every
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.last_checkpoint: Optional[Path] = None
        self.train_seconds = 0.0
        self._play_started: Optional[float] = None
        self.eval_every, self.best_metric, self.best_mode = eval_every, best_metric, best_mode
        self.best_value: Optional[float] = None
        self.eval_history: list[dict] = []
        self.histogram_every = histogram_every
        self.max_seconds = max_seconds
        self._last_scores: dict = {}

    # --- construction from a config ----------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: RunConfig, run_dir: str | Path | None = None,
                    dataset: Dataset | None = None) -> "Game":
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        device = resolve_device(cfg.train.device)
        if cfg.train.deterministic:
            import os
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        ckpt.seed_everything(cfg.seed)
        data = dataset or load_dataset(cfg.data.name, cfg.data.path, cfg.data.args, seed=cfg.seed)
        G = build_model(cfg.model.generator, "model.generator", latent_dim=cfg.latent.dim)
        D = build_model(cfg.model.discriminator, "model.discriminator")
        apply_init(G, cfg.model.init)
        apply_init(D, cfg.model.init)
        pair = get_loss(cfg.loss.name)
        regs = build_regularizers(pair, cfg.loss.args, cfg.regularizers)
        t = cfg.train
        return cls(G, D, data, latent_dim=cfg.latent.dim, latent_dist=cfg.latent.dist, loss=pair,
                   regularizers=regs, batch_size=cfg.data.batch_size, n_critic=t.n_critic,
                   optim_g=cfg.optim.g, optim_d=cfg.optim.d, seed=cfg.seed, device=device,
                   run_dir=run_dir, log_every=t.log_every, sample_every=t.sample_every,
                   checkpoint_every=t.checkpoint_every, num_samples=t.num_samples,
                   compile=t.compile, channels_last=cfg.model.channels_last, progress=t.progress,
                   total_iterations=t.iterations, eval_every=t.eval_every,
                   best_metric=t.best_metric, best_mode=t.best_mode,
                   histogram_every=t.histogram_every, max_seconds=t.max_seconds, config=cfg)

    # --- the training step -------------------------------------------------------------------

    def noise(self, n: int) -> torch.Tensor:
        """Noise for ``n`` examples: with several ranks, this rank's slice of the global draw."""
        z = self._sample_noise(n * self.world, self.latent_dim, generator=self.noise_gen,
                               device=self.device)
        return z[self.rank * n:(self.rank + 1) * n] if self.world > 1 else z

    def fake_labels(self, n: int, real_cond: Optional[torch.Tensor] = None
                    ) -> Optional[torch.Tensor]:
        """Conditions for ``n`` fakes: uniformly drawn class labels (label-conditional games),
        the real batch's own conditions or a fresh batch of them (paired games), else None."""
        if self.conditions is not None:
            if real_cond is not None:
                return real_cond
            idx = self.sampler.next_indices()[:n].to(self.device, non_blocking=True)
            return self.conditions.index_select(0, idx)
        if not self.num_classes:
            return None
        y = torch.randint(self.num_classes, (n * self.world,), generator=self.noise_gen,
                          device=self.device)
        return y[self.rank * n:(self.rank + 1) * n] if self.world > 1 else y

    def real_batch(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        idx = self.sampler.next_indices().to(self.device, non_blocking=True)
        x = self.examples.index_select(0, idx)
        if self.conditions is not None:
            return x, self.conditions.index_select(0, idx)
        return x, (self.labels.index_select(0, idx) if self.num_classes else None)

    def generate(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._G_fwd(z) if labels is None else self._G_fwd(z, labels)

    def critic(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None,
               phase: str = "fake"):
        """D's scores on ``x`` after the input hooks (instance noise, packing); with an auxiliary
        head (ACGAN) returns ``(scores, aux)``, else ``(scores, None)``."""
        for hook in self.regularizers:
            x = hook.transform_d_input(x, phase, self)
        out = self._D_fwd(x) if labels is None else self._D_fwd(x, labels)
        return out if isinstance(out, tuple) else (out, None)

    def _scores_fn(self, labels, phase):
        return lambda x: self.critic(x, labels, phase)[0]

    def _update(self, loss, batch: StepBatch, which: str) -> dict:
        """Add the hooks' penalties for ``which`` ("d" or "g"), step its optimizer, run hooks."""
        out = {}
        for hook in self.regularizers:
            pen = hook.d_penalty(batch) if which == "d" else hook.g_penalty(batch)
            if pen is not None:
                out[f"{which}_{hook.name}"] = pen.detach()
                loss = loss + pen
        opt = self.opt_d if which == "d" else self.opt_g
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world > 1:
            average_gradients([p for g in opt.param_groups for p in g["params"]], self.world)
        for hook in self.regularizers:
            pen = hook.before_d_step(self) if which == "d" else hook.before_g_step(self)
            if pen is not None:
                out[f"{which}_{hook.name}"] = pen.detach()
        opt.step()
        for hook in self.regularizers:
            hook.after_d_step(self) if which == "d" else hook.after_g_step(self)
        out[f"{which}_loss"] = loss.detach()
        return out

    def d_step(self) -> dict:
        real, real_y = self.real_batch()
        fake_y = self.fake_labels(real.shape[0], real_y)
        with torch.no_grad():
            fake = self.generate(self.noise(real.shape[0]), fake_y)
        for hook in self.regularizers:
            fake, fake_y = hook.d_fakes(fake, fake_y, self)
        real_scores, real_aux = self.critic(real, real_y, "real")
        fake_scores, fake_aux = self.critic(fake, fake_y, "fake")
        targets = None
        for hook in self.regularizers:
            targets = hook.d_targets(targets, real_scores, fake_scores, self)
        if targets is None:
            loss = self.loss.discriminator(real_scores, fake_scores)
        else:
            loss = self.loss.discriminator_with_targets(real_scores, fake_scores, *targets)
        batch = StepBatch(real, fake, real_scores, fake_scores, self._scores_fn(real_y, "real"),
                          self.iteration, real_y, fake_y, real_aux, fake_aux)
        if self.histogram_every:
            self._last_scores = {"real": real_scores.detach(), "fake": fake_scores.detach()}
        return self._update(loss, batch, "d")

    def g_step(self) -> dict:
        real = None
        if self.conditions is not None:  # paired: predict for real boards, keep their truth
            real, fake_y = self.real_batch()
        else:
            fake_y = self.fake_labels(self.batch_size)
        n = self.batch_size if real is None else real.shape[0]
        fake = self.generate(self.noise(n), fake_y)
        fake_scores, fake_aux = self.critic(fake, fake_y, "g")
        weight = 1.0
        for hook in self.regularizers:
            weight *= hook.g_adversarial_weight
        loss = (weight * self.loss.generator(None, fake_scores) if weight
                else fake_scores.new_zeros(()))
        batch = StepBatch(real, fake, None, fake_scores, self._scores_fn(fake_y, "g"),
                          self.iteration, fake_y if real is not None else None, fake_y, None,
                          fake_aux)
        return self._update(loss, batch, "g")

    def train_step(self) -> dict:
        """One iteration: ``n_critic`` D steps then one G step (a player a hook freezes is
        skipped); returns device scalars."""
        for hook in self.regularizers:
            hook.before_iteration(self)
        train_d = all(hook.trains("d", self) for hook in self.regularizers)
        train_g = all(hook.trains("g", self) for hook in self.regularizers)
        self.G.train()
        self.D.train()
        out = {}
        if train_d:
            set_requires_grad(self.G, False)
            set_requires_grad(self.D, True)
            for _ in range(self.n_critic):
                out.update(self.d_step())
        if train_g:
            set_requires_grad(self.D, False)
            set_requires_grad(self.G, True)
            out.update(self.g_step())
        set_requires_grad(self.D, True)
        set_requires_grad(self.G, True)
        return out

    # --- the loop ----------------------------------------------------------------------------

    def play(self, num_iter: int) -> History:
        """Train for ``num_iter`` more iterations, or until ``max_seconds`` of training time
        (checked every ``log_every`` iterations, resumes included); returns the loss history."""
        end = self.iteration + int(num_iter)
        bar = self._progress_bar(num_iter)
        t0 = self._play_started = time.perf_counter()
        try:
            while self.iteration < end:
                if self.iteration % self.log_every == 0 and self.out_of_time():
                    break
                for opt_cfg, which in self._schedules:
                    lr = decayed_lr(opt_cfg, self.iteration, self.total_iterations)
                    for group in (self.opt_g if which == "g" else self.opt_d).param_groups:
                        group["lr"] = lr
                self._pending.append(self.train_step())
                self.iteration += 1
                it = self.iteration
                if it % self.log_every == 0 or it == end:
                    self._flush()
                    if bar is not None:
                        bar.update(it - (end - int(num_iter)) - bar.n)
                        bar.set_postfix(d=f"{self.history['d_loss'][-1]:.3f}",
                                        g=f"{self.history['g_loss'][-1]:.3f}")
                if self.run_dir and self.is_main and it % self.sample_every == 0:
                    self.write_samples()
                if self.run_dir and it % self.checkpoint_every == 0:
                    self._flush()
                    self.save_checkpoint()
                if (self.run_dir and self.is_main and self.histogram_every
                        and it % self.histogram_every == 0):
                    self.write_histograms()
                if self.eval_every and it % self.eval_every == 0:
                    self._flush()  # a collective under torchrun: every rank flushes
                    if self.is_main:
                        self.evaluate()
            self._flush()
        finally:
            self.train_seconds += time.perf_counter() - t0
            self._play_started = None
            if bar is not None:
                bar.close()
        if self.run_dir:
            if self.iteration % self.sample_every and self.is_main:
                self.write_samples()
            if self.iteration % self.checkpoint_every:
                self.save_checkpoint()
            if self.is_main:
                from .viz import save_loss_plot
                save_loss_plot(self.history, self.run_dir / "loss.png")
                self.tracker.flush()
        return self.history

    def out_of_time(self) -> bool:
        """Whether ``max_seconds`` of training are spent; under torchrun, rank 0 decides for all
        (their clocks differ, and a rank that stopped alone would hang the others)."""
        if self.max_seconds is None:
            return False
        flag = torch.tensor(float(self.elapsed() >= self.max_seconds))
        if self.world > 1:
            import torch.distributed as tdist
            flag = flag.to(self.device)
            tdist.broadcast(flag, 0)
        return bool(flag.item())

    def elapsed(self) -> float:
        """Training wall time so far, the current ``play`` included."""
        started = self._play_started
        return self.train_seconds + (time.perf_counter() - started if started else 0.0)

    def _progress_bar(self, total: int):
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if not show or total < 1:
            return None
        from tqdm.auto import tqdm
        return tqdm(total=total, desc="training", unit="it", dynamic_ncols=True)

    def _flush(self) -> None:
        """Fetch pending device scalars in one transfer, check them, extend the history, log
        interval means. A series (e.g. a lazy penalty) may be absent from some iterations."""
        if not self._pending:
            return
        first = self.iteration - len(self._pending) + 1
        entries = [(first + i, k, v) for i, row in enumerate(self._pending) for k, v in row.items()]
        self._pending.clear()
        stacked = torch.stack([v.float() for _, _, v in entries])
        if self.world > 1:  # log the mean over ranks (every rank pends the same series)
            stacked = dist_average(stacked, self.world)
        values = stacked.cpu().tolist()
        for (it, key, _), value in zip(entries, values):
            if not math.isfinite(value):
                last = (f"; the last good checkpoint is {self.last_checkpoint}"
                        if self.last_checkpoint else "; no checkpoint was written yet")
                raise NonFiniteLossError(f"iteration {it}: {key} is {value}; training stopped{last}")
        series: dict[str, list] = {}
        for (_, key, _), value in zip(entries, values):
            series.setdefault(key, []).append(value)
        for key, col in series.items():
            self.history.setdefault(key, []).extend(col)
        means = {key: sum(col) / len(col) for key, col in series.items()}
        means["seconds"] = self.elapsed()
        self.tracker.log(self.iteration, means)

    # --- outputs -----------------------------------------------------------------------------

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator used for samples and evaluation: an EMA copy where a hook keeps one."""
        for hook in self.regularizers:
            model = hook.sampling_model()
            if model is not None:
                return model
        return self.G

    @torch.no_grad()
    def sample(self, n: int | None = None, noise: torch.Tensor | None = None,
               data_scale: bool = False, labels: torch.Tensor | None = None,
               reject: bool = True, max_rounds: int = 1000) -> torch.Tensor:
        """Generate ``n`` examples (or from ``noise``) in eval mode, training RNG untouched.
        Conditional games draw labels uniformly unless ``labels`` are given. With a hook that
        filters samples (``discriminator-rejection``) and no ``noise`` given, every rejected row
        is drawn again, with its label, until all are accepted; ``reject=False`` skips that."""
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 4 + self.iteration)
        filters = [h for h in self.regularizers if h.filters_samples] if (
            reject and noise is None) else []
        if noise is None:
            noise = self._sample_noise(n, self.latent_dim, generator=gen, device=self.device)
        if self.conditions is not None and labels is None:
            raise ValueError("sample: a paired-conditional game needs the conditions (labels=)")
        if self.num_classes and labels is None:
            labels = torch.randint(self.num_classes, (noise.shape[0],), generator=gen,
                                   device=self.device)
        G = self.sampling_generator
        was = G.training
        G.eval()
        try:
            out = self._generate_chunked(G, noise, labels)
            if filters:
                out = self._redraw_rejected(G, noise, out, labels, filters, gen, max_rounds)
        finally:
            G.train(was)
        out = out.float().contiguous()
        return self.data.to_data_scale(out) if data_scale else out

    def add_filter(self, name: str, **args) -> Regularizer:
        """Add a sampling filter (a trick with ``filters_samples``, e.g.
        ``add_filter("discriminator-rejection", calibrate=5000)``) to this game, typically one
        restored from a run trained without it; ``sample`` and evaluation then use it. Training
        and checkpoints are unchanged. Returns the filter."""
        filters = [n for n in REGULARIZERS.names()
                   if getattr(REGULARIZERS.get(n), "filters_samples", False)]
        if name not in filters:
            what = "a training trick, not a sampling filter" if name in REGULARIZERS else "unknown"
            raise ConfigError(f"filter: {name!r} is {what}; valid filters: {', '.join(filters)}")
        hook = build_regularizer(name, args, "filter")
        try:
            hook.setup(self)
        except ValueError as exc:
            raise ConfigError(f"filter ({name}): {exc}") from None
        self.regularizers.append(hook)
        return hook

    def _training_hooks(self) -> list[Regularizer]:
        return [h for h in self.regularizers if not h.filters_samples]

    def _redraw_rejected(self, G: nn.Module, noise: torch.Tensor, out: torch.Tensor, labels,
                         filters: list, gen: torch.Generator, max_rounds: int) -> torch.Tensor:
        """Rejection sampling: rows any filter rejects are drawn again (same label) until every
        row is accepted. ``noise`` (drawn by ``sample`` itself) is updated in place."""
        pending = torch.arange(out.shape[0], device=self.device)
        for _ in range(max_rounds):
            z, x = noise.index_select(0, pending), out.index_select(0, pending)
            y = labels.index_select(0, pending) if labels is not None else None
            keep = torch.ones(len(pending), dtype=torch.bool, device=self.device)
            for hook in filters:
                keep &= hook.accept(z, x, y, self, gen)
            pending = pending[~keep]
            if not len(pending):
                return out
            noise[pending] = self._sample_noise(len(pending), self.latent_dim, generator=gen,
                                                device=self.device)
            out[pending] = self._generate_chunked(G, noise[pending],
                                                  y[~keep] if y is not None else None)
        raise RuntimeError(f"sample: {len(pending)} of {out.shape[0]} samples still rejected "
                           f"after {max_rounds} rounds of {', '.join(h.name for h in filters)}")

    def _generate_chunked(self, G: nn.Module, z: torch.Tensor, labels) -> torch.Tensor:
        if labels is None:
            return torch.cat([G(chunk) for chunk in z.split(1024)])
        return torch.cat([G(a, b) for a, b in zip(z.split(1024), labels.split(1024))])

    def zero_grad_counts(self) -> dict:
        """Parameter elements whose last gradient is exactly zero, per network (dead units)."""
        out = {}
        for name, model in (("G", self.G), ("D", self.D)):
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            out[f"zero_grads_{name}"] = int(sum((g == 0).sum().item() for g in grads))
        return out

    @torch.no_grad()
    def write_histograms(self) -> None:
        """Weights and last gradients of both networks and D's scores on real and fake, as
        TensorBoard histograms; zero-gradient counts as scalars."""
        tb, it = self.tracker.tb, self.iteration
        for name, model in (("G", self.G), ("D", self.D)):
            for pname, p in model.named_parameters():
                tb.add_histogram(f"weights/{name}/{pname}", p.detach().float().cpu(), it)
                if p.grad is not None:
                    tb.add_histogram(f"grads/{name}/{pname}", p.grad.float().cpu(), it)
        for kind, scores in self._last_scores.items():
            tb.add_histogram(f"scores/{kind}", scores.float().cpu(), it)
        self.tracker.log(it, self.zero_grad_counts(), kind="grads")

    def evaluate(self) -> dict:
        """The dataset's metrics (``info["evaluate"]``, e.g. the Tetris emulator metrics on the
        train and test splits; mode coverage for the mixtures), logged as ``eval`` rows; with
        ``best_metric`` the best checkpoint so far is kept as ``checkpoints/best.pt``."""
        fn = self.data.info.get("evaluate")
        if fn is None:
            return {}
        metrics = fn(self)
        self.eval_history.append({"iteration": self.iteration, **metrics})
        self.tracker.log(self.iteration, metrics, kind="eval")
        if self.best_metric:
            if self.best_metric not in metrics:
                raise ConfigError(f"train.best_metric: {self.best_metric!r} is not a metric of "
                                  f"this dataset; valid: {', '.join(sorted(metrics))}")
            value = metrics[self.best_metric]
            better = value is not None and (self.best_value is None or (
                value > self.best_value if self.best_mode == "max" else value < self.best_value))
            if better:
                self.best_value = value
                if self.run_dir:
                    ckpt.atomic_save(self.state_dict(), self.run_dir / "checkpoints" / "best.pt")
        return metrics

    def write_samples(self) -> Path:
        from .viz import save_grid, save_rgb, save_scatter
        x = self.sample(noise=self.fixed_noise, labels=self.fixed_labels)
        path = self.run_dir / "samples" / f"iter_{self.iteration:07d}.png"
        render = self.data.info.get("render")
        if render is not None:  # e.g. Tetris: condition | prediction | truth
            real = self.examples[:len(x)]
            grid = render(self.fixed_labels, x, real)
            save_rgb(grid, path)
            self.tracker.image("samples", torch.from_numpy(grid).permute(2, 0, 1), self.iteration)
        elif self.data.kind == "image":
            nrow = len(x) // self.num_classes if self.num_classes else None
            grid = save_grid(x, path, nrow=nrow)
            self.tracker.image("samples", torch.from_numpy(grid).permute(2, 0, 1),
                               self.iteration)
        else:
            save_scatter(x, path, self.data.info.get("modes"), f"iteration {self.iteration}")
            if "modes" in self.data.info:
                from .data.toy import evaluate_modes
                self.tracker.log(self.iteration, evaluate_modes(self, samples=x), kind="eval")
        return path

    # --- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "format": ckpt.FORMAT,
            "config": to_plain(self.config) if self.config is not None else None,
            "iteration": self.iteration,
            "train_seconds": self.elapsed(),
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "rng": {**ckpt.capture_rng(), "noise": self.noise_gen.get_state(),
                    "sampler": self.sampler.state_dict()},
            "fixed_noise": self.fixed_noise.cpu(),
            # sampling filters keep no state: a filter added to a restored run (add_filter)
            # leaves the checkpoint loadable by the run's own config
            "hooks": [hook.state_dict() for hook in self._training_hooks()],
            "best_value": self.best_value,
            "eval_history": self.eval_history,
            "history": {k: torch.tensor(v, dtype=torch.float64) for k, v in self.history.items()},
        }

    def load_state_dict(self, state: dict, source: str = "checkpoint") -> None:
        # hooks first: a schedule that swapped D must rebuild it before D's weights load
        hook_states = state.get("hooks", [])
        hooks = self._training_hooks()
        if len(hook_states) == len(self.regularizers):  # written when filters were saved too
            hooks = self.regularizers
        if len(hook_states) != len(hooks):
            raise ckpt.CheckpointError(f"{source}: was written with {len(hook_states)} "
                                       f"regularizers/tricks, this game trains with {len(hooks)}")
        for hook, hs in zip(hooks, hook_states):
            hook.load_state_dict(hs)
        try:
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ckpt.CheckpointError(
                f"{source}: does not fit these models/optimizers: {str(exc).splitlines()[0]}"
            ) from None
        self.iteration = int(state["iteration"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        rng = state["rng"]
        if self.world > 1:
            ranks = state.get("rng_ranks")
            if not ranks or len(ranks) != self.world:
                raise ckpt.CheckpointError(f"{source}: was written by "
                                           f"{len(ranks) if ranks else 1} process(es); resume it "
                                           f"with the same number (now {self.world})")
            rng = ranks[self.rank]
        ckpt.restore_rng(rng)
        self.noise_gen.set_state(state["rng"]["noise"])
        self.sampler.load_state_dict(state["rng"]["sampler"])
        self.fixed_noise = state["fixed_noise"].to(self.device)
        self.best_value = state.get("best_value")
        self.eval_history = list(state.get("eval_history", []))
        self.history = History({k: v.tolist() for k, v in state["history"].items()})

    def replace_discriminator(self, D: nn.Module, optim_cfg: OptimizerConfig) -> None:
        """Swap in a new D (already initialised) with a fresh optimizer."""
        self.D = D.to(self.device)
        if self.channels_last:
            self.D.to(memory_format=torch.channels_last)
        self._D_fwd = self.D
        self.opt_d = make_optimizer(self.D.parameters(), optim_cfg, self.device)
        self._schedules = [(c, w) for c, w in self._schedules if w != "d"]
        if optim_cfg.decay != "none":
            self._schedules.append((optim_cfg, "d"))

    def save(self, path: str | Path) -> Path:
        self._flush()
        return ckpt.atomic_save(self.state_dict(), path)

    def load(self, path: str | Path) -> "Game":
        # RNG states must stay CPU byte tensors; load_state_dict moves the rest to the device
        self.load_state_dict(ckpt.safe_load(path, map_location="cpu"), str(path))
        return self

    def save_checkpoint(self) -> Path:
        """Rank 0 writes ``checkpoints/latest.pt`` (every rank's RNG states gathered into it)."""
        path = self.run_dir / "checkpoints" / "latest.pt"
        self._flush()
        state = self.state_dict()
        if self.world > 1:
            state["rng_ranks"] = gather_objects(state["rng"], self.world)
        if self.is_main:
            ckpt.atomic_save(state, path)
        dist_barrier(self.world)
        self.last_checkpoint = path
        return path


def build_model(comp, where: str, **extra) -> nn.Module:
    try:
        return MODELS.build(comp.name, comp.args, where=where, **extra)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}.args: {exc}") from None
