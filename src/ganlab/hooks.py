"""The narrow interfaces through which tricks take part in a game, and what they see of it.

A trick (:mod:`ganlab.tricks`) is a small object. It takes one or more *roles*, each a class with
one to three methods; the step, the sampler and the game call a trick only through the roles it
has, in the order the config lists the tricks.

Model transforms, once, before the optimizers exist:

- :class:`ModelTransform` ``transform()``: rewrite ``ctx.G`` / ``ctx.D`` in place (spectral
  norm, virtual batch norm). Every transform runs before any other trick's ``setup``, so EMA's
  copy and historical averaging's parameter list see the final models.

Training hooks, in the order of a step (:mod:`ganlab.step`):

- :class:`IterationHook` ``before_iteration()``, ``trains(player)``: freeze and replacement
  schedules; a player ("d" or "g") any hook says not to train is skipped.
- :class:`FakeTransform` ``d_fakes(fake, cond)``: D's fake batch (the replay buffer).
- :class:`InputTransform` ``d_input(x, phase)``: every input of D, ``phase`` "real" or "fake"
  in D's step and "g" in G's (instance noise, packing).
- :class:`TargetTransform` ``d_targets(targets, real_scores, fake_scores)``: per-example
  targets for D's loss, ``None`` meaning the loss's own 1 and 0 (label smoothing, noisy and
  flipped labels). Having this role is how a trick says it changes D's targets: the config
  refuses it with a loss that has none.
- :class:`Penalty` ``d_penalty(batch)``, ``g_penalty(batch)``: a term added to D's / G's loss,
  returned with its weight applied and logged as ``d_NAME`` / ``g_NAME`` (gradient penalties,
  feature matching, ACGAN's class loss, reconstruction); ``adversarial_weight`` scales G's
  adversarial loss (0: feature matching alone).
- :class:`StepCallback` ``before_update(player)`` (after ``backward``, before the optimizer
  step: a penalty whose gradient is known in closed form edits the gradients and returns its
  value to log), ``after_update(player)`` (weight clipping, running averages, EMA).

Sampling (:mod:`ganlab.sampling`):

- :class:`SamplingModel` ``sampling_model()``: the generator to sample and evaluate with (EMA).
- :class:`SampleFilter` ``accept(z, x, cond, generator)``: which samples ``x = G(z, cond)`` to
  keep; rejected rows are drawn again (discriminator rejection sampling, Jacobian truncation).
  A filter needs no retraining and keeps no state, so it can be added to a trained run.

Every trick has ``setup(ctx)``, called once with the game's :class:`TrainingContext` (its public
face: the networks, noise, generation, the critic, the conditioning, the data), and
``state_dict()`` / ``load_state_dict()`` for whatever exact resume needs; checkpoints key that
state by the trick's ``key`` (its config name, ``NAME#2`` for a second one).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor


@dataclass
class StepBatch:
    """What a penalty sees of one player's step."""

    real: Optional[Tensor]  # None in G's step, except in paired games: the truth for the fakes
    fake: Tensor  # detached in D's step
    real_scores: Optional[Tensor]
    fake_scores: Tensor
    critic: Optional[Callable[[Tensor], Tensor]]  # D's scores on new inputs (conditions, input
    #                                               transforms applied)
    iteration: int
    real_cond: Optional[Tensor] = None  # the real batch's labels or paired conditions
    fake_cond: Optional[Tensor] = None
    real_aux: Optional[Tensor] = None  # auxiliary head outputs (ACGAN class logits)
    fake_aux: Optional[Tensor] = None
    index: Optional[Tensor] = None  # the real batch's rows of the training examples (what a
    #                                 trick may key per-example state by), or None


class Trick:
    """A named part of a game. ``name`` is how its logged values are called, ``key`` how its
    checkpoint state is keyed, ``where`` where the config defines it (for errors)."""

    name = "trick"
    key = ""
    where = ""
    # declared couplings other tricks check: D's input rows are groups of examples (packing);
    # the trick reads D's inner activations (feature matching)
    groups_d_rows = False
    reads_d_activations = False

    def setup(self, ctx: "TrainingContext") -> None:
        self.ctx = ctx

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Seeded(Trick):
    """A trick with a random stream of its own, seeded from the run's seed and the trick's key
    (so two tricks, or two of the same trick, never draw the same numbers), checkpointed for
    exact resume."""

    def setup(self, ctx: "TrainingContext") -> None:
        super().setup(ctx)
        self.gen = torch.Generator(device=ctx.device).manual_seed(
            derived_seed(ctx.seed, self.key or self.name))

    def state_dict(self) -> dict:
        return {"rng": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["rng"])


class ModelTransform(Trick):
    def transform(self) -> None:
        raise NotImplementedError


class IterationHook(Trick):
    def before_iteration(self) -> None:
        pass

    def trains(self, player: str) -> bool:
        return True


class FakeTransform(Trick):
    def d_fakes(self, fake: Tensor, cond: Optional[Tensor]):
        raise NotImplementedError


class InputTransform(Trick):
    def d_input(self, x: Tensor, phase: str) -> Tensor:
        raise NotImplementedError


class TargetTransform(Trick):
    changes_targets = True  # read by the config's validation

    def d_targets(self, targets, real_scores: Tensor, fake_scores: Tensor):
        raise NotImplementedError


class Penalty(Trick):
    adversarial_weight = 1.0

    def d_penalty(self, batch: StepBatch) -> Optional[Tensor]:
        return None

    def g_penalty(self, batch: StepBatch) -> Optional[Tensor]:
        return None


class StepCallback(Trick):
    def before_update(self, player: str) -> Optional[Tensor]:
        return None

    def after_update(self, player: str) -> None:
        pass


class SamplingModel(Trick):
    def sampling_model(self):
        raise NotImplementedError


class SampleFilter(Trick):
    def accept(self, z: Tensor, x: Tensor, cond: Optional[Tensor],
               generator: torch.Generator) -> Tensor:
        raise NotImplementedError


ROLES = (ModelTransform, IterationHook, FakeTransform, InputTransform, TargetTransform, Penalty,
         StepCallback, SamplingModel, SampleFilter)


class Tricks:
    """A game's tricks in config order, with the list of each role."""

    def __init__(self, tricks=()):
        self.all: list[Trick] = []
        self.by_role: dict[type, list] = {role: [] for role in ROLES}
        for t in tricks:
            self.add(t)

    def add(self, trick: Trick) -> None:
        taken = {t.key for t in self.all}
        base = trick.key or trick.name
        key, k = base, 1
        while key in taken:
            k += 1
            key = f"{base}#{k}"
        trick.key = key
        self.all.append(trick)
        for role, members in self.by_role.items():
            if isinstance(trick, role):
                members.append(trick)

    def remove(self, trick: Trick) -> None:
        self.all.remove(trick)
        for members in self.by_role.values():
            if trick in members:
                members.remove(trick)

    def __getitem__(self, role: type) -> list:
        return self.by_role[role]

    def __iter__(self):
        return iter(self.all)

    def __len__(self):
        return len(self.all)

    @property
    def training(self) -> list[Trick]:
        """Every trick but the sampling filters: what a checkpoint holds the state of."""
        return [t for t in self.all if not isinstance(t, SampleFilter)]


def derived_seed(seed: int, key: str) -> int:
    """A seed for the random stream named ``key`` of a run seeded ``seed``: streams of different
    names are unrelated, and each is the same in every run with that seed."""
    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class TrainingContext:
    """A game's public face for its tricks: what they may read and call, and nothing else.

    Attributes: ``G``, ``D`` (the current networks), ``device``, ``seed``, ``iteration``,
    ``batch_size``, ``latent_dim``, ``latent_dist``, ``conditioning`` (:mod:`ganlab.conditioning`),
    ``data`` (the :class:`~ganlab.data.Dataset`), ``examples`` (its examples on the device),
    ``task``, ``config`` (the :class:`~ganlab.config.RunConfig`, or None) and ``tricks``.
    """

    def __init__(self, game):
        self._game = game  # the facade; tricks use only the methods below

    # --- the networks and the run --------------------------------------------------------------
    @property
    def G(self):
        return self._game.players.G

    @property
    def D(self):
        return self._game.players.D

    @property
    def iteration(self) -> int:
        return self._game.iteration

    def __getattr__(self, name):
        if name in _PLAIN:
            return getattr(self._game, name)
        raise AttributeError(f"TrainingContext has no attribute {name!r}")

    @property
    def task(self):
        return self._game.data.task

    @property
    def sampling_generator(self):
        return self._game.sampling_generator

    # --- randomness ----------------------------------------------------------------------------
    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None, device=None
                      ) -> Tensor:
        """``n`` latents from the run's latent distribution (with their own ``generator``)."""
        return self._game.latent(n, self._game.latent_dim, generator=generator,
                                 device=self._game.device if device is None else device)

    def set_latent_prior(self, probs) -> None:
        """Draw the ``categorical`` latent with ``probs`` from now on, in training and sampling
        (a prior learnt from the data); the trick that sets it restores it on resume."""
        self._game.set_latent_prior(probs)

    def noise(self, n: int) -> Tensor:
        """``n`` latents from the training noise stream (this rank's slice under torchrun)."""
        return self._game.inputs.noise(n)

    def real_batch(self):
        """The next real batch and its conditions, from the training data stream."""
        return self._game.inputs.real_batch()

    # --- the networks' calls -------------------------------------------------------------------
    def generate(self, z: Tensor, cond: Optional[Tensor] = None) -> Tensor:
        """G's training forward (compiled where ``train.compile`` is on)."""
        return self._game.step.generate(z, cond)

    def critic(self, x: Tensor, cond: Optional[Tensor] = None, phase: str = "fake"):
        """D's ``(scores, aux)`` on ``x`` after the input transforms (``aux``: an auxiliary
        head's output, else None)."""
        return self._game.step.critic(x, cond, phase)

    def in_training_format(self, module):
        """A trick's own network (a copy of G, say) put in the memory format G and D train in
        (channels-last under ``model.channels_last``); the module, changed in place."""
        return self._game.players.in_format(module)

    def in_training_precision(self, forward):
        """``forward`` (a trick's own network) run in the number format G and D train in:
        under ``train.precision: bfloat16``, bfloat16 autocast with float32 outputs."""
        return self._game.players.in_precision(forward)

    def generate_chunked(self, G, z: Tensor, cond: Optional[Tensor] = None) -> Tensor:
        """``G(z, cond)`` in chunks (no graph is kept between them)."""
        return self._game.sampler.generate(G, z, cond)

    def replace_discriminator(self, D, optim_cfg) -> None:
        """Swap in a new D (already initialised) with a fresh optimizer."""
        self._game.players.replace_discriminator(D, optim_cfg)


_PLAIN = {"device", "seed", "batch_size", "latent_dim", "latent_dist", "conditioning", "data",
          "examples", "config", "tricks"}
