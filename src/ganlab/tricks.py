"""Stabilisation tricks, each a named hook object (see :mod:`ganlab.regularizers` for the hooks).

Name in a config (``regularizers: [{name: ..., args: {...}}]``) and what it does:

- ``label-smoothing``: one-sided label smoothing, real target ``real`` (0.9) (Salimans et al. 2016,
  sec. 3.4).
- ``noisy-labels``: real targets drawn from U[real_low, real_high], fake from U[fake_low,
  fake_high] (Chollet's / Soumith's "ganhacks" trick 6).
- ``flip-labels``: swap real and fake targets of each example with probability ``p``.
- ``instance-noise``: Gaussian noise added to every input of D, std annealed linearly from
  ``std`` to ``final_std`` over ``anneal_iters`` (Sønderby et al. 2017; Arjovsky & Bottou 2017).
- ``replay-buffer``: D's fake batch mixes in past fakes from a pool (Shrivastava et al. 2017).
- ``r1`` / ``r2``: zero-centred gradient penalty on real / fake data, ``weight/2 E||grad D||^2``,
  optionally lazy (every ``interval`` D steps, scaled by ``interval``) (Mescheder et al. 2018;
  Karras et al. 2020 for lazy regularisation).
- ``virtual-batch-norm``: G's (and optionally D's) batch-norm layers normalise each example with
  a fixed reference batch and itself (Salimans et al. 2016, sec. 3.5).
- ``spectral-norm``: spectral normalisation of D's (and optionally G's) conv/linear weights
  (Miyato et al. 2018).
- ``feature-matching``: G matches the mean of D's features at a named layer on real and fake
  data (Salimans et al. 2016, sec. 3.1); ``replace: true`` drops G's adversarial loss.
- ``historical-averaging``: ``weight * ||theta - mean of past theta||^2`` for both players
  (Salimans et al. 2016, sec. 3.3), the mean kept as a running average: O(parameters) per step.
- ``ema``: an exponential moving average of G's weights, used for sampling and evaluation
  (Yazıcı et al. 2019).
- ``pack``: PacGAN (Lin et al. 2018): D judges ``m`` samples at once, concatenated along the
  feature/channel axis; D must be built for ``m`` times the input size.
- ``discriminator-rejection``: samples and evaluation keep each sample with a probability from a
  calibrated copy of D's density-ratio estimate (Azadi et al. 2019); training is untouched.
- ``schedule``: one-sided training (the Tetris experiments): freeze G or D from an iteration
  on, or replace D with a freshly initialised one (optionally of another registered class) with
  its own learning rate.
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import Tensor, nn

from .regularizers import REGULARIZERS, Regularizer, StepBatch


def _default_targets(real_scores: Tensor, fake_scores: Tensor):
    return torch.ones_like(real_scores), torch.zeros_like(fake_scores)


def _uniform(like: Tensor, low: float, high: float, gen: torch.Generator) -> Tensor:
    return torch.rand(like.shape, generator=gen, device=like.device, dtype=like.dtype) * \
        (high - low) + low


class _Seeded(Regularizer):
    """A trick with its own RNG (seeded from the game), checkpointed for exact resume."""

    def setup(self, game) -> None:
        self.gen = torch.Generator(device=game.device).manual_seed(game.seed + 101)

    def state_dict(self) -> dict:
        return {"rng": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["rng"])


@REGULARIZERS.register("label-smoothing")
class LabelSmoothing(Regularizer):
    name = "label_smoothing"

    def __init__(self, real: float = 0.9):
        if not 0 < real <= 1:
            raise ValueError(f"real: the smoothed real target must be in (0, 1], got {real}")
        self.real = float(real)

    def d_targets(self, targets, real_scores, fake_scores, game):
        rt, ft = targets or _default_targets(real_scores, fake_scores)
        return rt * self.real, ft  # one-sided: fakes keep their target


@REGULARIZERS.register("noisy-labels")
class NoisyLabels(_Seeded):
    name = "noisy_labels"

    def __init__(self, real_low: float = 0.7, real_high: float = 1.0, fake_low: float = 0.0,
                 fake_high: float = 0.3):
        self.range = (real_low, real_high, fake_low, fake_high)

    def d_targets(self, targets, real_scores, fake_scores, game):
        rl, rh, fl, fh = self.range
        return _uniform(real_scores, rl, rh, self.gen), _uniform(fake_scores, fl, fh, self.gen)


@REGULARIZERS.register("flip-labels")
class FlipLabels(_Seeded):
    name = "flip_labels"

    def __init__(self, p: float = 0.05):
        if not 0 <= p <= 1:
            raise ValueError(f"p: a probability, got {p}")
        self.p = float(p)

    def d_targets(self, targets, real_scores, fake_scores, game):
        rt, ft = targets or _default_targets(real_scores, fake_scores)
        fr = torch.rand(rt.shape, generator=self.gen, device=rt.device) < self.p
        ff = torch.rand(ft.shape, generator=self.gen, device=ft.device) < self.p
        return torch.where(fr, 1 - rt, rt), torch.where(ff, 1 - ft, ft)


@REGULARIZERS.register("instance-noise")
class InstanceNoise(_Seeded):
    name = "instance_noise"

    def __init__(self, std: float = 0.1, final_std: float = 0.0, anneal_iters: int = 10_000):
        self.std, self.final_std, self.anneal_iters = float(std), float(final_std), int(anneal_iters)

    def current_std(self, iteration: int) -> float:
        frac = min(1.0, iteration / self.anneal_iters) if self.anneal_iters > 0 else 1.0
        return self.std + (self.final_std - self.std) * frac

    def transform_d_input(self, x: Tensor, phase: str, game) -> Tensor:
        s = self.current_std(game.iteration)
        if s <= 0:
            return x
        return x + s * torch.randn(x.shape, generator=self.gen, device=x.device, dtype=x.dtype)


@REGULARIZERS.register("replay-buffer")
class ReplayBuffer(_Seeded):
    """Keeps up to ``size`` past fakes; each D step replaces a ``ratio`` share of the fake batch
    with random pool entries, then stores the fresh fakes in random pool slots."""

    name = "replay_buffer"

    def __init__(self, size: int = 1024, ratio: float = 0.5):
        if size < 1 or not 0 <= ratio <= 1:
            raise ValueError(f"size must be >= 1 and ratio in [0, 1]; got {size}, {ratio}")
        self.size, self.ratio = int(size), float(ratio)
        self.pool: Optional[Tensor] = None
        self.pool_labels: Optional[Tensor] = None
        self.filled = 0

    def d_fakes(self, fake, fake_labels, game):
        fresh, fresh_labels = fake, fake_labels
        n = fake.shape[0]
        k = int(round(self.ratio * n)) if self.filled else 0
        if k:
            take = torch.randint(self.filled, (k,), generator=self.gen, device=fake.device)
            slots = torch.randperm(n, generator=self.gen, device=fake.device)[:k]
            fake = fake.clone()
            fake[slots] = self.pool[take]
            if fake_labels is not None:
                fake_labels = fake_labels.clone()
                fake_labels[slots] = self.pool_labels[take]
        self._store(fresh, fresh_labels)
        return fake, fake_labels

    def _store(self, x: Tensor, y: Optional[Tensor]) -> None:
        if self.pool is None:
            self.pool = x.new_zeros((self.size,) + tuple(x.shape[1:]))
            if y is not None:
                self.pool_labels = y.new_zeros((self.size,))
        n = x.shape[0]
        free = min(self.size - self.filled, n)
        idx = torch.arange(self.filled, self.filled + free, device=x.device)
        if n > free:  # pool full: overwrite random slots
            idx = torch.cat([idx, torch.randint(self.size, (n - free,), generator=self.gen,
                                                device=x.device)])
        self.pool[idx] = x.detach()
        if y is not None:
            self.pool_labels[idx] = y
        self.filled += free

    def state_dict(self) -> dict:
        s = super().state_dict()
        s.update({"filled": self.filled, "pool": self.pool, "pool_labels": self.pool_labels})
        return s

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.filled, self.pool, self.pool_labels = state["filled"], state["pool"], state["pool_labels"]


def _grad_sq_norm(critic, x: Tensor) -> Tensor:
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1)


class _ZeroCentred(Regularizer):
    on = "real"

    def __init__(self, weight: float = 10.0, interval: int = 1):
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.weight, self.interval = float(weight), int(interval)

    def d_penalty(self, batch: StepBatch) -> Optional[Tensor]:
        if batch.iteration % self.interval:
            return None
        x = batch.real if self.on == "real" else batch.fake
        return (self.weight / 2) * self.interval * _grad_sq_norm(batch.critic, x).mean()


@REGULARIZERS.register("r1")
class R1(_ZeroCentred):
    """R1 (Mescheder et al. 2018, eq. 9): ``weight/2 * E_real ||grad_x D(x)||^2``."""

    name = "r1"
    on = "real"


@REGULARIZERS.register("r2")
class R2(_ZeroCentred):
    """R2 (Mescheder et al. 2018, eq. 10): the same penalty on generated samples."""

    name = "r2"
    on = "fake"


@REGULARIZERS.register("spectral-norm")
class SpectralNorm(Regularizer):
    name = "spectral_norm"
    rewrites_models = True

    def __init__(self, discriminator: bool = True, generator: bool = False,
                 power_iterations: int = 1):
        self.which, self.n_power = (discriminator, generator), int(power_iterations)

    def setup(self, game) -> None:
        for flag, model in zip(self.which, (game.D, game.G)):
            if flag:
                apply_spectral_norm(model, self.n_power)


def apply_spectral_norm(model: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    from torch.nn.utils.parametrizations import spectral_norm
    targets = [m for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d))]
    for m in targets:
        dim = 1 if isinstance(m, nn.ConvTranspose2d) else 0
        spectral_norm(m, n_power_iterations=n_power_iterations, dim=dim)
    return model


@REGULARIZERS.register("virtual-batch-norm")
class VirtualBatchNormTrick(Regularizer):
    """Virtual batch norm (Salimans et al. 2016, sec. 3.5): every batch-norm layer of G (and of D
    with ``discriminator: true``) becomes a :class:`~ganlab.models.norms.VirtualBatchNorm`, and a
    reference batch of ``size`` inputs, chosen once at the start, runs with every call: G's is
    noise (and uniformly drawn labels, or conditions drawn from a paired data set), D's the
    first ``size`` real examples of a fixed permutation (with their labels or conditions). D's
    reference enters D as stored: the input hooks (instance noise) are not applied to it. Costs
    one extra forward of ``size`` rows per call."""

    name = "virtual_batch_norm"
    rewrites_models = True

    def __init__(self, size: int = 64, generator: bool = True, discriminator: bool = False):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size, self.which = int(size), (generator, discriminator)

    def setup(self, game) -> None:
        from .models.norms import attach_reference, to_virtual_batch_norm
        clash = [h.name for h in game.regularizers if isinstance(h, (Pack, FeatureMatching))]
        if self.which[1] and clash:
            raise ValueError(f"a virtual-batch-norm D does not combine with {clash[0]}: its "
                             f"reference rows would enter the packed groups / features")
        gen = torch.Generator().manual_seed(game.seed + 303)
        for flag, model, who in zip(self.which, (game.G, game.D), ("G", "D")):
            if not flag:
                continue
            if not to_virtual_batch_norm(model):
                raise ValueError(f"{who} has no batch-norm layer to make virtual (build it with "
                                 f"norm: batch)")
            ref = self._g_reference(game, gen) if who == "G" else self._d_reference(game, gen)
            attach_reference(model, tuple(t.to(game.device) for t in ref))

    def _g_reference(self, game, gen):
        z = game._sample_noise(self.size, game.latent_dim, generator=gen, device="cpu")
        if game.conditions is not None:
            return z, game.data.conditions[self._rows(game, gen)]
        if game.num_classes:
            return z, torch.randint(game.num_classes, (self.size,), generator=gen)
        return (z,)

    def _rows(self, game, gen):
        return torch.randperm(len(game.data), generator=gen)[:self.size]

    def _d_reference(self, game, gen):
        data, idx = game.data, self._rows(game, gen)
        x = data.examples[idx]
        if data.conditions is not None:
            return x, data.conditions[idx]
        return (x, data.labels[idx]) if game.num_classes else (x,)


@REGULARIZERS.register("feature-matching")
class FeatureMatching(Regularizer):
    """``weight * ||E f(x) - E f(G(z))||^2`` with f the output of D's module ``layer`` (a name
    from ``D.named_modules()``; default: the input of D's last linear layer)."""

    name = "feature_matching"

    def __init__(self, layer: str = "", weight: float = 1.0, replace: bool = True):
        self.layer, self.weight = layer, float(weight)
        self.g_adversarial_weight = 0.0 if replace else 1.0
        self._feat: Optional[Tensor] = None

    def setup(self, game) -> None:
        self.game = game
        modules = dict(game.D.named_modules())
        if self.layer:
            if self.layer not in modules:
                names = ", ".join(n for n in modules if n)
                raise ValueError(f"layer: D has no module {self.layer!r}; valid: {names}")
            modules[self.layer].register_forward_hook(self._keep_output)
        else:
            last = [m for m in game.D.modules() if isinstance(m, nn.Linear)][-1]
            last.register_forward_pre_hook(self._keep_input)

    def _keep_output(self, module, inputs, output):
        self._feat = output

    def _keep_input(self, module, inputs):
        self._feat = inputs[0]

    def g_penalty(self, batch: StepBatch) -> Tensor:
        fake_feat = self._feat.flatten(1).mean(0)
        real, real_y = self.game.real_batch()
        with torch.no_grad():
            self.game.critic(real, real_y, "real")
        real_feat = self._feat.flatten(1).mean(0)
        return self.weight * (real_feat - fake_feat).pow(2).sum()


@REGULARIZERS.register("historical-averaging")
class HistoricalAveraging(Regularizer):
    """Penalises each player's distance to the mean of its past parameters,
    ``weight * ||theta - mean_t(theta_t)||^2``. Its gradient ``2 weight (theta - mean)`` is
    added to the parameters' gradients directly (no autograd graph), and the mean is a running
    average updated in place after each step: a few fused passes over the parameters per step,
    O(parameters), instead of re-summing the history."""

    name = "historical_averaging"

    def __init__(self, weight: float = 1e-3, generator: bool = True, discriminator: bool = True):
        self.weight, self.which = float(weight), {"g": generator, "d": discriminator}
        self.count = {"g": 0, "d": 0}

    def setup(self, game) -> None:
        self.params = {"g": list(game.G.parameters()), "d": list(game.D.parameters())}
        self.means = {k: [p.detach().clone() for p in v] for k, v in self.params.items()}

    @torch.no_grad()
    def _apply(self, which: str) -> Optional[Tensor]:
        if not self.which[which] or self.count[which] == 0:
            return None
        pairs = [(p, m) for p, m in zip(self.params[which], self.means[which])
                 if p.grad is not None]
        if not pairs:
            return None
        params, means = zip(*pairs)
        diffs = torch._foreach_sub(list(params), list(means))
        torch._foreach_add_([p.grad for p in params], diffs, alpha=2 * self.weight)
        return self.weight * torch.stack(torch._foreach_norm(diffs)).pow(2).sum()

    def before_d_step(self, game):
        return self._apply("d")

    def before_g_step(self, game):
        return self._apply("g")

    @torch.no_grad()
    def _update(self, which: str) -> None:
        self.count[which] += 1
        w = 1.0 / (self.count[which] + 1)  # the mean of the initial and every updated value
        torch._foreach_lerp_(self.means[which], [p.detach() for p in self.params[which]], w)

    def after_d_step(self, game):
        self._update("d")

    def after_g_step(self, game):
        self._update("g")

    def state_dict(self) -> dict:
        return {"count": dict(self.count), "means": {k: [m.clone() for m in v]
                                                     for k, v in self.means.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.count = dict(state["count"])
        for k in self.means:
            for m, v in zip(self.means[k], state["means"][k]):
                m.copy_(v)


@REGULARIZERS.register("ema")
class EMA(Regularizer):
    """``G_ema <- decay * G_ema + (1 - decay) * G`` after each G step, from iteration ``start``;
    samples and evaluation use G_ema. Batch-norm statistics of the online G do not fit the
    averaged weights, so before G_ema is used its running statistics are re-estimated from
    ``recalibrate`` batches of fresh noise (its own RNG; training is untouched); 0 copies G's."""

    name = "ema"

    def __init__(self, decay: float = 0.999, start: int = 0, recalibrate: int = 8):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay, self.start, self.recalibrate = float(decay), int(start), int(recalibrate)
        self._stale = True

    def setup(self, game) -> None:
        self.game = game
        self.model = copy.deepcopy(game.G).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.src, self.dst = list(game.G.parameters()), list(self.model.parameters())
        self.src_b, self.dst_b = list(game.G.buffers()), list(self.model.buffers())
        self.norms = [m for m in self.model.modules()
                      if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    @torch.no_grad()
    def after_g_step(self, game) -> None:
        src = [p.detach() for p in self.src]
        if game.iteration < self.start:
            torch._foreach_copy_(self.dst, src)
        else:
            torch._foreach_lerp_(self.dst, src, 1 - self.decay)
        for d, s in zip(self.dst_b, self.src_b):
            d.copy_(s)
        self._stale = True

    @torch.no_grad()
    def _recalibrate(self) -> None:
        game = self.game
        gen = torch.Generator(device=game.device).manual_seed(game.seed + 202)
        momenta = [m.momentum for m in self.norms]
        for m in self.norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        self.model.train()
        for _ in range(self.recalibrate):
            z = game._sample_noise(max(game.batch_size, 256), game.latent_dim, generator=gen,
                                   device=game.device)
            if game.num_classes:
                y = torch.randint(game.num_classes, (z.shape[0],), generator=gen,
                                  device=game.device)
                self.model(z, y)
            else:
                self.model(z)
        self.model.eval()
        for m, mom in zip(self.norms, momenta):
            m.momentum = mom

    def sampling_model(self):
        if self._stale and self.norms and self.recalibrate > 0:
            self._recalibrate()
        self._stale = False
        return self.model

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self._stale = True


@REGULARIZERS.register("pack")
class Pack(Regularizer):
    """PacGAN: groups of ``m`` consecutive examples become one input to D, concatenated along
    dimension 1 (features of points, channels of images). The batch size must divide by m."""

    name = "pack"

    def __init__(self, m: int = 2):
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        self.m = int(m)

    def setup(self, game) -> None:
        if game.batch_size % self.m:
            raise ValueError(f"data.batch_size ({game.batch_size}) must divide by m ({self.m})")
        if game.num_classes:
            raise ValueError("packing is not defined for conditional games")
        probe = game.data.examples[:2 * self.m].to(game.device)
        try:
            with torch.no_grad():
                game.D.eval()
                game.D(self.transform_d_input(probe, "probe", game))
        except RuntimeError:
            shape = tuple(self.transform_d_input(probe, "probe", game).shape[1:])
            raise ValueError(f"D does not accept packed inputs of shape {shape}: build it for "
                             f"{self.m} times the input size (e.g. "
                             f"model.discriminator.args.in_dim={shape[0]})") from None
        finally:
            game.D.train()

    def transform_d_input(self, x: Tensor, phase: str, game) -> Tensor:
        n = x.shape[0]
        if n % self.m:
            raise ValueError(f"pack: a batch of {n} does not divide into groups of {self.m}")
        grouped = x.reshape((n // self.m, self.m) + tuple(x.shape[1:]))
        return grouped.flatten(1, 2)


def _data_conditions(game, n: int, gen: torch.Generator):
    """``n`` random example indices and the labels or paired conditions the data holds for them
    (None in an unconditional game): what G is conditioned on when sampling filters calibrate."""
    idx = torch.randint(len(game.examples), (n,), generator=gen, device=game.device)
    cond = game.conditions if game.conditions is not None else (
        game.labels if game.num_classes else None)
    return idx, (cond.index_select(0, idx) if cond is not None else None)


@REGULARIZERS.register("discriminator-rejection")
class DiscriminatorRejection(Regularizer):
    """Discriminator rejection sampling (Azadi et al. 2019, Algorithm 1): samples are kept with
    probability ``sigmoid(F(x))``, ``F(x) = D(x) - M - log(1 - exp(D(x) - M - eps)) - gamma``,
    ``D(x)`` a logit and ``M`` the largest logit seen (a burn-in of ``burn_in`` samples, then
    every scored one). With ``gamma = 0`` that is ``exp(D(x) - M)``: exact rejection sampling
    from p_data when ``exp(D)`` is the density ratio p_data / p_G, as it is for an optimal
    non-saturating D. Training is untouched; the game's samples and evaluation use it (the
    sample grids, drawn from fixed noise, do not).

    Before sampling from a new iteration, a copy of D is calibrated (the paper's sec. 3.2):
    ``calibrate`` steps of logistic regression (Adam, ``lr``) on real examples against samples of
    the sampling generator, so the logits estimate the density ratio whatever the training loss
    (hinge and Wasserstein critics are not ratios). ``gamma_quantile`` (the paper uses 0.95 of the
    burn-in's F) sets gamma from the burn-in instead of ``gamma``, trading diversity for
    quality. Its own RNG (from the game's seed) keeps training and sampling reproducible."""

    name = "discriminator_rejection"
    filters_samples = True

    def __init__(self, calibrate: int = 2000, lr: float = 1.0e-4, burn_in: int = 10000,
                 gamma: float = 0.0, gamma_quantile: Optional[float] = None, eps: float = 1.0e-6):
        if calibrate < 0 or burn_in < 1:
            raise ValueError(f"calibrate must be >= 0 and burn_in >= 1, got {calibrate}, "
                             f"{burn_in}")
        if gamma_quantile is not None and not 0 < gamma_quantile < 1:
            raise ValueError(f"gamma_quantile must be in (0, 1), got {gamma_quantile}")
        if gamma_quantile is not None and gamma:
            raise ValueError("give gamma or gamma_quantile, not both")
        self.calibrate, self.lr, self.burn_in = int(calibrate), float(lr), int(burn_in)
        self.gamma, self.gamma_quantile, self.eps = float(gamma), gamma_quantile, float(eps)
        self._at = None  # the iteration the calibrated critic belongs to

    def setup(self, game) -> None:
        if any(isinstance(h, Pack) for h in game.regularizers):
            raise ValueError("scores one sample at a time, but with `pack` D judges m at once")
        self.game = game

    def _scores(self, D, x: Tensor, cond) -> Tensor:
        out = D(x) if cond is None else D(x, cond)
        return (out[0] if isinstance(out, tuple) else out).reshape(-1).float()

    def _draw(self, n: int, gen: torch.Generator):
        """A real batch and fakes of the sampling generator under the same labels/conditions."""
        game = self.game
        idx, cond = _data_conditions(game, n, gen)
        z = game._sample_noise(n, game.latent_dim, generator=gen, device=game.device)
        with torch.no_grad():
            fake = game._generate_chunked(game.sampling_generator, z, cond)
        return game.examples.index_select(0, idx), fake, cond

    def _prepare(self) -> None:
        game = self.game
        gen = torch.Generator(device=game.device).manual_seed(game.seed + 303 + game.iteration)
        G = game.sampling_generator
        was = G.training
        G.eval()
        # D's own randomness (dropout) must not move training's global RNG
        with torch.random.fork_rng(devices=[game.device] if game.device.type == "cuda" else []):
            try:
                self.D = self._calibrated_critic(gen)
                with torch.no_grad():
                    logits = torch.cat([self._scores(self.D, fake, cond) for _, fake, cond in (
                        self._draw(min(4096, self.burn_in - i), gen)
                        for i in range(0, self.burn_in, 4096))])
            finally:
                G.train(was)
        self.max_logit = logits.max()
        self._gamma = (self.gamma if self.gamma_quantile is None
                       else float(torch.quantile(self._f(logits), self.gamma_quantile)))
        self.acceptance = float(torch.sigmoid(self._f(logits) - self._gamma).mean())
        self._at = game.iteration

    @torch.enable_grad()
    def _calibrated_critic(self, gen: torch.Generator) -> nn.Module:
        """A copy of D fitted by logistic regression on real against generated examples."""
        D = copy.deepcopy(self.game.D).train()
        for p in D.parameters():  # the copy trains whatever step the game's D is frozen for
            p.requires_grad_(True)
        opt = torch.optim.Adam(D.parameters(), lr=self.lr, betas=(0.5, 0.999))
        softplus = nn.functional.softplus
        for _ in range(self.calibrate):
            real, fake, cond = self._draw(self.game.batch_size, gen)
            loss = (softplus(-self._scores(D, real, cond)).mean()
                    + softplus(self._scores(D, fake, cond)).mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return D.eval()

    def _f(self, logits: Tensor) -> Tensor:
        d = (logits - self.max_logit).clamp(max=0.0)
        return d - torch.log1p(-torch.exp(d - self.eps))

    @torch.no_grad()
    def accept(self, z: Tensor, x: Tensor, labels, game, generator: torch.Generator) -> Tensor:
        if self._at != game.iteration:
            self._prepare()
        logits = self._scores(self.D, x, labels)
        self.max_logit = torch.maximum(self.max_logit, logits.max())
        p = torch.sigmoid(self._f(logits) - self._gamma)
        return torch.rand(p.shape, generator=generator, device=p.device) < p


@REGULARIZERS.register("jacobian-truncation")
class JacobianTruncation(Regularizer):
    """Jacobian-based truncation sampling (Tanielian et al. 2020, "Learning disconnected
    manifolds: a no GAN's land", sec. 4). A generator that maps a connected latent space onto
    separate modes must stretch thin slabs of latents across the gaps between them, and those
    latents are where ``||J_G(z)||_F`` is largest. A sample is kept when its Jacobian norm is at
    most the ``keep`` quantile of the norms of ``burn_in`` draws of the sampling generator, so
    about a fraction ``keep`` of draws pass, and the ones between modes are dropped first.
    Training is untouched; the game's samples and evaluation use it (the sample grids, drawn
    from fixed noise, do not).

    The norm is exact (one forward-mode product per latent dimension) when ``probes`` is None;
    otherwise it is the unbiased estimate ``mean_k ||J v_k||^2`` over ``probes`` Gaussian
    directions (Hutchinson), cheaper for a latent of many dimensions. It needs a generator
    differentiable in z; its cost per sample is that many forward passes."""

    name = "jacobian_truncation"
    filters_samples = True

    def __init__(self, keep: float = 0.9, burn_in: int = 10000, probes: Optional[int] = None):
        if not 0 < keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {keep}")
        if burn_in < 1 or (probes is not None and probes < 1):
            raise ValueError(f"burn_in and probes must be >= 1, got {burn_in}, {probes}")
        self.keep, self.burn_in, self.probes = float(keep), int(burn_in), probes
        self._at = None  # the iteration the threshold belongs to

    def setup(self, game) -> None:
        self.game = game

    @torch.no_grad()
    def norms(self, z: Tensor, labels: Optional[Tensor] = None,
              generator: Optional[torch.Generator] = None) -> Tensor:
        """``||J_G(z)||_F^2`` of the sampling generator (in eval mode) for each row of ``z``;
        ``labels`` are G's second input in conditional games."""
        G = self.game.sampling_generator
        was = G.training
        G.eval()
        try:
            return torch.cat([self._norms(G, z[i:i + 1024],
                                          labels[i:i + 1024] if labels is not None else None,
                                          generator) for i in range(0, len(z), 1024)])
        finally:
            G.train(was)

    def _norms(self, G: nn.Module, z: Tensor, y: Optional[Tensor], generator) -> Tensor:
        def f(u):
            return G(u) if y is None else G(u, y)

        flat = z.reshape(len(z), -1)
        if self.probes is None:  # the columns of J, one basis direction at a time
            dirs = torch.eye(flat.shape[1], device=z.device, dtype=z.dtype)[:, None].expand(
                -1, len(z), -1)
        else:
            dirs = (torch.randn(flat.shape, generator=generator, device=z.device, dtype=z.dtype)
                    for _ in range(self.probes))
        sq = torch.zeros(len(z), device=z.device)
        for v in dirs:
            try:
                _, jv = torch.func.jvp(f, (z,), (v.reshape(z.shape),))
            except RuntimeError as exc:
                raise RuntimeError(f"jacobian-truncation: the generator is not differentiable "
                                   f"in z: {str(exc).splitlines()[0]}") from None
            sq += jv.reshape(len(z), -1).float().pow(2).sum(1)
        return sq if self.probes is None else sq / self.probes

    def _prepare(self) -> None:
        game = self.game
        gen = torch.Generator(device=game.device).manual_seed(game.seed + 505 + game.iteration)
        z = game._sample_noise(self.burn_in, game.latent_dim, generator=gen, device=game.device)
        sq = self.norms(z, _data_conditions(game, self.burn_in, gen)[1], gen)
        self.threshold = float(torch.quantile(sq.double(), self.keep))
        self.acceptance = float((sq <= self.threshold).float().mean())
        self._at = game.iteration

    def accept(self, z: Tensor, x: Tensor, labels, game, generator: torch.Generator) -> Tensor:
        if self._at != game.iteration:
            self._prepare()
        return self.norms(z, labels, generator) <= self.threshold


@REGULARIZERS.register("acgan")
class ACGAN(Regularizer):
    """ACGAN's class losses (Odena et al. 2017, eq. 2-3): D minimises
    ``weight * (CE(c(x), y) + CE(c(G(z, y')), y'))``; G minimises ``weight * CE(c(G(z, y')), y')``.
    Needs a discriminator built with ``mode: acgan``."""

    name = "acgan"

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)

    def setup(self, game) -> None:
        if getattr(game.D, "mode", None) != "acgan" or not game.num_classes:
            raise ValueError("needs a conditional game whose discriminator has mode: acgan")

    def d_penalty(self, batch: StepBatch) -> Tensor:
        ce = nn.functional.cross_entropy
        return self.weight * (ce(batch.real_aux, batch.real_labels) +
                              ce(batch.fake_aux, batch.fake_labels))

    def g_penalty(self, batch: StepBatch) -> Tensor:
        return self.weight * nn.functional.cross_entropy(batch.fake_aux, batch.fake_labels)


@REGULARIZERS.register("schedule")
class Schedule(Regularizer):
    """Freeze and replace schedules. Iterations are counted from the start of the run;
    ``*_epoch`` forms count epochs of ``len(data) // batch_size`` iterations.

    - ``freeze_g_at`` / ``freeze_d_at``: from that iteration on the player is not trained;
    - ``replace_d_at``: at that iteration D is replaced by a fresh ``replace_d`` (a model
      ``{name, args}``; default: D's own class and arguments from the config), initialised with
      ``replace_init`` (default: the config's init), trained with Adam at ``replace_d_lr``
      (default: D's learning rate) and the config's betas.
    """

    name = "schedule"

    def __init__(self, freeze_g_at: Optional[int] = None, freeze_d_at: Optional[int] = None,
                 replace_d_at: Optional[int] = None, replace_d: Optional[dict] = None,
                 replace_init: Optional[str] = None, replace_d_lr: Optional[float] = None,
                 freeze_g_at_epoch: Optional[float] = None,
                 freeze_d_at_epoch: Optional[float] = None,
                 replace_d_at_epoch: Optional[float] = None):
        self.raw = {"freeze_g": (freeze_g_at, freeze_g_at_epoch),
                    "freeze_d": (freeze_d_at, freeze_d_at_epoch),
                    "replace_d": (replace_d_at, replace_d_at_epoch)}
        for key, (it, ep) in self.raw.items():
            if it is not None and ep is not None:
                raise ValueError(f"give {key}_at or {key}_at_epoch, not both")
        self.replace_spec, self.replace_init, self.replace_lr = replace_d, replace_init, replace_d_lr
        self.replaced = False

    def setup(self, game) -> None:
        self.game = game
        per_epoch = max(1, len(game.data) // game.batch_size)
        self.at = {k: (int(it) if it is not None else
                       (int(round(ep * per_epoch)) if ep is not None else None))
                   for k, (it, ep) in self.raw.items()}
        if self.replace_spec is not None and "name" not in self.replace_spec:
            raise ValueError("replace_d: expected {name: MODEL, args: {...}}")

    def trains(self, player: str, game) -> bool:
        at = self.at[f"freeze_{player}"]
        return at is None or game.iteration < at

    def before_iteration(self, game) -> None:
        at = self.at["replace_d"]
        if at is not None and not self.replaced and game.iteration >= at:
            self._replace()

    def _replace(self) -> None:
        from .config import Component, OptimizerConfig
        from .engine import build_model
        from .init import apply_init
        game, cfg = self.game, self.game.config
        spec = self.replace_spec or ({"name": cfg.model.discriminator.name,
                                      "args": cfg.model.discriminator.args} if cfg else None)
        if spec is None:
            raise ValueError("replace_d: no config to take D's class from; give replace_d")
        D = build_model(Component(spec["name"], spec.get("args", {})), "schedule.replace_d")
        apply_init(D, self.replace_init or (cfg.model.init if cfg else "default"))
        base = cfg.optim.d if cfg else OptimizerConfig()
        opt = OptimizerConfig(name=base.name, lr=self.replace_lr or base.lr, betas=base.betas,
                              weight_decay=base.weight_decay, implementation=base.implementation)
        game.replace_discriminator(D, opt)
        self.replaced = True

    def state_dict(self) -> dict:
        return {"replaced": self.replaced}

    def load_state_dict(self, state: dict) -> None:
        if state["replaced"] and not self.replaced:
            self._replace()  # rebuild the swapped-in D before its weights load


@REGULARIZERS.register("reconstruction")
class Reconstruction(Regularizer):
    """A reconstruction term for paired games (pix2pix, Isola et al. 2017), in its best-of-many
    form against blur and mode collapse (Bhattacharyya et al. 2018): G makes ``k`` predictions
    per condition and only the closest to the truth is penalised, so a deterministic target is
    learnt exactly while a random one (a spawned piece) leaves room for every outcome.
    ``loss``: ``ce`` (outputs are per-cell probabilities over channels, e.g. Tetris) or ``l1``.

    ``codes: all`` is the multiple-choice form (Guzman-Rivera et al. 2012) for a ``categorical``
    latent and a dataset that marks which pairs have a random outcome (``info["stochastic"]``,
    e.g. Tetris spawns): on those, G predicts under every code and only the closest prediction is
    penalised (each code learns one outcome); on the others the sampled code's prediction must
    be the truth (every code learns the deterministic rule). ``diversity`` > 0 adds a hinge that
    keeps the codes' predictions for a random-outcome pair at least ``margin`` apart (mean
    absolute difference summed over the example, so ``margin: 4`` is two one-hot cells), the
    diversity-sensitive term of Yang et al. 2019 / Mao et al. 2019: no two codes may settle on
    the same outcome, so a code that wins nothing is pushed to an outcome nobody covers.
    ``relax`` = epsilon gives the losing codes epsilon of the loss, the relaxed winner-takes-all
    of Rupprecht et al. 2017, so that no code goes unused ("dead") for lack of a gradient.

    ``codes: encoded`` is the conditional-VAE half of BicycleGAN (Zhu et al. 2017) with a fixed
    encoder: the dataset names the random outcome of each pair (``info["encode"]``: an outcome
    index per pair, -1 where the outcome is not random; for Tetris, which of the seven pieces
    spawned) and G must reproduce the truth from that outcome's code, while every sampled code
    must reproduce the deterministic pairs. Each code then means one outcome, so uniformly drawn
    codes give each outcome equally often; D still judges G's predictions under random codes."""

    name = "reconstruction"

    def __init__(self, weight: float = 1.0, k: int = 1, loss: str = "ce", codes: str = "sampled",
                 diversity: float = 0.0, margin: float = 4.0, relax: float = 0.0):
        if k < 1 or loss not in ("ce", "l1"):
            raise ValueError(f"k must be >= 1 and loss ce or l1; got {k}, {loss!r}")
        if codes not in ("sampled", "all", "encoded"):
            raise ValueError(f"codes must be 'sampled', 'all' or 'encoded', got {codes!r}")
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

    def setup(self, game) -> None:
        if game.conditions is None:
            raise ValueError("needs a paired game (a dataset with conditions, e.g. tetris)")
        if self.codes != "sampled":
            if game.latent_dist != "categorical":
                raise ValueError(f"codes: {self.codes} needs latent.dist: categorical (one code "
                                 f"per outcome), got {game.latent_dist!r}")
            key = "stochastic" if self.codes == "all" else "encode"
            if key not in game.data.info:
                raise ValueError(f"codes: {self.codes} needs a dataset that marks random-outcome "
                                 f"pairs (info[{key!r}]); {game.data.name or 'this dataset'} "
                                 "does not")
        self.game = game

    def _per_example(self, pred: Tensor, real: Tensor) -> Tensor:
        if self.loss == "ce":
            return -(real * pred.clamp_min(1e-7).log()).sum(1).flatten(1).mean(1)
        return (pred - real).abs().flatten(1).mean(1)

    def g_penalty(self, batch: StepBatch) -> Tensor:
        game = self.game
        losses = [self._per_example(batch.fake, batch.real)]
        for _ in range(self.k - 1):
            more = game.generate(game.noise(batch.real.shape[0]), batch.fake_labels)
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
        game, cond, real = self.game, batch.fake_labels, batch.real
        outcome = game.data.info["encode"](cond, real)
        if outcome.max() >= game.latent_dim:
            raise ValueError(f"the dataset names outcome {int(outcome.max())} but the latent has "
                             f"only {game.latent_dim} codes (latent.dim)")
        idx = (outcome >= 0).nonzero().flatten()
        if idx.numel() == 0:
            return per
        codes = torch.nn.functional.one_hot(outcome[idx], game.latent_dim).to(real.dtype)
        preds = game.generate(codes, cond[idx])
        return per.index_put((idx,), self._per_example(preds, real[idx]))

    def _multiple_choice(self, per: Tensor, batch: StepBatch):
        game, cond, real = self.game, batch.fake_labels, batch.real
        idx = game.data.info["stochastic"](cond, real).nonzero().flatten()
        if idx.numel() == 0:
            return per, None
        m, k = idx.numel(), game.latent_dim
        codes = torch.eye(k, device=real.device, dtype=real.dtype).repeat(m, 1)
        preds = game.generate(codes, cond[idx].repeat_interleave(k, 0))
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
