"""ganlab.alarms: each failure sign raised by a run made to fail that way."""
import pytest
import torch
from torch import nn

from ganlab import Game
from ganlab.checkpoint import safe_load
from ganlab.data import load_dataset
from ganlab.run import train
from ganlab.tracking import read_jsonl

from helpers import tiny_config

STRONG_D = ["model.discriminator.args={hidden: 128, layers: 3}", "optim.d.lr=1e-2",
            "optim.d.decay=none"]


def alarms_of(game):
    return next(c for c in game.trainer.callbacks if type(c).__name__ == "Alarms")


def fired(game) -> set:
    return {a["alarm"] for a in alarms_of(game).fired}


def test_d_wins_when_g_never_trains(tmp_path):
    """G frozen from the start: D separates real from fake perfectly and its loss goes to 0."""
    game = train(tiny_config("train.iterations=400", "train.eval_every=50",
                             "regularizers=[{name: schedule, args: {freeze_g_at: 0}}]",
                             "train.alarms={d_loss: 0.05, patience: 1}", *STRONG_D),
                 tmp_path / "r")
    assert {"d_accuracy", "d_loss"} <= fired(game)
    rows = [r for r in read_jsonl(tmp_path / "r" / "metrics.jsonl") if r["kind"] == "alarm"]
    acc = next(r for r in rows if r["alarm"] == "d_accuracy")
    assert acc["value"] >= 0.99 and "D wins" in acc["message"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tb = EventAccumulator(str(tmp_path / "r" / "tb"), size_guidance={"tensors": 0})
    tb.Reload()
    assert "alarms/d_accuracy/text_summary" in tb.Tags()["tensors"]


def test_g_gradients_vanish_under_the_saturating_loss():
    """The same winning D under the original minimax loss starves G of gradient (Goodfellow et
    al. 2014, sec. 3); under the non-saturating loss it does not."""
    common = ["train.iterations=800", "train.eval_every=100", "optim.g.lr=1e-6", *STRONG_D]
    saturating = Game.from_config(tiny_config("loss.name=minimax", *common))
    saturating.play(800)
    assert "g_grad" in fired(saturating)
    healthy = Game.from_config(tiny_config("loss.name=nonsaturating", *common))
    healthy.play(800)
    assert "g_grad" not in fired(healthy)


class Constant(nn.Module):
    """A generator collapsed to one point, whatever the noise."""

    def __init__(self):
        super().__init__()
        self.point = nn.Parameter(torch.tensor([0.5, -0.5]))

    def forward(self, z):
        return self.point.expand(len(z), 2) + 0 * z


def test_collapse_to_near_duplicates_and_stop_on_alarm(tmp_path):
    data = load_dataset("ring8", args={"n": 512})
    D = Game.from_config(tiny_config()).D
    game = Game(Constant(), D, data, latent_dim=2, batch_size=32, eval_every=10,
                best_metric="high_quality", stop_on_alarm=True, progress=False,
                run_dir=tmp_path / "r", checkpoint_every=1000)
    game.play(200)
    assert "diversity" in fired(game)
    alarm = next(a for a in alarms_of(game).fired if a["alarm"] == "diversity")
    assert alarm["value"] < 0.01  # every sample is the same point
    assert game.iteration == alarm["iteration"] < 200  # stopped at the alarm (patience 2)
    latest = safe_load(tmp_path / "r" / "checkpoints" / "latest.pt")
    assert latest["iteration"] == game.iteration
    assert (tmp_path / "r" / "checkpoints" / "best.pt").is_file()  # kept


def test_modes_drop_when_d_stops_learning():
    """D frozen half-way: G drifts to where the frozen D likes it and loses modes."""
    game = Game.from_config(tiny_config(
        "model.generator.args={hidden: 64, layers: 3, norm: batch}",
        "model.discriminator.args={hidden: 64, layers: 3}", "train.iterations=1200",
        "train.eval_every=50", "train.alarms={patience: 1}",
        "regularizers=[{name: schedule, args: {freeze_d_at: 600}}]"))
    game.play(1200)
    drops = [a for a in alarms_of(game).fired if a["alarm"] == "modes_drop"]
    assert drops and all(a["value"] < a["threshold"] + 1 for a in drops)


def test_class_histogram_far_from_uniform_on_mnist(tiny_mnist):
    from ganlab.config import load_config
    cfg = load_config("mnist-dcgan", [f"data.path={tiny_mnist}", "data.batch_size=8",
                                      "train.iterations=4", "train.eval_every=2",
                                      "train.eval_samples=200", "train.progress=false",
                                      "train.alarms={patience: 1}"])
    game = Game.from_config(cfg)
    game.play(4)  # an untrained G: its blobs are read as one or two digits
    kl = [a for a in alarms_of(game).fired if a["alarm"] == "class_kl"]
    assert kl and kl[0]["value"] > 0.1
    assert game.progress.eval_history[-1]["class_kl"] == pytest.approx(kl[-1]["value"])


class AlwaysT(nn.Module):
    """An emulator collapsed onto the T piece: every spawn it predicts is a T."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z, x):
        from ganlab.tetris.rules import PIECE_NAMES, SPAWN_MASKS
        out = x.clone()
        empty_top = out[:, 1, 0].sum(-1) == 0
        mask = torch.as_tensor(SPAWN_MASKS[PIECE_NAMES.index("T")], dtype=x.dtype)
        filled = torch.maximum(out[:, 1, :3], mask)
        out[empty_top, 1, :3] = filled[empty_top]
        out[:, 0] = 1 - out[:, 1]
        return out + 0 * self.dummy


def test_piece_distribution_far_from_uniform_for_tetris():
    from ganlab.config import load_config
    cfg = load_config("tetris", ["data.args={record: 400, eval_train: 0, eval_test: 300, "
                                 "eval_samples: 5}", "data.batch_size=8", "train.iterations=2",
                                 "train.eval_every=1", "train.progress=false",
                                 "train.alarms={patience: 1}"])
    src = Game.from_config(cfg)
    game = Game(AlwaysT(), src.D, src.data, config=cfg)
    game.play(1)
    tv = [a for a in alarms_of(game).fired if a["alarm"] == "piece_tv"]
    assert tv and tv[0]["value"] == pytest.approx(6 / 7)


def test_thresholds_are_configurable_and_signs_can_be_off():
    cfg = tiny_config("train.alarms={diversity: null, d_accuracy: 0.5}")
    assert cfg.train.alarms.diversity is None and cfg.train.alarms.d_accuracy == 0.5
    with pytest.raises(Exception, match="train.alarms.patience: must be at least 1"):
        tiny_config("train.alarms={patience: 0}")
    with pytest.raises(Exception, match="unknown key; valid keys of train.alarms"):
        tiny_config("train.alarms={divrsity: 1}")
