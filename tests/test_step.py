"""ganlab.step: the D phase / G phase contract, what it logs, and the roles' call order."""
import pytest
import torch

from ganlab import Game
from ganlab.hooks import (FakeTransform, InputTransform, IterationHook, Penalty, StepCallback,
                          TargetTransform)
from ganlab.losses import bce_discriminator_loss

from helpers import tiny_config


class Recorder(Penalty, StepCallback, InputTransform, FakeTransform, TargetTransform,
               IterationHook):
    """Every training role at once, recording the order of the calls."""

    name = "rec"

    def __init__(self, calls):
        self.calls = calls

    def before_iteration(self):
        self.calls.append("iteration")

    def d_fakes(self, fake, cond):
        self.calls.append("fakes")
        return fake, cond

    def d_input(self, x, phase):
        self.calls.append(f"input:{phase}")
        return x

    def d_targets(self, targets, real_scores, fake_scores):
        self.calls.append("targets")
        return targets

    def d_penalty(self, batch):
        self.calls.append("d_penalty")

    def g_penalty(self, batch):
        self.calls.append("g_penalty")

    def before_update(self, player):
        self.calls.append(f"before:{player}")

    def after_update(self, player):
        self.calls.append(f"after:{player}")


def test_each_role_is_called_at_its_point_of_the_step():
    calls = []
    game = Game.from_config(tiny_config("train.n_critic=2"))
    game.tricks.add(Recorder(calls))
    game.play(1)
    d = ["fakes", "input:real", "input:fake", "targets", "d_penalty", "before:d", "after:d"]
    assert calls == ["iteration", *d, *d, "input:g", "g_penalty", "before:g", "after:g"]


class Constant(Penalty):
    """A penalty of 0.1, 0.2, 0.3, ... on successive D steps (no gradient)."""

    name = "const"

    def __init__(self):
        self.k = 0

    def d_penalty(self, batch):
        self.k += 1
        self.seen = getattr(self, "seen", []) + [bce_discriminator_loss(batch.real_scores,
                                                                         batch.fake_scores).item()]
        return torch.tensor(0.1 * self.k)


def test_with_several_critic_steps_d_values_are_means_over_the_steps():
    game = Game.from_config(tiny_config("train.n_critic=3"))
    const = Constant()
    game.tricks.add(const)
    h = game.play(2)
    assert h["d_const"] == pytest.approx([0.2, 0.5])  # (0.1+0.2+0.3)/3, (0.4+0.5+0.6)/3
    adversarial = const.seen
    for it in range(2):
        steps = range(3 * it, 3 * it + 3)
        want = sum(adversarial[k] + 0.1 * (k + 1) for k in steps) / 3
        assert h["d_loss"][it] == pytest.approx(want, rel=1e-5)  # the whole objective


def test_historical_averaging_is_part_of_the_logged_objective():
    game = Game.from_config(tiny_config("regularizers=[{name: historical-averaging, "
                                        "args: {weight: 10.0}}]"))
    spy = Constant()
    spy.d_penalty = lambda b: spy.seen.append(bce_discriminator_loss(b.real_scores,
                                                                     b.fake_scores).item())
    spy.seen = []
    game.tricks.add(spy)
    h = game.play(3)
    ha = h["d_historical_averaging"]  # from the second step on (the mean needs a step)
    assert len(ha) == 2 and min(ha) > 0
    assert h["d_loss"][2] == pytest.approx(spy.seen[2] + ha[1], rel=1e-5)


def test_the_loss_of_the_method_is_kept_beside_given_tricks():
    """Game(..., loss='wgan-gp', tricks=[...]) trains with the gradient penalty too."""
    from ganlab.tricks import R1
    cfg = tiny_config()
    src = Game.from_config(cfg)
    game = Game(src.G, src.D, src.data, latent_dim=2, loss="wgan-gp", tricks=[R1(weight=1.0)],
                batch_size=32, progress=False)
    assert [t.key for t in game.tricks] == ["gradient-penalty", "r1"]
    h = game.play(2)
    assert len(h["d_gradient_penalty"]) == 2 and len(h["d_r1"]) == 2


def test_frozen_players_are_skipped_and_requires_grad_is_restored():
    game = Game.from_config(tiny_config("regularizers=[{name: schedule, args: "
                                        "{freeze_d_at: 0}}]"))
    d0 = [p.clone() for p in game.D.parameters()]
    h = game.play(2)
    assert all(torch.equal(a, b) for a, b in zip(d0, game.D.parameters()))
    assert len(h["g_loss"]) == 2 and not h.get("d_loss")
    assert all(p.requires_grad for p in [*game.G.parameters(), *game.D.parameters()])
