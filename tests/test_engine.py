import math

import pytest
import torch

from ganlab import Game, NonFiniteLossError
from ganlab.checkpoint import CheckpointError, atomic_save, safe_load
from ganlab.losses import LossPair, bce_discriminator_loss, nonsaturating_generator_loss
from ganlab.hooks import Penalty, StepBatch
from ganlab.tricks import GradientPenalty, WeightClip
from ganlab.run import open_run, resume, train
from ganlab.tracking import read_jsonl

from helpers import tiny_config


def weights(game):
    return {**{f"G.{k}": v for k, v in game.G.state_dict().items()},
            **{f"D.{k}": v for k, v in game.D.state_dict().items()}}


def assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_play_returns_history_and_notebook_api():
    game = Game.from_config(tiny_config())
    h = game.play(12)
    assert len(h["d_loss"]) == 12 and len(h["g_loss"]) == 12
    h = game.play(3)  # continues
    assert len(h["d_loss"]) == 15 and game.iteration == 15
    assert all(math.isfinite(v) for v in h["d_loss"] + h["g_loss"])
    assert game.sample(7).shape == (7, 2)


def test_training_changes_both_networks_and_d_learns():
    cfg = tiny_config("train.iterations=0")
    game = Game.from_config(cfg)
    g0, d0 = [p.clone() for p in game.G.parameters()], [p.clone() for p in game.D.parameters()]
    game.play(30)
    assert any(not torch.equal(a, b) for a, b in zip(g0, game.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, game.D.parameters()))


def test_resume_is_bitwise_identical(tmp_path):
    full = train(tiny_config("train.iterations=20"), tmp_path / "full")
    from ganlab.run import start
    part = start(tiny_config("train.iterations=20"), tmp_path / "part")
    part.play(10)  # stop half-way, as a killed run would
    assert safe_load(tmp_path / "part" / "checkpoints" / "latest.pt")["iteration"] == 10
    resumed = resume(tmp_path / "part")
    assert resumed.iteration == 20
    assert_bitwise_equal(weights(full), weights(resumed))
    assert resumed.history["d_loss"] == full.history["d_loss"]
    assert_bitwise_equal({"o": resumed.players.opt_g.state_dict()["state"][0]["exp_avg"]},
                         {"o": full.players.opt_g.state_dict()["state"][0]["exp_avg"]})


def test_extending_a_finished_run(tmp_path):
    """`resume --set train.iterations=N` trains on from the end; the lr schedule follows the new N."""
    train(tiny_config("train.iterations=10", "optim.g.decay=none", "optim.d.decay=none"),
          tmp_path / "r")
    longer = resume(tmp_path / "r", ["train.iterations=20"])
    assert longer.iteration == 20 and len(longer.history["g_loss"]) == 20
    full = train(tiny_config("train.iterations=20", "optim.g.decay=none", "optim.d.decay=none"),
                 tmp_path / "f")
    assert_bitwise_equal(weights(full), weights(longer))  # without a schedule: the same run


def test_resume_after_kill_is_bitwise_identical(tmp_path):
    """A real SIGKILL mid-run: resume from whatever checkpoint survived, compare to a clean run."""
    import signal
    import subprocess
    import sys
    import time

    n = 400
    args = ["model.generator.args={hidden: 64, layers: 3, norm: batch}",
            f"train.iterations={n}", "train.checkpoint_every=20", "train.log_every=10"]
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ganlab", "train", "ring8", "--out", str(run)]
    for a in ["model.discriminator.args={hidden: 16, layers: 2}", "data.args={n: 512}",
              "data.batch_size=32", "train.sample_every=1000", "train.progress=false",
              "train.threads=1"] + args:
        cmd += ["--set", a]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = run / "checkpoints" / "latest.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and safe_load(latest)["iteration"] >= 60:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    k = safe_load(latest)["iteration"]  # the surviving checkpoint loads cleanly
    assert 0 < k < n, f"the run was not interrupted mid-way (checkpoint at {k})"
    resumed = resume(run)
    assert resumed.iteration == n
    clean = train(tiny_config(*args, "train.threads=1"), tmp_path / "clean")
    assert_bitwise_equal(weights(clean), weights(resumed))


def test_run_directory_is_self_describing(tmp_path):
    game = train(tiny_config(), tmp_path / "run")
    rd = tmp_path / "run"
    assert (rd / "config.yaml").is_file() and (rd / "loss.png").is_file()
    assert sorted(p.name for p in (rd / "samples").glob("*.png")) == [
        "iter_0000010.png", "iter_0000020.png"]
    rows = [r for r in read_jsonl(rd / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["iteration"] for r in rows] == [5, 10, 15, 20]
    # logged values are interval means of the per-iteration history
    assert rows[1]["d_loss"] == pytest.approx(sum(game.history["d_loss"][5:10]) / 5)
    state = safe_load(rd / "checkpoints" / "latest.pt")
    assert state["iteration"] == 20
    assert {"G", "D", "opt_g", "opt_d", "rng", "history", "config", "fixed_noise"} <= set(state)
    assert {"torch", "numpy", "python", "noise", "sampler"} <= set(state["rng"])


def test_tensorboard_events_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    cfg = tiny_config("data.name=mnist", "model.generator.name=cs231n-mlp-g",
                      "model.generator.args={}", "model.discriminator.name=cs231n-mlp-d",
                      "model.discriminator.args={}", "latent.dim=8", "data.args={}",
                      "train.num_samples=16", "train.iterations=10")
    import numpy as np
    from conftest import write_idx
    d = tmp_path / "mnist"
    d.mkdir()
    rng = np.random.default_rng(0)
    write_idx(d / "train-images-idx3-ubyte", rng.integers(0, 255, (64, 28, 28)))
    write_idx(d / "train-labels-idx1-ubyte", rng.integers(0, 9, (64,)))
    from ganlab.config import load_config
    cfg = load_config(cfg.to_dict(), [f"data.path={d}"])
    return_game = train(cfg, tmp_path / "run")
    acc = EventAccumulator(str(tmp_path / "run" / "tb"), size_guidance={"images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/d_loss", "train/g_loss"} <= set(tags["scalars"])
    events = acc.Scalars("train/g_loss")
    assert [e.step for e in events] == [5, 10]
    assert events[-1].value == pytest.approx(sum(return_game.history["g_loss"][5:10]) / 5, rel=1e-5)
    imgs = acc.Images("samples")
    assert [i.step for i in imgs] == [10] and imgs[0].width > 28 * 4


def test_requires_grad_and_detached_fakes_and_n_critic():
    seen = []

    class Spy(Penalty):
        name = "spy"

        def d_penalty(self, b: StepBatch):
            seen.append(("d", b.iteration, b.fake.requires_grad, b.fake.grad_fn is None,
                         all(not p.requires_grad for p in game.G.parameters()),
                         all(p.requires_grad for p in game.D.parameters())))

        def g_penalty(self, b: StepBatch):
            seen.append(("g", b.iteration, b.fake.requires_grad, None,
                         all(p.requires_grad for p in game.G.parameters()),
                         all(not p.requires_grad for p in game.D.parameters())))

    cfg = tiny_config("train.n_critic=3")
    game = Game.from_config(cfg)
    game.tricks.add(Spy())
    game.play(2)
    assert [s[0] for s in seen] == ["d", "d", "d", "g"] * 2
    for kind, _, fake_grad, detached, flag_a, flag_b in seen:
        if kind == "d":
            assert fake_grad is False and detached and flag_a and flag_b
        else:
            assert fake_grad is True and flag_a and flag_b
    assert game.inputs.sampler.pos == 3 * 2 * 32 % (512 // 32 * 32)  # 3 real batches per iteration


def test_separate_learning_rates_and_betas():
    cfg = tiny_config("optim.g.lr=1e-3", "optim.d.lr=4e-4", "optim.d.betas=[0.0, 0.9]")
    game = Game.from_config(cfg)
    assert game.players.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert game.players.opt_d.param_groups[0]["lr"] == pytest.approx(4e-4)
    assert game.players.opt_g.param_groups[0]["betas"] == (0.5, 0.999)
    assert game.players.opt_d.param_groups[0]["betas"] == (0.0, 0.9)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def exploding(real, fake):
        calls["n"] += 1
        loss = bce_discriminator_loss(real, fake)
        return loss * float("nan") if calls["n"] >= 8 else loss

    cfg = tiny_config("train.iterations=20")
    from ganlab.run import start
    game = start(cfg, tmp_path / "run")
    game.loss = LossPair(exploding, nonsaturating_generator_loss, "test")
    with pytest.raises(NonFiniteLossError, match=r"iteration 8: d_loss is nan"):
        game.play(20)
    state = safe_load(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert state["iteration"] == 5
    assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())
    g = open_run(tmp_path / "run")
    assert g.iteration == 5


class Payload:
    """Any class: loading it needs arbitrary pickle code."""


def test_weights_only_refuses_pickled_code(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "ganlab-checkpoint-1", "x": Payload()}, evil)
    with pytest.raises(CheckpointError, match="refused: it needs arbitrary pickle code"):
        safe_load(evil)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        safe_load(junk)
    other = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a ganlab checkpoint"):
        safe_load(other)


def test_atomic_save_keeps_previous_file_when_writing_fails(tmp_path):
    path = tmp_path / "ck.pt"
    atomic_save({"format": "ganlab-checkpoint-1", "v": torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save({"format": "ganlab-checkpoint-1", "v": Unpicklable()}, path)
    assert torch.equal(safe_load(path)["v"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary left behind


def test_checkpoint_of_other_models_is_a_clear_error(tmp_path):
    a = Game.from_config(tiny_config())
    a.save(tmp_path / "a.pt")
    b = Game.from_config(tiny_config("model.generator.args={hidden: 8, layers: 2}"))
    with pytest.raises(CheckpointError, match="does not fit these models"):
        b.load(tmp_path / "a.pt")


def test_gradient_penalty_interpolates_per_example_and_is_exact_for_linear_critic():
    torch.manual_seed(0)
    real, fake = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    w = torch.randn(16)
    seen = {}

    def critic(x):
        seen["x"] = x
        return x.flatten(1) @ w

    gp = GradientPenalty(weight=10.0, target=1.0)
    pen = gp.d_penalty(StepBatch(real, fake, None, critic(fake), critic, 0))
    ratio = (seen["x"] - fake) / (real - fake)  # the interpolation factor, per element
    assert torch.allclose(ratio, ratio.flatten(1)[:, :1].reshape(6, 1, 1, 1).expand_as(ratio),
                          atol=1e-4)  # one factor per example ...
    assert ratio.flatten(1)[:, 0].unique().numel() == 6  # ... drawn independently
    assert pen.item() == pytest.approx(10 * (w.norm().item() - 1) ** 2, rel=1e-5)


def test_weight_clip_bounds_discriminator():
    game = Game.from_config(tiny_config("loss.name=wgan", "loss.args={weight-clip: {clip: 0.005}}"))
    assert any(isinstance(r, WeightClip) for r in game.tricks)
    game.play(3)
    assert all(p.abs().max() <= 0.005 for p in game.D.parameters())


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "nonsaturating-half", "lsgan", "wgan",
                                  "wgan-gp", "hinge"])
def test_every_loss_trains(loss):
    game = Game.from_config(tiny_config(f"loss.name={loss}"))
    h = game.play(5)
    assert len(h["g_loss"]) == 5 and all(math.isfinite(v) for v in h["d_loss"])
    if loss == "wgan-gp":
        assert len(h["d_gradient_penalty"]) == 5 and min(h["d_gradient_penalty"]) >= 0


def test_linear_lr_decay_is_stateless_and_applied():
    from ganlab.config import OptimizerConfig
    from ganlab.players import decayed_lr
    c = OptimizerConfig(lr=1.0, decay="linear", decay_start=0.5)
    assert [decayed_lr(c, i, 10) for i in (0, 5, 6, 8, 10)] == pytest.approx([1, 1, .8, .4, 0])
    assert decayed_lr(OptimizerConfig(lr=0.3), 9, 10) == 0.3
    game = Game.from_config(tiny_config("train.iterations=10", "optim.g.decay=linear",
                                        "optim.d.decay=none"))
    game.play(10)
    base = game.config.optim.g.lr
    assert game.players.opt_g.param_groups[0]["lr"] == pytest.approx(base * 1 / 10)  # set before iter 10
    assert game.players.opt_d.param_groups[0]["lr"] == pytest.approx(game.config.optim.d.lr)


def test_periodic_evaluation_and_best_checkpoint_on_the_mixtures(tmp_path):
    game = train(tiny_config("train.iterations=10", "train.eval_every=5",
                             "train.best_metric=high_quality"), tmp_path / "r")
    evals = [r for r in read_jsonl(tmp_path / "r" / "metrics.jsonl")
             if r["kind"] == "eval" and "modes_total" in r and r["iteration"] in (5, 10)]
    assert len(evals) >= 2 and all(r["modes_total"] == 8 for r in evals)
    assert [e["iteration"] for e in game.progress.eval_history] == [5, 10]
    best = max(e["high_quality"] for e in game.progress.eval_history)
    assert safe_load(tmp_path / "r" / "checkpoints" / "best.pt")["best_value"] == best
    with pytest.raises(Exception, match="best_metric needs train.eval_every"):
        tiny_config("train.eval_every=0", "train.best_metric=high_quality")


def test_histograms_and_zero_gradient_counts_in_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    game = train(tiny_config("train.iterations=4", "train.histogram_every=2"), tmp_path / "r")
    acc = EventAccumulator(str(tmp_path / "r" / "tb"), size_guidance={"histograms": 0})
    acc.Reload()
    hists = set(acc.Tags()["histograms"])
    assert {"scores/real", "scores/fake", "weights/G/0.weight", "grads/D/0.weight"} <= hists
    assert [e.step for e in acc.Histograms("scores/real")] == [2, 4]
    zeros = acc.Scalars("grads/zero_grads_G")
    assert [e.step for e in zeros] == [2, 4]
    # dead units made on purpose: with D's first layer zeroed, its outputs are 0, so the next
    # layer's weights get no gradient, and no gradient reaches G through the zero weights
    with torch.no_grad():
        for p in game.D[0].parameters():
            p.zero_()
    game.play(1)
    from ganlab.callbacks import WriteHistograms
    counts = WriteHistograms.zero_grad_counts(game)
    assert counts["zero_grads_D"] >= game.D[2].weight.numel()
    assert counts["zero_grads_G"] == sum(p.numel() for p in game.G.parameters())


def test_max_seconds_stops_training_at_a_log_boundary_and_resume_respects_it(tmp_path):
    cfg = tiny_config("train.iterations=1000000", "train.max_seconds=1.0", "train.log_every=5",
                      "train.checkpoint_every=1000000")
    game = train(cfg, tmp_path / "run")
    it = game.iteration
    assert 0 < it < 1_000_000 and it % 5 == 0
    assert game.elapsed() >= 1.0
    assert len(game.history["d_loss"]) == it
    again = resume(tmp_path / "run")  # the time is spent: the checkpoint at the stop is final
    assert again.iteration == it


def test_mode_metrics_are_logged_once_per_evaluation(tmp_path):
    """Writing the sample grid logs no metrics of its own; the evaluation logs them once."""
    train(tiny_config("train.iterations=20", "train.eval_every=10", "train.sample_every=10"),
          tmp_path / "r")
    rows = [r for r in read_jsonl(tmp_path / "r" / "metrics.jsonl") if r["kind"] == "eval"]
    assert [r["iteration"] for r in rows] == [10, 20]
    assert all("modes_captured" in r for r in rows)


def test_bfloat16_precision_runs_the_training_forwards_in_bfloat16_and_samples_in_float32():
    """train.precision: bfloat16 puts G's and D's training forwards under autocast (their
    linear layers compute in bfloat16), hands the losses float32, keeps float32 weights, and
    leaves sampling in float32; a bad value is an error that lists the valid ones."""
    game = Game.from_config(tiny_config("train.precision=bfloat16", "train.iterations=0"))
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
             for net in (game.G, game.D) for m in net.modules() if isinstance(m, torch.nn.Linear)]
    h = game.play(5)
    assert seen and set(seen) == {torch.bfloat16}
    assert all(math.isfinite(v) for v in h["d_loss"] + h["g_loss"])
    assert all(p.dtype == torch.float32 for p in list(game.G.parameters())
               + list(game.D.parameters()))
    seen.clear()
    assert game.sample(6).dtype == torch.float32 and set(seen) == {torch.float32}
    for hook in hooks:
        hook.remove()
    plain = Game.from_config(tiny_config("train.iterations=0"))
    plain.play(5)  # the same seed in float32 ends elsewhere: the setting is not ignored
    assert not all(torch.equal(a, b) for a, b in zip(plain.G.parameters(), game.G.parameters()))
    from ganlab.config import ConfigError
    with pytest.raises(ConfigError, match="train.precision: 'half'; valid: float32, bfloat16"):
        Game.from_config(tiny_config("train.precision=half"))
