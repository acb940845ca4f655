"""The interactive emulator through the engine: its dataset, the learned encoder of the
reconstruction trick, its metrics and the ``ganlab tetris`` commands on an interactive run."""
import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab import Game, load_config
from ganlab.tetris.interactive import DROP
from ganlab.tetris.interactive_metrics import (actual_spawns, emulator_metrics,
                                               legal_next_boards, piece_diversity)
from ganlab.tetris.interactive_recordings import record_interactive, record_transitions
from ganlab.tetris.play_emulator import decode_events, encode, random_events, render
from ganlab.tetris.players import make_player, play_game

SRC = Path(__file__).resolve().parents[1] / "src" / "ganlab"


def small(*extra):
    return load_config("tetris-play", [
        "data.args={record: 600, eval_train: 50, eval_test: 100, eval_samples: 4}",
        "data.batch_size=16", "train.iterations=6", "train.progress=false",
        "train.sample_every=3", "train.log_every=3", "train.checkpoint_every=3",
        "model.generator.args.width=8", "model.generator.args.depth=2",
        "regularizers=[{name: reconstruction, args: {weight: 10, codes: learned, "
        "encoder_width: 8, encoder_depth: 1}}]", *extra])


def test_conditions_hold_board_t_and_the_event():
    rng = np.random.default_rng(0)
    boards, events = record_transitions(50, rng, "random")
    c = encode(boards[:, 0], events)
    assert c.shape == (50, 13, 22, 10)
    assert torch.equal(c[:, :8].argmax(1), torch.as_tensor(boards[:, 0]).long())
    assert torch.equal(decode_events(c), torch.as_tensor(events).long())
    assert torch.all(c[:, 8:].sum(1) == 1)  # one event plane on, everywhere


def test_the_dataset_reads_a_recording(tmp_path):
    record_interactive(tmp_path / "rec", 120, 40, seed=1)
    cfg = small(f"data.path={tmp_path / 'rec'}", "data.args={eval_train: 20, eval_test: 30}")
    game = Game.from_config(cfg)
    assert game.data.examples.shape == (120, 8, 22, 10)
    assert game.data.conditions.shape == (120, 13, 22, 10)
    sets = game.data.task.sets
    assert len(sets["train"][1]) == 20 and len(sets["test"][1]) == 30


def test_an_unknown_player_is_refused_with_the_valid_ones():
    from ganlab.errors import ConfigError
    with pytest.raises((ConfigError, ValueError), match="unknown player 'bot'.*human, random"):
        Game.from_config(small("data.args.player=bot"))


def test_learned_codes_train_the_encoder_and_resume_exactly(tmp_path):
    game = Game.from_config(small(), run_dir=tmp_path / "a")
    rec = next(t for t in game.tricks if t.name == "reconstruction")
    before = [p.detach().clone() for p in rec.encoder.parameters()]
    game.play(6)
    assert any(not torch.equal(a, b) for a, b in zip(before, rec.encoder.parameters()))
    straight = {k: v.clone() for k, v in game.players.G.state_dict().items()}
    enc = {k: v.clone() for k, v in rec.encoder.state_dict().items()}

    from ganlab.run import resume, start
    part = start(small(), tmp_path / "part")
    part.play(3)  # stop half-way, as a killed run would (checkpoint_every is 3)
    resumed = resume(tmp_path / "part")
    assert resumed.iteration == 6
    rec2 = next(t for t in resumed.tricks if t.name == "reconstruction")
    for k, v in resumed.players.G.state_dict().items():
        assert torch.equal(v, straight[k]), k
    for k, v in rec2.encoder.state_dict().items():
        assert torch.equal(v, enc[k]), k


def test_no_rule_is_written_into_the_networks_or_the_losses():
    # the emulator's networks, the encoder and the reconstruction term import nothing of the
    # rules, the players or the metrics (those judge an emulator; they never train one)
    rules = {"rules", "interactive", "interactive_metrics", "metrics", "players", "rollout"}
    for rel in ("tetris/models.py", "models/encoders.py", "tricks/reconstruction.py"):
        tree = ast.parse((SRC / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not rules & set(node.module.split(".")), (rel, node.module)


def test_interactive_metrics_on_hand_made_predictions():
    rng = np.random.default_rng(4)
    boards, events = play_game(make_player("human", rng), rng, max_events=400)
    x, y, e = boards[:-1], boards[1:], events.astype(np.int64)
    perfect = emulator_metrics(x, e, y, y)
    assert perfect["board_accuracy"] == 1.0 and perfect["spawn_recall"] == 1.0
    assert perfect["spawn_precision"] == 1.0 and perfect["spawn_validity"] == 1.0
    assert all(perfect[f"board_accuracy_{k}"] == 1.0
               for k in ("drop", "left", "right", "rotate", "instant"))
    copy = emulator_metrics(x, e, y, x)  # predicting no change: wrong wherever the board moves
    assert copy["spawn_recall"] == 0.0 and copy["spawn_precision"] is None
    moved = (x != y).reshape(len(x), -1).any(1) & ~actual_spawns(x, e, y)
    assert copy["board_accuracy"] == pytest.approx(1 - moved[~actual_spawns(x, e, y)].mean())
    # a spawn of the wrong shape is a predicted spawn that is not valid
    spawn = np.flatnonzero(actual_spawns(x, e, y))[0]
    bad = y.copy()
    bad[spawn, 0, 0] = 5
    m = emulator_metrics(x[spawn:spawn + 1], e[spawn:spawn + 1], y[spawn:spawn + 1],
                         bad[spawn:spawn + 1])
    assert m["spawn_recall"] == 1.0 and m["spawn_validity"] == 0.0


def test_piece_diversity_counts_legal_spawns():
    x = np.zeros((2, 22, 10), np.int8)
    spawns = legal_next_boards(x[0], DROP)["spawn"]  # one per colour, in order
    samples = np.stack([np.stack([spawns[0], spawns[0], spawns[6], x[0]]),
                        np.stack([spawns[3]] * 4)])
    d = piece_diversity(x, samples)
    assert d["piece_counts"] == {"T": 2, "S": 0, "Z": 0, "J": 4, "L": 0, "I": 0, "O": 1}
    assert d["valid_samples"] == 7 and d["samples"] == 8
    uniform = piece_diversity(x[:1], np.stack(spawns)[None])
    assert uniform["piece_tv"] == pytest.approx(0.0)


def test_random_events_drop_at_least_every_third():
    ev = random_events(np.random.default_rng(0), 3000)
    gaps = np.diff(np.flatnonzero(ev == DROP))
    assert gaps.max() <= 3 and set(np.unique(ev)) == {0, 1, 2, 3, 4}


def test_render_shows_the_pieces_colours():
    x = np.zeros((1, 22, 10), np.int8)
    y = legal_next_boards(x[0], DROP)["spawn"][5][None]  # the I (colour 6)
    c = encode(x, np.array([DROP]))
    from ganlab.tetris.encoding import one_hot
    img = render(c, one_hot(y, 8), one_hot(y, 8))
    assert img.ndim == 3 and img.shape[2] == 3
    assert ((img == [0, 220, 240]).all(-1)).sum() > 0  # the I's cyan is on the picture


def test_predict_evaluate_and_rollout_commands_on_an_interactive_run(tmp_path):
    run = tmp_path / "run"
    ok = subprocess.run([sys.executable, "-m", "ganlab", "train", "tetris-play", "--out", str(run),
                         "--set", "data.args={record: 300, eval_train: 0, eval_test: 0}",
                         "--set", "train.iterations=2", "--set", "train.progress=false",
                         "--set", "model.generator.args.width=8",
                         "--set", "model.generator.args.depth=1"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    rec = tmp_path / "rec"
    record_interactive(rec, 20, 30, seed=2)
    boards, events = record_transitions(5, np.random.default_rng(3), "human")
    np.save(tmp_path / "b.npy", boards[:, 0].astype(np.int32))
    np.save(tmp_path / "e.npy", events.astype(np.int64))

    def tetris(*args):
        return subprocess.run([sys.executable, "-m", "ganlab", "tetris", *args],
                              capture_output=True, text=True, timeout=300)

    r = tetris("predict", str(run), "--input", str(tmp_path / "b.npy"), "--events",
               str(tmp_path / "e.npy"), "--samples", "3", "--out", str(tmp_path / "p.npy"))
    assert r.returncode == 0, r.stderr
    pred = np.load(tmp_path / "p.npy")
    assert pred.shape == (5, 3, 22, 10) and pred.dtype == np.int8
    assert pred.min() >= 0 and pred.max() <= 7
    r = tetris("predict", str(run), "--input", str(tmp_path / "b.npy"), "--out",
               str(tmp_path / "q.npy"))
    assert r.returncode == 2 and "--events" in r.stderr and "interactive" in r.stderr
    np.save(tmp_path / "e4.npy", events[:4].astype(np.int64))
    r = tetris("predict", str(run), "--input", str(tmp_path / "b.npy"), "--events",
               str(tmp_path / "e4.npy"), "--out", str(tmp_path / "q.npy"))
    assert r.returncode == 2 and "expected events of shape (5,)" in r.stderr
    np.save(tmp_path / "e9.npy", np.full(5, 9))
    r = tetris("predict", str(run), "--input", str(tmp_path / "b.npy"), "--events",
               str(tmp_path / "e9.npy"), "--out", str(tmp_path / "q.npy"))
    assert r.returncode == 2 and "events must be integers 0-4" in r.stderr
    np.save(tmp_path / "b9.npy", np.full((5, 22, 10), 9, np.int32))
    r = tetris("predict", str(run), "--input", str(tmp_path / "b9.npy"), "--events",
               str(tmp_path / "e.npy"), "--out", str(tmp_path / "q.npy"))
    assert r.returncode == 2 and "board cells must be 0-7" in r.stderr
    r = tetris("evaluate", str(run), "--data", str(rec), "--samples", "2")
    assert r.returncode == 0, r.stderr
    assert "30 transitions" in r.stdout and "board_accuracy_rotate" in r.stdout
    r = tetris("rollout", str(run), "--frames", "40", "--gif", str(tmp_path / "g.gif"))
    assert r.returncode == 0, r.stderr
    assert "events of the random player legal" in r.stdout and (tmp_path / "g.gif").is_file()


def test_the_emulator_generator_over_eight_cell_kinds_with_axial_blocks():
    from ganlab.models import MODELS
    G = MODELS.build("tetris-emulator", {"latent_dim": 7, "width": 8, "depth": 2, "cells": 8,
                                         "extra": 5, "axial": True, "copy_init": 3.0})
    x = encode(np.zeros((3, 22, 10), np.int64), np.array([0, 1, 4]))
    p = G(torch.eye(7)[:3], x)
    assert p.shape == (3, 8, 22, 10) and torch.allclose(p.sum(1), torch.ones(3, 22, 10))
    assert G.stem.in_channels == 8 + 5 + 7 + 5  # board, event planes, code, gravity features
    # with the whole-board pooling silenced, an axial block still carries a change in one cell
    # along its whole column and row, beyond the convolutions' reach (5 cells), and nowhere else
    with torch.no_grad():
        for lin in G.globals.values():
            lin.weight.zero_()
            lin.bias.zero_()
    a, b = x[:1].clone(), x[:1].clone()
    b[0, 0, 21, 0], b[0, 3, 21, 0] = 0, 1  # one cell of the bottom-left corner filled
    with torch.no_grad():
        change = (G(torch.eye(7)[:1], a) - G(torch.eye(7)[:1], b)).abs().sum(1)[0]
    assert change[0, 0] > 0 and change[21, 9] > 0  # the top of its column, the end of its row
    assert change[0, 9] == 0 and change[10, 8] == 0  # off both: out of reach
    classic = MODELS.build("tetris-emulator", {"latent_dim": 7, "width": 8, "depth": 2})
    assert not hasattr(classic, "cols_mix")  # the classic preset's network is as it was


def test_the_original_interactive_design():
    from ganlab.models import MODELS
    G = MODELS.build("tetris-play-original-g", {"latent_dim": 4})
    x = encode(np.zeros((2, 22, 10), np.int64), np.array([2, 3]))
    p = G(torch.rand(2, 4) * 2 - 1, x)
    assert p.shape == (2, 8, 22, 10) and torch.allclose(p.sum(1), torch.ones(2, 22, 10))
    assert G.encoder[-2].out_features == 256 and G.dynamics[0].in_features == 256
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.render)
    D = MODELS.build("tetris-d-more-conv-pad", {"in_channels": 21})
    assert D(p, x).shape == (2,)
