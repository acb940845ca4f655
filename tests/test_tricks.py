"""Each trick's defining property."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from ganlab import Game
from ganlab.losses import LOSSES
from ganlab.registry import ConfigError
from ganlab.hooks import StepBatch
from ganlab.run import open_run, read_run_config, resume, start, train
from ganlab.tricks import (EMA, R1, R2, DiscriminatorRejection, FlipLabels, HistoricalAveraging,
                           JacobianTruncation,
                           InstanceNoise, LabelSmoothing, NoisyLabels, Pack, ReplayBuffer,
                           apply_spectral_norm)

from helpers import tiny_config


class FakeContext:
    """What a seeded trick reads of its context."""

    def __init__(self, seed=0, iteration=0):
        from ganlab.tasks import ImageTask
        self.device, self.seed, self.iteration = torch.device("cpu"), seed, iteration
        self.task = ImageTask()


def seeded(trick):
    trick.setup(FakeContext())
    return trick


def test_label_smoothing_is_one_sided_and_matches_numpy():
    r, f = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2, 1.0])
    rt, ft = LabelSmoothing(0.9).d_targets(None, r, f)
    assert torch.equal(rt, torch.full((3,), 0.9)) and torch.equal(ft, torch.zeros(3))
    loss = LOSSES.get("nonsaturating").discriminator_with_targets(r.double(), f.double(),
                                                                  rt.double(), ft.double())
    rn, fn = r.double().numpy(), f.double().numpy()
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected = np.mean(-(0.9 * np.log(sig(rn)) + 0.1 * np.log(1 - sig(rn)))) + \
        np.mean(-np.log(1 - sig(fn)))
    assert loss.item() == pytest.approx(expected, rel=1e-7)  # 0.9 held in float32


def test_noisy_labels_ranges():
    rt, ft = seeded(NoisyLabels()).d_targets(None, torch.zeros(5000), torch.zeros(5000))
    assert 0.7 <= rt.min() and rt.max() <= 1.0 and rt.std() > 0.05
    assert 0.0 <= ft.min() and ft.max() <= 0.3 and ft.std() > 0.05


def test_flip_labels_rate_and_composition():
    rt, ft = seeded(FlipLabels(p=0.1)).d_targets(None, torch.zeros(20000), torch.zeros(20000))
    assert abs((rt == 0).float().mean().item() - 0.1) < 0.01
    assert abs((ft == 1).float().mean().item() - 0.1) < 0.01
    smoothed = LabelSmoothing(0.9).d_targets(None, torch.zeros(4), torch.zeros(4))
    rt, ft = seeded(FlipLabels(p=1.0)).d_targets(smoothed, torch.zeros(4), torch.zeros(4))
    assert torch.allclose(rt, torch.full((4,), 0.1)) and torch.equal(ft, torch.ones(4))


def test_label_tricks_refused_for_losses_without_targets():
    with pytest.raises(ConfigError, match="'label-smoothing' changes D's targets.*'hinge'"):
        tiny_config("loss.name=hinge", "regularizers=[label-smoothing]")


def test_instance_noise_anneals():
    t = seeded(InstanceNoise(std=0.5, final_std=0.0, anneal_iters=100))
    x = torch.zeros(20000, 2)
    assert abs(t.d_input(x, "real").std().item() - 0.5) < 0.01
    t.ctx.iteration = 50
    assert abs(t.d_input(x, "fake").std().item() - 0.25) < 0.01
    t.ctx.iteration = 100
    assert torch.equal(t.d_input(x, "g"), x)


def test_replay_buffer_mixes_past_fakes():
    rb = seeded(ReplayBuffer(size=8, ratio=0.5))
    first = torch.arange(4.0).reshape(4, 1)
    out, _ = rb.d_fakes(first, None)
    assert torch.equal(out, first)  # empty pool: nothing to mix in yet
    second = torch.arange(10.0, 14.0).reshape(4, 1)
    out, _ = rb.d_fakes(second, None)
    from_pool = [v for v in out.flatten().tolist() if v < 10]
    assert len(from_pool) == 2 and set(from_pool) <= {0.0, 1.0, 2.0, 3.0}
    assert rb.filled == 8 and set(rb.pool.flatten().tolist()) == {0, 1, 2, 3, 10, 11, 12, 13}
    rb.d_fakes(torch.full((4, 1), 20.0), None)  # full pool: random slots overwritten
    assert rb.filled == 8 and (rb.pool == 20).sum() >= 1


@pytest.mark.parametrize("cls,on", [(R1, "real"), (R2, "fake")])
def test_r1_r2_linear_critic_and_lazy_interval(cls, on):
    w = torch.tensor([3.0, 4.0])
    critic = lambda x: x @ w  # noqa: E731  ||grad|| = 5 everywhere
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    batch = StepBatch(real, fake, None, fake @ w, critic, 0)
    assert cls(weight=2.0).d_penalty(batch).item() == pytest.approx(2.0 / 2 * 25)
    lazy = cls(weight=2.0, interval=4)
    assert lazy.d_penalty(StepBatch(real, fake, None, fake @ w, critic, 3)) is None
    assert lazy.d_penalty(StepBatch(real, fake, None, fake @ w, critic, 8)).item() == \
        pytest.approx(4 * 25)
    seen = []
    probe = lambda x: (seen.append(x.detach()), x @ w)[1]  # noqa: E731
    cls().d_penalty(StepBatch(real, fake, None, fake @ w, probe, 0))
    assert torch.equal(seen[0], real if on == "real" else fake)


def test_spectral_norm_bounds_each_layer():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    with torch.no_grad():
        D[0].weight.mul_(10)
    apply_spectral_norm(D, n_power_iterations=5)
    for _ in range(20):
        D(torch.randn(4, 10))  # power iterations run in train mode
    for layer in (D[0], D[2]):
        assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, abs=1e-2)


def test_feature_matching_penalty_vanishes_when_fakes_equal_reals():
    game = Game.from_config(tiny_config("regularizers=[{name: feature-matching}]"))
    fm = game.tricks.all[0]
    assert fm.adversarial_weight == 0.0
    sampler = game.inputs.sampler
    real, _ = game.inputs.real_batch()
    sampler.load_state_dict({"epoch_state": sampler.epoch_state,
                             "pos": sampler.pos - game.batch_size})
    game.step.critic(real)  # fake features := features of the very batch drawn next
    pen = fm.g_penalty(StepBatch(None, real, None, None, None, 0))
    assert pen.item() == pytest.approx(0.0, abs=1e-10)
    h = game.play(3)
    assert len(h["g_feature_matching"]) == 3 and h["g_loss"] == h["g_feature_matching"]


def test_historical_averaging_tracks_the_mean_of_all_past_parameters():
    game = Game.from_config(tiny_config("regularizers=[{name: historical-averaging, args: "
                                        "{weight: 0.01}}]"))
    ha = game.tricks.all[0]
    history = [[p.detach().clone() for p in game.G.parameters()]]
    for _ in range(4):
        game.play(1)
        history.append([p.detach().clone() for p in game.G.parameters()])
    for i, m in enumerate(ha.means["g"]):
        expected = torch.stack([h[i] for h in history]).mean(0)
        assert torch.allclose(m, expected, atol=1e-6)
    assert "d_historical_averaging" in game.history and "g_historical_averaging" in game.history


def test_ema_weights_and_sampling():
    game = Game.from_config(tiny_config("regularizers=[{name: ema, args: {decay: 0.9}}]"))
    ema = game.tricks.all[0]
    expected = [p.detach().clone() for p in game.G.parameters()]
    for _ in range(3):
        game.play(1)
        expected = [0.9 * e + 0.1 * p.detach() for e, p in zip(expected, game.G.parameters())]
    for e, p in zip(expected, ema.model.parameters()):
        assert torch.allclose(e, p, atol=1e-6)
    assert game.sampling_generator is ema.model
    z = torch.randn(5, 2)
    ema.model.eval()
    assert torch.allclose(game.sample(noise=z), ema.model(z))


def test_pack_groups_consecutive_examples_and_checks_d():
    p = Pack(m=2)
    x = torch.arange(8.0).reshape(4, 2)
    assert torch.equal(p.d_input(x, "real"),
                       torch.tensor([[0.0, 1, 2, 3], [4, 5, 6, 7]]))
    game = Game.from_config(tiny_config("regularizers=[{name: pack, args: {m: 2}}]",
                                        "model.discriminator.args={hidden: 16, layers: 2, in_dim: 4}"))
    assert len(game.play(2)["d_loss"]) == 2
    with pytest.raises(ConfigError, match=r"regularizers\[0\] \(pack\): D does not accept packed inputs.*in_dim=4"):
        Game.from_config(tiny_config("regularizers=[{name: pack, args: {m: 2}}]"))


def test_bad_trick_args_are_config_errors():
    with pytest.raises(ConfigError, match=r"regularizers\[0\].args: decay must be in \(0, 1\)"):
        Game.from_config(tiny_config("regularizers=[{name: ema, args: {decay: 2}}]"))
    with pytest.raises(ConfigError, match=r"regularizers\[0\].args: unknown key 'decai'"):
        Game.from_config(tiny_config("regularizers=[{name: ema, args: {decai: 2}}]"))


def test_resume_with_stateful_tricks_is_bitwise_identical(tmp_path):
    tricks = ("regularizers=[{name: replay-buffer, args: {size: 64}}, {name: ema}, "
              "{name: historical-averaging}, {name: noisy-labels}, {name: instance-noise}, "
              "{name: r1, args: {interval: 2}}, {name: spectral-norm}]")
    cfg = tiny_config("train.iterations=20", tricks)
    full = train(cfg, tmp_path / "full")
    part = start(cfg, tmp_path / "part")
    part.play(10)
    resumed = resume(tmp_path / "part")
    for a, b in [(full.G, resumed.G), (full.D, resumed.D),
                 (full.tricks.all[1].model, resumed.tricks.all[1].model)]:
        for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), k
    assert full.history == resumed.history


def test_ema_recalibrates_batch_norm_statistics_for_the_averaged_weights():
    game = Game.from_config(tiny_config("regularizers=[{name: ema, args: {decay: 0.5, "
                                        "recalibrate: 20}}]"))
    game.play(5)
    ema = game.tricks.all[0]
    model = game.sampling_generator  # recalibrates
    bn = model[1]
    assert isinstance(bn, nn.BatchNorm1d)
    with torch.no_grad():
        pre = model[0](torch.randn(20000, 2))  # activations feeding the first BN
    assert torch.allclose(bn.running_mean, pre.mean(0), atol=0.05 * pre.std(0).mean().item())
    assert not torch.allclose(bn.running_mean, game.G[1].running_mean)  # not G's statistics
    rng_before = game.inputs.noise_gen.get_state()
    game.sample(10)
    assert torch.equal(rng_before, game.inputs.noise_gen.get_state())  # training RNG untouched


def test_historical_averaging_gradient_equals_autograd_of_the_penalty():
    game = Game.from_config(tiny_config("regularizers=[{name: historical-averaging, args: "
                                        "{weight: 0.5}}]"))
    game.play(2)
    ha = game.tricks.all[0]
    params = ha.params["d"]
    for p in params:
        p.grad = torch.zeros_like(p)
    pen = ha.before_update("d")
    leaves = [p.detach().clone().requires_grad_(True) for p in params]
    ref = 0.5 * sum((q - m).pow(2).sum() for q, m in zip(leaves, ha.means["d"]))
    grads = torch.autograd.grad(ref, leaves)
    assert pen.item() == pytest.approx(ref.item(), rel=1e-5)
    for p, g in zip(params, grads):
        assert torch.allclose(p.grad, g, atol=1e-7)


def test_freeze_schedules():
    game = Game.from_config(tiny_config("regularizers=[{name: schedule, args: {freeze_g_at: 3}}]"))
    game.play(3)
    g3 = [p.clone() for p in game.G.parameters()]
    d3 = [p.clone() for p in game.D.parameters()]
    h = game.play(3)
    assert all(torch.equal(a, b) for a, b in zip(g3, game.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d3, game.D.parameters()))
    assert len(h["d_loss"]) == 6 and len(h["g_loss"]) == 3  # G's loss stops with its training
    game = Game.from_config(tiny_config(
        "regularizers=[{name: schedule, args: {freeze_d_at_epoch: 0.25}}]"))  # 16 it/epoch
    game.play(4)
    d4 = [p.clone() for p in game.D.parameters()]
    game.play(2)
    assert all(torch.equal(a, b) for a, b in zip(d4, game.D.parameters()))


def test_replace_discriminator_with_another_class_and_resume(tmp_path):
    sched = ("regularizers=[{name: schedule, args: {replace_d_at: 5, replace_d_lr: 0.003, "
             "replace_d: {name: toy-mlp-d, args: {hidden: 8, layers: 1}}}}]")
    cfg = tiny_config("train.iterations=10", sched)
    full = train(cfg, tmp_path / "full")
    opt_d = full.players.opt_d
    assert full.D[0].out_features == 8 and opt_d.param_groups[0]["lr"] == 0.003
    assert opt_d.param_groups[0]["params"][0] is full.D[0].weight
    part = start(cfg, tmp_path / "part")
    part.play(7)  # stopped after the swap
    resumed = resume(tmp_path / "part")
    assert resumed.D[0].out_features == 8
    for a, b in zip(full.D.state_dict().values(), resumed.D.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(full.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)


def test_a_replaced_discriminator_trains_in_the_runs_precision():
    """The D swapped in by schedule.replace_d runs under the run's bfloat16 autocast as the
    first D did (it used to fall back to float32)."""
    sched = ("regularizers=[{name: schedule, args: {replace_d_at: 2, "
             "replace_d: {name: toy-mlp-d, args: {hidden: 8, layers: 1}}}}]")
    game = Game.from_config(tiny_config("train.iterations=6", "train.precision=bfloat16", sched))
    game.play(3)
    assert game.D[0].out_features == 8  # swapped
    seen = []
    hook = game.D[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    game.play(1)
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}


def test_virtual_batch_norm_layer_matches_the_paper_formula():
    from ganlab.models.norms import VirtualBatchNorm
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(3, eps=1e-5)
    with torch.no_grad():
        vbn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        vbn.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    ref, ex = torch.randn(8, 3, 4, 4) * 3 + 1, torch.randn(5, 3, 4, 4)
    vbn.n_ref = 8
    out = vbn(torch.cat([ref, ex]))
    # the reference rows: plain batch norm of the reference batch
    bn = nn.functional.batch_norm(ref, None, None, vbn.weight, vbn.bias, training=True, eps=1e-5)
    assert torch.allclose(out[:8], bn, atol=1e-5)
    # example i: statistics of the reference batch plus i itself, per channel
    for i in range(5):
        both = torch.cat([ref, ex[i:i + 1]])
        mean, var = both.mean((0, 2, 3)), both.var((0, 2, 3), unbiased=False)
        want = (ex[i] - mean[:, None, None]) / (var[:, None, None] + 1e-5).sqrt()
        want = want * vbn.weight[:, None, None] + vbn.bias[:, None, None]
        assert torch.allclose(out[8 + i], want, atol=1e-5)
    vbn.n_ref = None
    with pytest.raises(RuntimeError, match="no reference batch"):
        vbn(ex)


def test_virtual_batch_norm_trick_makes_g_batch_independent_and_keeps_its_reference(tmp_path):
    from ganlab.models.norms import VirtualBatchNorm
    cfg = tiny_config("regularizers=[{name: ema, args: {decay: 0.9}}, "
                      "{name: virtual-batch-norm, args: {size: 16}}]")
    game = Game.from_config(cfg)
    G = game.G
    assert not any(isinstance(m, nn.BatchNorm1d) for m in G.modules())
    assert sum(isinstance(m, VirtualBatchNorm) for m in G.modules()) == 2
    # set up first although listed second: EMA averages the virtual-batch-norm G
    assert sum(isinstance(m, VirtualBatchNorm) for m in game.tricks.all[0].model.modules()) == 2
    ref = G.vbn_reference_0.clone()
    assert ref.shape == (16, 2)
    game.play(3)
    assert torch.equal(G.vbn_reference_0, ref)  # chosen once, fixed
    vbn = [m for m in G.modules() if isinstance(m, VirtualBatchNorm)][0]
    assert vbn.weight.grad is not None and vbn.weight.grad.abs().sum() > 0
    # an example's output depends on the reference and itself, not on its batch-mates
    z = torch.randn(6, 2)
    for mode in (G.train, G.eval):
        mode()
        a, b = G(z), G(torch.cat([z[:3], torch.randn(9, 2)]))
        assert a.shape == (6, 2) and torch.allclose(a[:3], b[:3], atol=1e-6)
    bn_g = Game.from_config(tiny_config()).G.train()  # plain batch norm does depend on them
    assert not torch.allclose(bn_g(z)[:3], bn_g(torch.cat([z[:3], torch.randn(9, 2)]))[:3])
    # the reference travels in checkpoints: an exact resume
    cfg = tiny_config("train.iterations=10", "regularizers=[{name: virtual-batch-norm}]")
    full = train(cfg, tmp_path / "full")
    part = start(cfg, tmp_path / "part")
    part.play(5)
    resumed = resume(tmp_path / "part")
    assert torch.equal(full.G.vbn_reference_0, resumed.G.vbn_reference_0)
    for (k, x), (_, y) in zip(full.G.state_dict().items(), resumed.G.state_dict().items()):
        assert torch.equal(x, y), k


def test_virtual_batch_norm_in_d_and_with_labels(tiny_mnist):
    from test_conditional import cond_config
    game = Game.from_config(cond_config(
        tiny_mnist, "model.generator={name: cgan-conv-g, args: {width: 4, norm: batch}}",
        "regularizers=[{name: virtual-batch-norm, args: {size: 4}}]"))
    assert game.G.vbn_reference_1.dtype == torch.long  # uniformly drawn reference labels
    assert len(game.play(2)["g_loss"]) == 2
    cfg = tiny_config("model.discriminator.args={hidden: 16, layers: 2, norm: batch}",
                      "regularizers=[{name: virtual-batch-norm, args: {discriminator: true}}]")
    game = Game.from_config(cfg)
    ref, data = game.D.vbn_reference_0, game.data.examples
    match = (ref[:, None, :] == data[None]).all(-1)  # the reference: 64 distinct real examples
    assert ref.shape == (64, 2) and match.any(1).all()
    assert match.float().argmax(1).unique().numel() == 64
    x = game.data.examples[:5]
    assert torch.allclose(game.D(x)[:2], game.D(x[:2]), atol=1e-6)
    with pytest.raises(ConfigError, match="D has no batch-norm layer"):
        Game.from_config(tiny_config("regularizers=[{name: virtual-batch-norm, "
                                     "args: {discriminator: true}}]"))
    with pytest.raises(ConfigError, match="does not combine with pack"):
        Game.from_config(tiny_config(
            "model.discriminator.args={hidden: 16, layers: 2, norm: batch, in_dim: 4}",
            "regularizers=[{name: pack}, {name: virtual-batch-norm, "
            "args: {discriminator: true}}]"))


def _linear(weight, bias):
    m = nn.Linear(1, 1)
    with torch.no_grad():
        m.weight.fill_(weight)
        m.bias.fill_(bias)
    return m


class _Shift(nn.Module):
    """A conditional 1-d 'generator' G(z, y) = z + 10 y and its exact log-ratio critic
    D(x, y) = x - 10 y - 0.5 against data N(10 y + 1, 1)."""

    def __init__(self, critic=False):
        super().__init__()
        self.num_classes, self.critic = (0 if critic else 3), critic
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x, y):
        shift = 10 * y.float().unsqueeze(1)
        return x - shift - 0.5 + 0 * self.dummy if self.critic else x + shift + 0 * self.dummy


def test_discriminator_rejection_samples_the_data_from_an_exact_ratio_critic():
    # G(z) = z ~ N(0, 1); data N(1, 1); log p_data/p_G = x - 0.5 exactly, so rejection with
    # exp(D - max D) turns G's samples into the data's distribution (Azadi et al. 2019)
    data = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(0)) + 1
    drs = DiscriminatorRejection(calibrate=0)
    game = Game(_linear(1.0, 0.0), _linear(1.0, -0.5), data, latent_dim=1, tricks=[drs])
    plain, kept = game.sample(8000, reject=False), game.sample(8000)
    assert abs(plain.mean()) < 0.05 and abs(kept.mean() - 1) < 0.06
    assert abs(kept.std() - 1) < 0.06
    # E[exp(z - 0.5 - M)] = exp(-M), M + 0.5 the max of 10,000 normals (3.2 to 4.4)
    assert 0.02 < drs.acceptance < 0.07
    # a critic with no information is calibrated into the ratio by logistic regression
    drs = DiscriminatorRejection(calibrate=400, lr=0.05)
    game = Game(_linear(1.0, 0.0), _linear(0.0, 0.0), data, latent_dim=1, tricks=[drs],
                batch_size=256)
    assert abs(game.sample(8000).mean() - 1) < 0.1
    assert abs(drs.D.weight.item() - 1) < 0.15 and abs(drs.D.bias.item() + 0.5) < 0.15
    assert torch.equal(game.D.weight, torch.zeros(1, 1))  # the game's D is untouched


def test_discriminator_rejection_redraws_rows_with_their_own_label():
    y = torch.arange(3).repeat_interleave(4000)
    data = torch.randn(len(y), 1, generator=torch.Generator().manual_seed(1)) + 10 * y[:, None] + 1
    from ganlab.data import Dataset
    game = Game(_Shift(), _Shift(critic=True), Dataset(examples=data, labels=y),
                latent_dim=1, tricks=[DiscriminatorRejection(calibrate=0)])
    labels = torch.tensor([0, 1, 2]).repeat(3000)
    x = game.sample(len(labels), labels=labels)
    for c in range(3):
        assert abs(x[labels == c].mean() - (10 * c + 1)) < 0.1


def test_discriminator_rejection_leaves_training_alone_and_checks_its_use():
    base = tiny_config("train.eval_every=0")
    plain = Game.from_config(base)
    plain.play(3)
    drs = Game.from_config(tiny_config(
        "regularizers=[{name: discriminator-rejection, args: {calibrate: 5, burn_in: 64}}]"))
    drs.play(1)
    drs.sample(32)  # calibrates a copy of D mid-training
    drs.play(2)
    for a, b in zip(plain.G.parameters(), drs.G.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(RuntimeError, match=r"still rejected after 3 rounds"):
        Game.from_config(tiny_config(
            "regularizers=[{name: discriminator-rejection, args: {calibrate: 0, gamma: 1000}}]"
        )).sample(8, max_rounds=3)
    with pytest.raises(ConfigError, match=r"discriminator-rejection\): scores one sample"):
        Game.from_config(tiny_config(
            "regularizers=[{name: pack}, {name: discriminator-rejection}]",
            "model.discriminator.args={hidden: 16, layers: 2, in_dim: 4}"))
    with pytest.raises(ConfigError, match=r"gamma or gamma_quantile, not both"):
        Game.from_config(tiny_config("regularizers=[{name: discriminator-rejection, "
                                     "args: {gamma: 1, gamma_quantile: 0.9}}]"))


def test_discriminator_rejection_added_to_a_run_trained_without_it(tmp_path):
    run = tmp_path / "run"
    train(tiny_config("train.iterations=10"), run)
    game = open_run(run, filters=[("discriminator-rejection",
                                   {"calibrate": 5, "burn_in": 64, "gamma_quantile": 0.5})])
    drs = game.tricks.all[-1]
    plain, kept = game.sample(400, reject=False), game.sample(400)
    assert 0.2 < drs.acceptance < 0.8 and not torch.equal(plain, kept)
    assert read_run_config(run).regularizers == []  # the run itself is unchanged
    # training on with the filter writes checkpoints the run's own config still resumes
    game.play(5)
    assert resume(run, ["train.iterations=20"]).iteration == 20
    with pytest.raises(ConfigError, match=r"'r1' is a training trick.*valid filters: "
                                          r"discriminator-rejection"):
        game.add_filter("r1")
    with pytest.raises(ConfigError, match=r"'nope' is unknown; valid filters"):
        game.add_filter("nope")
    with pytest.raises(ConfigError, match=r"filter.args: unknown key 'calibrat'"):
        game.add_filter("discriminator-rejection", calibrat=5)


class _TwoModes(nn.Module):
    """G(z, y) = tanh(5 z) + 10 y: two modes (+-1 around 10 y) joined through z = 0, where the
    Jacobian 5 / cosh(5 z)^2 is largest."""

    def __init__(self):
        super().__init__()
        self.num_classes = 3
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z, y):
        return torch.tanh(5 * z) + 10 * y.float().unsqueeze(1) + 0 * self.dummy


def test_jacobian_truncation_drops_the_samples_between_modes_and_keeps_labels():
    from ganlab.data import Dataset
    y = torch.arange(3).repeat_interleave(100)
    data = Dataset(examples=10 * y[:, None].float(), labels=y)
    jt = JacobianTruncation(keep=0.9)
    game = Game(_TwoModes(), _Shift(critic=True), data, latent_dim=1, tricks=[jt])
    labels = torch.tensor([0, 1, 2]).repeat(1500)
    x, plain = game.sample(len(labels), labels=labels), game.sample(len(labels), labels=labels,
                                                                      reject=False)
    off = (x - 10 * labels[:, None]).abs()
    # the 10% of N(0, 1) nearest z = 0 is |z| < 0.126: tanh(5 * 0.11) = 0.50
    assert off.min() > 0.5 and (off > 1.01).sum() == 0
    assert ((plain - 10 * labels[:, None]).abs() < 0.5).float().mean() > 0.05
    assert abs(jt.acceptance - 0.9) < 0.01 and 5 * 0.11 < (jt.threshold ** 0.5) < 5


def test_jacobian_truncation_norms_are_the_jacobians_frobenius_norms():
    game = Game.from_config(tiny_config("latent.dim=3", "regularizers=[{name: jacobian-truncation}]"))
    game.play(2)  # batch-norm statistics away from their initial values
    jt = game.tricks.all[-1]
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    game.G.eval()
    want = torch.stack([torch.autograd.functional.jacobian(game.G, zi[None]).pow(2).sum()
                        for zi in z])
    game.G.train()
    assert torch.allclose(jt.norms(z), want, rtol=1e-4)
    assert game.G.training  # left as it was
    jt.probes = 4000  # Hutchinson's estimate converges to the same
    est = jt.norms(z, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(est, want, rtol=0.1)
    with pytest.raises(ConfigError, match=r"keep must be in \(0, 1\]"):
        Game.from_config(tiny_config("regularizers=[{name: jacobian-truncation, args: {keep: 0}}]"))


def test_ema_on_a_paired_batch_norm_generator_recalibrates_under_boards():
    """The original Tetris G has batch norm: EMA re-estimates its statistics with noise and
    boards drawn from the data (it used to call G with noise alone)."""
    from test_tetris_gan import small
    game = Game.from_config(small("regularizers=[{name: ema, args: {decay: 0.9}}]"))
    game.play(3)
    ema_bn = [m for m in game.sampling_generator.modules() if isinstance(m, nn.BatchNorm2d)]
    g_bn = [m for m in game.G.modules() if isinstance(m, nn.BatchNorm2d)]
    assert ema_bn and not torch.allclose(ema_bn[0].running_mean, g_bn[0].running_mean)
    boards = game.sample(5)  # a paired game's samples draw their boards from the data
    assert boards.shape == (5, 2, 22, 10)


def test_seeded_tricks_draw_unrelated_streams():
    tricks = ("regularizers=[noisy-labels, flip-labels, instance-noise, replay-buffer, "
              "noisy-labels]")
    game = Game.from_config(tiny_config(tricks))
    states = [t.gen.get_state() for t in game.tricks]
    assert [t.key for t in game.tricks][-1] == "noisy-labels#2"
    for i in range(len(states)):
        for j in range(i):
            assert not torch.equal(states[i], states[j]), (i, j)
    again = [t.gen.get_state() for t in Game.from_config(tiny_config(tricks)).tricks]
    assert all(torch.equal(a, b) for a, b in zip(states, again))  # reproducible
    other = [t.gen.get_state() for t in Game.from_config(tiny_config(tricks, "seed=1")).tricks]
    assert not any(torch.equal(a, b) for a, b in zip(states, other))


def test_consistency_regularization_compares_scores_under_augmentation():
    from ganlab.tricks.consistency import Consistency
    cr = seeded(Consistency(weight=2.0, shift=2))
    x = torch.randn(64, 1, 8, 8)
    aug = cr.augment(x)
    assert aug.shape == x.shape and not torch.equal(aug, x)
    # every augmented image is a flipped and/or shifted copy: its pixel sum is close and
    # its histogram the same up to the reflected border
    assert torch.allclose(aug.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=0.6)
    invariant = lambda im: im.flatten(1).sort(1).values[:, 20:44].mean(1)  # noqa: E731
    plain = seeded(Consistency(weight=2.0, shift=0))  # flips only: a sorted statistic is blind
    b = StepBatch(x, x, invariant(x), invariant(x), invariant, 0)
    assert plain.d_penalty(b).item() == pytest.approx(0.0, abs=1e-10)
    w = torch.linspace(-1, 1, 64)
    position = lambda im: im.flatten(1) @ w  # noqa: E731
    pen = cr.d_penalty(StepBatch(x, x, position(x), position(x), position, 0))
    assert pen.item() > 0.1
    pts = seeded(Consistency(weight=1.0, noise=0.5))
    moved = pts.augment(torch.zeros(20000, 2))
    assert moved.std().item() == pytest.approx(0.5, rel=0.03)  # vectors: Gaussian noise
    h = Game.from_config(tiny_config("regularizers=[{name: consistency, args: "
                                     "{noise: 0.05, fakes: true}}]")).play(3)
    assert len(h["d_consistency"]) == 3 and min(h["d_consistency"]) >= 0


def test_diffaugment_is_differentiable_random_per_image_and_on_every_input(tiny_mnist):
    from ganlab.tricks.diffaugment import DiffAugment
    x = torch.rand(16, 1, 16, 16) * 2 - 1
    cut = seeded(DiffAugment(policy="cutout", cutout=0.5))
    out = cut.d_input(x, "real")
    zero = (out == 0) & (x != 0)
    per_image = zero.flatten(1).sum(1)
    assert (per_image > 0).all() and (per_image <= 64).all()  # an 8x8 square at most
    assert len({tuple(z.nonzero()[0].tolist()) for z in zero}) > 4  # at random places
    move = seeded(DiffAugment(policy="translation", translation=0.25))
    ramp = torch.arange(1.0, 17.0).repeat(16, 1).expand(8, 1, 16, 16).contiguous()
    shifted = move.d_input(ramp, "fake")
    for img in shifted:  # each row is the ramp shifted by at most 4, zero-filled
        row = img[0, 8]
        inside = row[row != 0]
        steps = inside[1:] - inside[:-1]
        assert torch.equal(steps, torch.ones_like(steps)) and len(inside) >= 12
    col = seeded(DiffAugment(policy="color"))
    x.requires_grad_(True)
    col.d_input(x, "g").sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # G gets gradients through it
    with pytest.raises(ConfigError, match="policy: unknown rotate"):
        Game.from_config(tiny_config("regularizers=[{name: diffaugment, args: "
                                     "{policy: 'color,rotate'}}]"))
    with pytest.raises(ConfigError, match="augments images; these examples are 2-D points"):
        Game.from_config(tiny_config("regularizers=[diffaugment]"))
    from test_conditional import cond_config
    calls = []
    game = Game.from_config(cond_config(tiny_mnist, "regularizers=[diffaugment]"))
    aug = game.tricks.all[0]
    real_input = aug.d_input
    aug.d_input = lambda x, phase: (calls.append(phase), real_input(x, phase))[1]
    game.play(1)
    assert calls == ["real", "fake", "g"]  # every image D sees
