"""ganlab.state: what a checkpoint holds; tricks' states keyed by name; old checkpoints."""
import shutil
from pathlib import Path

import pytest
import torch

from ganlab import Game
from ganlab.checkpoint import safe_load
from ganlab.errors import CheckpointError
from ganlab.run import open_run, resume

from helpers import tiny_config

DATA = Path(__file__).parent / "data"
OLD_PT, OLD_YAML = DATA / "checkpoint-0.1-stateful.pt", DATA / "checkpoint-0.1-stateful.yaml"


def test_trick_states_are_keyed_by_name_whatever_the_order(tmp_path):
    tricks = ["{name: ema, args: {decay: 0.9}}", "{name: replay-buffer, args: {size: 64}}",
              "{name: r1}", "{name: r1, args: {weight: 2}}"]
    game = Game.from_config(tiny_config(f"regularizers=[{', '.join(tricks)}]"))
    game.play(4)
    game.save(tmp_path / "a.pt")
    state = safe_load(tmp_path / "a.pt")
    assert list(state["hooks"]) == ["ema", "replay-buffer", "r1", "r1#2"]
    reordered = Game.from_config(tiny_config(f"regularizers=[{', '.join(tricks[::-1])}]"))
    reordered.load(tmp_path / "a.pt")
    by_key = {t.key: t for t in reordered.tricks}
    for a, b in zip(game.tricks.all[0].model.state_dict().values(),
                    by_key["ema"].model.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(game.tricks.all[1].pool, by_key["replay-buffer"].pool)
    missing = Game.from_config(tiny_config("regularizers=[{name: ema}]"))
    with pytest.raises(CheckpointError, match=r"its tricks do not match.*it has r1, r1#2, "
                                              r"replay-buffer"):
        missing.load(tmp_path / "a.pt")


def test_a_checkpoint_written_before_the_redesign_resumes(tmp_path):
    """Its tricks' states are a list in config order (ema, historical averaging, replay
    buffer, r1): each comes back into its trick, and the run trains on to its end."""
    run = tmp_path / "old"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(OLD_PT, run / "checkpoints" / "latest.pt")
    shutil.copy(OLD_YAML, run / "config.yaml")
    saved = safe_load(OLD_PT)
    assert isinstance(saved["hooks"], list)
    game = open_run(run)
    ema, ha, replay, _ = game.tricks.all
    for (k, want), got in zip(saved["hooks"][0]["model"].items(),
                              ema.model.state_dict().values()):
        assert torch.equal(want, got), k
    assert ha.count == saved["hooks"][1]["count"]
    assert torch.equal(replay.pool, saved["hooks"][2]["pool"]) and replay.filled == 64
    assert torch.equal(replay.gen.get_state(), saved["hooks"][2]["rng"])
    assert game.iteration == saved["iteration"] == 30
    assert resume(run).iteration == 60


def test_a_checkpoint_holds_everything_exact_resume_needs(tmp_path):
    game = Game.from_config(tiny_config())
    game.play(3)
    state = game.state_dict()
    assert state["format"] == "ganlab-checkpoint-1" and state["iteration"] == 3
    assert {"torch", "numpy", "python", "noise", "sampler"} <= set(state["rng"])
    assert torch.equal(state["fixed_noise"], game.sampler.grid_noise)
    assert state["history"]["d_loss"].dtype == torch.float64
    other = Game.from_config(tiny_config("seed=5"))
    other.load_state_dict(state)
    assert other.iteration == 3 and other.history == game.history
    assert torch.equal(other.inputs.noise_gen.get_state(), game.inputs.noise_gen.get_state())
