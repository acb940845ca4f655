"""ganlab.sampling: samples, their conditions, the grid, and walks through latent space."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab import Game
from ganlab.cli import main
from ganlab.run import train
from ganlab.sampling import slerp

from helpers import tiny_config


def test_slerp_follows_the_great_circle():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert mid.norm().item() == pytest.approx(3.0)  # a straight line would shrink it to 2.12
    assert torch.allclose(mid, torch.tensor([[3 / math.sqrt(2), 3 / math.sqrt(2)]]))
    same = slerp(a, a, 0.3)
    assert torch.allclose(same, a)  # parallel: no division by zero


def test_samples_come_with_their_conditions_and_leave_training_alone():
    game = Game.from_config(tiny_config())
    game.play(2)
    state = game.inputs.noise_gen.get_state()
    x, cond = game.sample(5, return_conditions=True)
    assert x.shape == (5, 2) and cond is None
    assert torch.equal(game.sample(5), x)  # the same checkpoint gives the same samples
    assert torch.equal(game.inputs.noise_gen.get_state(), state)


def test_a_latent_walk_as_a_gif(tiny_mnist, tmp_path, capsys):
    from test_conditional import cond_config
    train(cond_config(tiny_mnist), tmp_path / "run")
    code = main(["sample", str(tmp_path / "run"), "--interpolate", "3", "--steps", "4",
                 "--out", str(tmp_path / "walk.gif")])
    out = capsys.readouterr().out
    assert code == 0 and "12 frames of 10 images" in out
    im = Image.open(tmp_path / "walk.gif")
    assert im.n_frames == 12
    frames = []
    for i in range(12):
        im.seek(i)
        frames.append(np.asarray(im.convert("L"), dtype=np.float64))
    assert frames[0].shape[1] > 9 * frames[0].shape[0]  # ten classes side by side
    steps = [np.abs(frames[i + 1] - frames[i]).mean() for i in range(11)]
    assert max(steps) > 0  # it moves
    code = main(["sample", str(tmp_path / "run"), "--interpolate", "3", "--out",
                 str(tmp_path / "walk.png")])
    assert code == 2 and "must end in .gif" in capsys.readouterr().err
    train(tiny_config("train.iterations=2"), tmp_path / "points")
    code = main(["sample", str(tmp_path / "points"), "--interpolate", "3", "--out",
                 str(tmp_path / "p.gif")])
    assert code == 2 and "--interpolate draws images" in capsys.readouterr().err
