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


class Batches(Penalty):
    """Keeps every phase's StepBatch."""

    name = "batches"

    def __init__(self):
        self.seen = []

    def d_penalty(self, batch):
        self.seen.append(("d", batch))

    def g_penalty(self, batch):
        self.seen.append(("g", batch))


def _counting_g(game):
    calls = []
    game.G.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    return calls


@pytest.mark.parametrize("paired", [False, True])
def test_reuse_fakes_scores_the_last_critic_steps_fakes_in_the_g_phase(paired):
    if paired:  # a paired game (Tetris): the G phase must keep the D phase's real batch too
        from ganlab import load_config
        cfg = load_config("tetris", ["data.args={record: 300}", "data.batch_size=8",
                                     "train.progress=false", "train.n_critic=2",
                                     "model.generator.args={width: 4, depth: 2}",
                                     "train.reuse_fakes=true", "regularizers=[]"])
    else:
        cfg = tiny_config("train.n_critic=2", "train.reuse_fakes=true")
    game = Game.from_config(cfg)
    spy = Batches()
    game.tricks.add(spy)
    calls = _counting_g(game)
    g0 = [p.clone() for p in game.G.parameters()]
    game.play(2)
    assert len(calls) == 2 * 2  # one G forward per critic step, none of its own in the G phase
    assert [k for k, _ in spy.seen] == ["d", "d", "g"] * 2
    for it in range(2):
        (_, d1), (_, d2), (_, g) = spy.seen[3 * it:3 * it + 3]
        assert d2.fake.grad_fn is None and g.fake.requires_grad  # D saw them detached
        assert torch.equal(g.fake.detach(), d2.fake)  # the same fakes, not new ones
        assert not torch.equal(d1.fake, d2.fake)
        assert torch.equal(g.fake_cond, d2.fake_cond) if paired else g.fake_cond is None
        if paired:  # the G phase's truth is the D phase's real batch
            assert torch.equal(g.real, d2.real) and torch.equal(g.real_cond, d2.real_cond)
    assert any(not torch.equal(a, b) for a, b in zip(g0, game.G.parameters()))  # G learnt
    assert all(p.requires_grad for p in [*game.G.parameters(), *game.D.parameters()])
    # without it: three forwards per iteration, and the G phase's fakes are new ones
    plain = Game.from_config(tiny_config("train.n_critic=2"))
    calls = _counting_g(plain)
    plain.play(1)
    assert len(calls) == 3
