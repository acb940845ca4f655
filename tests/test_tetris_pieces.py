"""Other falling-block games under the classic ruleset (issue 16, part 3): piece files, board
sizes, recordings that name their piece set, and training from pairs alone."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ganlab import Game, load_config
from ganlab.errors import CheckpointError
from ganlab.run import train
from ganlab.tetris.cli import load_emulator
from ganlab.tetris.encoding import one_hot
from ganlab.tetris.metrics import emulator_metrics, legal_fall, piece_diversity, spawn_piece
from ganlab.tetris.pieces import (CLASSIC, PieceFileError, from_spec, load_pieces,
                                  pieces_beside)
from ganlab.tetris.recordings import RecordingError, load_recording, record, record_pairs
from ganlab.tetris.rules import PIECE_NAMES, SPAWN_MASKS, TetrisEngine
from ganlab.tetris.task import spawned_piece

TROMINOES = {"pieces": {"I3": {"array": [[1, 1, 1]]}, "L3": {"array": [[1, 0], [1, 1]]},
                        "D2": {"array": [[1, 1]], "column": 6}}}


def ganlab(*a):
    return subprocess.run([sys.executable, "-m", "ganlab", "tetris", *a], capture_output=True,
                          text=True, timeout=300)


def test_the_classic_set_is_the_spec_seven():
    assert CLASSIC.names == PIECE_NAMES and len(CLASSIC) == 7
    assert (CLASSIC.masks == SPAWN_MASKS).all() and CLASSIC.spawn_rows == 3
    again = from_spec(CLASSIC.to_json(), "round trip")  # the file form reads back the same
    assert again == CLASSIC


def test_a_piece_file_spawns_its_pieces_where_it_says(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("rows: 12\ncols: 8\npieces:\n  I3: {array: [[1, 1, 1]]}\n"
                    "  L3: {array: [[1, 0], [1, 1]], column: 0}\n")
    p = load_pieces(path)
    assert (p.rows, p.cols, p.names) == (12, 8, ("I3", "L3"))
    assert p.cells[0] == ((0, 2), (0, 3), (0, 4))  # int(8 / 2 - 3 / 2) = 2
    assert p.cells[1] == ((0, 0), (1, 0), (1, 1))
    assert load_pieces(path, rows=16, cols=10).cells[0] == ((0, 3), (0, 4), (0, 5))
    eng = TetrisEngine(rng=np.random.default_rng(0), pieces=p)
    frame = eng.tick("L3")
    assert frame.shape == (12, 8) and frame[:2, :2].tolist() == [[1, 0], [1, 1]]
    with pytest.raises(ValueError, match="unknown piece 'T'; valid: I3, L3"):
        TetrisEngine(pieces=p).tick("T")


@pytest.mark.parametrize("text, message", [
    ("pieces: {}", "expected a mapping with 'pieces'"),
    ("pieces: {A: {array: [[1, 1]]}}\nboard: 3", "unknown key(s) ['board']"),
    ("pieces: {A: {cells: [[1]]}}", "pieces.A: expected {array"),
    ("pieces: {A: {array: [[1, 1], [1]]}}", "pieces.A.array: expected a 2-d array"),
    ("pieces: {A: {array: [[0, 1], [0, 1]]}}", "pieces.A.array: its first row and first column"),
    ("pieces: {A: {array: [[1, 1]], column: 9}}", "pieces.A.column: 9 puts the piece"),
    ("rows: 3\npieces: {A: {array: [[1]]}}", "at least 4 x 4"),
    ("pieces: [", "not readable as YAML or JSON"),
])
def test_a_bad_piece_file_names_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PieceFileError) as err:
        load_pieces(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_other_games_score_their_true_boards_perfectly():
    p = from_spec(TROMINOES, "t", rows=20, cols=10)
    pairs = record_pairs(3000, np.random.default_rng(1), pieces=p)
    assert pairs.shape == (3000, 2, 20, 10)
    x, y = pairs[:, 0], pairs[:, 1]
    m = emulator_metrics(x, y, y, p)
    assert m["spawn_validity"] == 1.0 and m["fall_accuracy"] == 1.0
    assert m["board_accuracy_ceiling"] == pytest.approx(1 - m["spawn_share"] * 2 / 3)
    which = spawn_piece(x, y, p)
    assert set(np.unique(which[which >= 0])) == {0, 1, 2}  # all three spawn
    spawned = np.flatnonzero(which >= 0)[:30]
    d = piece_diversity(x[spawned], np.repeat(y[spawned][:, None], 4, 1), p)
    assert d["samples"] == d["valid_spawns"] == 30 * 4  # every draw counted, every one valid
    assert set(d["piece_counts"]) == {"I3", "L3", "D2"}
    falls = np.flatnonzero(which < 0)[:40]
    assert all(legal_fall(x[i], y[i], p) for i in falls)
    # the torch reader of the hand-written baseline agrees with the metric
    t = spawned_piece(one_hot(x[:500]), one_hot(y[:500]), p).numpy()
    assert (t == which[:500]).all()
    # a tetromino spawn is not a legal spawn of this game
    board = np.zeros((20, 10), np.int64)
    wrong = board.copy()
    wrong[:3] |= SPAWN_MASKS[3]  # the T: the I3's cells and one more
    assert spawn_piece(board, wrong, p)[0] == -1


def test_record_command_with_a_piece_file_and_board_size(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(TROMINOES))
    r = ganlab("record", str(tmp_path / "rec"), "--pieces", str(tmp_path / "p.json"),
               "--rows", "16", "--cols", "8", "--train", "300", "--test", "50", "--seed", "4")
    assert r.returncode == 0, r.stderr
    assert "pieces: I3, L3, D2 on 16 x 8" in r.stdout
    assert np.load(tmp_path / "rec" / "train" / "0.npy").shape == (2, 16, 8)
    assert pieces_beside(tmp_path / "rec") == from_spec(TROMINOES, "x", 16, 8)
    assert load_recording(tmp_path / "rec")["test"].shape == (50, 2, 16, 8)
    r = ganlab("record", str(tmp_path / "r2"), "--rows", "24", "--cols", "12", "--train", "40",
               "--test", "10")  # the seven on a bigger board, centred at their new column
    assert r.returncode == 0, r.stderr
    seven = pieces_beside(tmp_path / "r2")
    assert (seven.rows, seven.cols) == (24, 12) and seven.cells[0][0] == (0, 4)
    r = ganlab("record", str(tmp_path / "r3"), "--ruleset", "interactive", "--rows", "20",
               "--train", "5", "--test", "0")
    assert r.returncode == 2 and "only the classic ruleset" in r.stderr
    (tmp_path / "bad.yaml").write_text("pieces: {A: {array: [[1, 1]], column: 9}}")
    r = ganlab("record", str(tmp_path / "r4"), "--pieces", str(tmp_path / "bad.yaml"))
    assert r.returncode != 0 and "pieces.A.column" in r.stderr and "Traceback" not in r.stderr


def test_a_folder_of_pairs_of_another_size_trains_with_a_learnt_reader(tmp_path):
    p = from_spec(TROMINOES, "t", rows=16, cols=11)
    record(tmp_path / "rec", 200, 40, seed=2, pieces=p, compact=False)
    (tmp_path / "rec" / "pieces.json").unlink()  # what a user has: the .npy pairs and no more
    (tmp_path / "rec" / "recording.json").unlink()
    base = ["data.batch_size=8", "train.iterations=3", "train.progress=false",
            "train.sample_every=3", "train.log_every=1",
            "model.generator.args={width: 4, depth: 2}",
            f"data.path={tmp_path / 'rec'}"]
    cfg = load_config("tetris", base + ["train.iterations=6", "train.sample_every=6",
                                        "regularizers=[{name: reconstruction, args: {weight: "
                                        "100, codes: clustered, warmup: 3}}]"])
    game = train(cfg, tmp_path / "run")  # the learnt reader, with a warm-up the run outlasts
    rec = game.tricks.all[0]
    assert rec.encoder.fitted and rec.fit_info["pairs"] == 200
    assert game.G.pos.shape[-2:] == (16, 11)  # the board size came from the data
    task = game.data.task  # nothing told it the pieces: no metrics and no reader of them
    assert not hasattr(task, "pieces") and not hasattr(task, "encode")
    assert (tmp_path / "run" / "samples" / "iter_0000006.png").is_file()
    with torch.no_grad():
        out = game.sample(2)
    assert out.shape == (2, 2, 16, 11)
    # the hand-written reader needs a piece set; without one it says what to use instead
    with pytest.raises(Exception, match="codes: clustered and learned need nothing"):
        Game.from_config(load_config("tetris", base))


def test_the_learnt_preset_trains_on_a_bare_folder_of_pairs_with_its_own_recipe(tmp_path):
    p = from_spec(TROMINOES, "t", rows=16, cols=11)
    record(tmp_path / "rec", 300, 40, seed=3, pieces=p, compact=False)
    for name in ("pieces.json", "recording.json"):
        (tmp_path / "rec" / name).unlink()
    spec = load_config("tetris-learnt").regularizers[0]
    assert spec.args["codes"] == "clustered"  # no hand-written reader of the pieces
    args = dict(spec.args, warmup=2, settle_every=2, warmup_max=8)  # the preset's recipe, short
    cfg = load_config("tetris-learnt", [
        "data.batch_size=16", "train.iterations=12", "train.progress=false",
        "train.sample_every=12", "train.log_every=4", "train.checkpoint_every=12",
        "model.generator.args={width: 4, depth: 2}", f"data.path={tmp_path / 'rec'}",
        "regularizers=[{name: reconstruction, args: %s}]" % json.dumps(args)])
    game = train(cfg, tmp_path / "run")
    rec = game.tricks.all[0]
    assert rec.encoder.fitted and 2 <= rec.fit_info["warmup"] <= 8  # settled, then fitted
    assert len(rec.fit_info["coherence"]) == spec.args["clusters"] > cfg.latent.dim  # spare
    assert rec.fit_info["codes used"] <= cfg.latent.dim  # one code per outcome found
    assert game.G.pos.shape[-2:] == (16, 11) and game.iteration == 12
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").is_file()


def test_evaluate_and_rollout_read_the_recordings_piece_set(tmp_path):
    p = from_spec(TROMINOES, "t", rows=14, cols=12)
    record(tmp_path / "rec", 200, 40, seed=2, pieces=p)
    cfg = load_config("tetris", [
        "data.batch_size=8", "train.iterations=2", "train.progress=false",
        "train.sample_every=2", "train.log_every=1", "model.generator.args={width: 4, depth: 2}",
        f"data.path={tmp_path / 'rec'}", "data.args={eval_train: 200, eval_test: 20, "
        "eval_samples: 3}", "train.eval_every=2"])
    train(cfg, tmp_path / "run")
    evals = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")
             if '"eval"' in line]
    last = evals[-1]  # the ceiling counts the recording's three pieces, not the seven
    assert last["test/n"] == 20 and last["train/spawn_share"] > 0
    assert last["train/board_accuracy_ceiling"] == pytest.approx(
        1 - last["train/spawn_share"] * 2 / 3)
    r = ganlab("evaluate", str(tmp_path / "run"), "--data", str(tmp_path / "rec"),
               "--samples", "3", "--json", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 40
    r = ganlab("rollout", str(tmp_path / "run"), "--frames", "20")
    assert r.returncode == 0, r.stderr
    assert "spawns per piece: I3" in r.stdout
    np.save(tmp_path / "b.npy", np.zeros((2, 14, 12), np.int64))
    r = ganlab("predict", str(tmp_path / "run"), "--input", str(tmp_path / "b.npy"),
               "--out", str(tmp_path / "o.npy"))
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "o.npy").shape == (2, 1, 14, 12)
    np.save(tmp_path / "b.npy", np.zeros((2, 22, 10), np.int64))
    r = ganlab("predict", str(tmp_path / "run"), "--input", str(tmp_path / "b.npy"),
               "--out", str(tmp_path / "o.npy"))
    assert r.returncode == 2 and "expected boards of shape (N, 14, 12)" in r.stderr
    r = ganlab("evaluate", str(tmp_path / "run"), "--data", str(tmp_path / "rec"),
               "--pieces", str(tmp_path / "nope.yaml"))
    assert r.returncode != 0 and "no such piece file" in r.stderr


def test_the_discriminator_is_sized_from_the_board():
    from ganlab.models import MODELS
    for rows, cols in ((20, 10), (24, 12), (10, 10)):
        D = MODELS.build("tetris-d-more-conv-pad", {"rows": rows, "cols": cols})
        x = torch.zeros(3, 2, rows, cols)
        assert D(x, x).shape == (3,)
    with pytest.raises(ValueError, match="too small for this discriminator"):
        MODELS.build("tetris-d-more-conv-pad", {"rows": 16, "cols": 8})


def test_a_recording_mixing_board_sizes_names_the_file(tmp_path):
    record(tmp_path / "rec", 5, 0, compact=False)
    np.save(tmp_path / "rec" / "train" / "3.npy", np.zeros((2, 20, 10), np.int32))
    (tmp_path / "rec" / "recording.json").unlink()
    with pytest.raises(RecordingError, match=r"3\.npy: expected shape \(2, 22, 10\) like the"):
        load_recording(tmp_path / "rec", "train")


@pytest.mark.parametrize("name", ["trominoes.yaml", "pentominoes.yaml"])
def test_the_shipped_piece_files_record_games_whose_truth_is_valid(name):
    from pathlib import Path
    p = load_pieces(Path(__file__).resolve().parents[1] / "docs" / "pieces" / name)
    pairs = record_pairs(1500, np.random.default_rng(3), pieces=p)
    m = emulator_metrics(pairs[:, 0], pairs[:, 1], pairs[:, 1], p)
    assert m["spawn_validity"] == 1.0 and m["actual_spawns"] > 20
    which = spawn_piece(pairs[:, 0], pairs[:, 1], p)
    assert len(np.unique(which[which >= 0])) == len(p)  # every piece of the file spawns


def test_an_original_design_run_on_another_board_loads_back(tmp_path):
    p = from_spec(TROMINOES, "t", rows=16, cols=12)
    record(tmp_path / "rec", 120, 20, seed=3, pieces=p)
    cfg = load_config("tetris-original", [
        "data.batch_size=4", "train.iterations=2", "train.progress=false",
        "train.sample_every=2", "train.log_every=1", f"data.path={tmp_path / 'rec'}"])
    game = train(cfg, tmp_path / "run")
    state = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert state["example_shape"] == [2, 16, 12]  # no position embedding to read it off
    back = load_emulator(tmp_path / "run")
    x = game.data.conditions[:3]
    z = torch.rand(3, cfg.latent.dim)
    with torch.no_grad():
        game.G.eval(), back.G.eval()
        assert torch.allclose(back.G(z, x), game.G(z, x))
    # into a game of another board: a clear error, not torch's size mismatch
    classic = Game.from_config(load_config("tetris-original", [
        "data.args={record: 40}", "data.batch_size=4", "train.progress=false"]))
    with pytest.raises(CheckpointError, match=r"shape \(2, 16, 12\).*\(2, 22, 10\)"):
        classic.load(tmp_path / "run" / "checkpoints" / "latest.pt")
