"""Bad inputs, kills and faults: each ends in one named error (exit code 2) with nothing written
that was not asked for, and no finished checkpoint is ever lost."""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab import Game
from ganlab.checkpoint import safe_load
from ganlab.cli import main
from ganlab.errors import CheckpointError
from ganlab.run import resume, start, train
from ganlab.tracking import read_jsonl

from helpers import tiny_config

TINY = ["model.generator.args={hidden: 16, layers: 2, norm: batch}",
        "model.discriminator.args={hidden: 16, layers: 2}", "data.args={n: 512}",
        "data.batch_size=32", "train.progress=false", "train.sample_every=1000",
        "train.eval_every=0"]
TETRIS = ["data.args={record: 400, eval_train: 0, eval_test: 0}", "data.batch_size=8",
          "train.iterations=2", "train.progress=false", "train.sample_every=1000",
          "model.generator.args={width: 4, depth: 1, global_every: 1}"]


def sets(items):
    return sum([["--set", s] for s in items], [])


def cli(capsys, *argv):
    """``ganlab ARGV`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(code, err, *needles):
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ganlab: error:")]
    assert code == 2 and len(errors) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def listing(root: Path) -> set:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A trained tiny ring8 run and a tiny Tetris run, and a recording."""
    root = tmp_path_factory.mktemp("runs")
    train(tiny_config("train.iterations=10"), root / "ring")
    from ganlab.config import load_config
    train(load_config("tetris", TETRIS), root / "tetris")
    from ganlab.tetris.recordings import record
    record(root / "rec", 30, 20, seed=1)
    np.save(root / "boards.npy", np.zeros((2, 22, 10), np.int64))
    return root


@pytest.fixture
def readonly(tmp_path):
    """A folder on a read-only file system (a real tmpfs mounted read-only)."""
    target = tmp_path / "ro"
    target.mkdir()
    (target / "inside").mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", str(target)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}): no read-only folder")
    (target / "inside").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


def out_commands(runs, out):
    """Every command with an --out (or OUT, or --json), writing to ``out``."""
    return {
        "train": ["train", "ring8", "--out", out, *sets(TINY + ["train.iterations=2"])],
        "sweep": ["sweep", "ring8", "--seeds", "1", "--out", out,
                  *sets(TINY + ["train.iterations=2"])],
        "sample": ["sample", runs / "ring", "--n", "4", "--out", out],
        "tetris record": ["tetris", "record", out, "--train", "4", "--test", "2"],
        "compare": ["compare", runs / "ring", "--out", out],
        "evaluate --json": ["evaluate", runs / "ring", "--json", out],
        "tetris predict": ["tetris", "predict", runs / "tetris", "--input",
                           runs / "boards.npy", "--out", out],
    }


FOLDER_OUTPUTS = {"train", "sweep", "tetris record", "compare"}


@pytest.mark.parametrize("command", ["train", "sweep", "sample", "tetris record", "compare",
                                     "evaluate --json", "tetris predict"])
def test_bad_out_paths_are_named_errors(command, runs, tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    cases = [(a_file / "x", "is a file"), (tmp_path / "missing" / "deeper" / "x", None)]
    if command in FOLDER_OUTPUTS:
        cases.append((a_file, "is a file, not a folder"))
    else:
        cases.append((tmp_path, "is a folder; give a file name"))
        cases[1] = (cases[1][0], "does not exist")
    for out, needle in cases:
        before = listing(tmp_path)
        code, _, err = cli(capsys, *out_commands(runs, out)[command])
        if needle is None:  # a folder output whose parents are missing: made, that is fine
            assert code == 0, err
            continue
        one_error(code, err, str(out), needle)
        assert listing(tmp_path) == before, "something was written"


@pytest.mark.parametrize("command", ["train", "sample", "tetris record", "evaluate --json"])
def test_outputs_on_a_read_only_file_system(command, runs, readonly, capsys):
    out = readonly / "inside" / ("new" if command in FOLDER_OUTPUTS else "out.npz")
    code, _, err = cli(capsys, *out_commands(runs, out)[command])
    one_error(code, err, str(out), "read-only file system")


def test_resume_needs_a_writable_run_but_sample_does_not(runs, readonly, capsys, tmp_path):
    subprocess.run(["mount", "-o", "remount,rw", str(readonly)], check=True)
    shutil.copytree(runs / "ring", readonly / "run")
    subprocess.run(["mount", "-o", "remount,ro", str(readonly)], check=True)
    code, _, err = cli(capsys, "resume", readonly / "run", "--set", "train.iterations=20")
    one_error(code, err, "read-only file system")
    code, out, err = cli(capsys, "sample", readonly / "run", "--n", "3", "--out",
                         tmp_path / "s.npz")
    assert code == 0, err
    assert np.load(tmp_path / "s.npz")["samples"].shape == (3, 2)


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_broken_recordings_and_inputs_name_the_file(runs, tmp_path, capsys):
    rec = tmp_path / "rec"
    shutil.copytree(runs / "rec", rec)
    (rec / "recording.npz").unlink()  # read the pair files
    (rec / "recording.json").unlink()
    pair = rec / "train" / "3.npy"
    for damage, needle in ((lambda p: p.write_bytes(b""), "empty (0 bytes)"),
                           (lambda p: _truncate(p, 100), "corrupt or truncated")):
        shutil.copy(runs / "rec" / "train" / "3.npy", pair)
        damage(pair)
        code, _, err = cli(capsys, "train", "tetris", "--out", tmp_path / "r",
                           *sets(TETRIS), "--set", f"data.path={rec}")
        one_error(code, err, str(pair), needle)
        assert not (tmp_path / "r").exists()
    compact = tmp_path / "recording.npz"
    good = (runs / "rec" / "recording.npz").read_bytes()
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        info = z.getinfo("train.npy")
    start_ = info.header_offset + 30 + len(info.filename) + len(info.extra)
    bad_crc = bytearray(good)
    bad_crc[start_ + info.compress_size // 2] ^= 0xFF
    for content, needle in ((b"", "empty (0 bytes)"), (good[:len(good) // 2], "corrupt"),
                            (bytes(bad_crc), "corrupt")):
        compact.write_bytes(content)
        code, _, err = cli(capsys, "tetris", "evaluate", runs / "tetris", "--data", compact)
        one_error(code, err, str(compact), needle)
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    code, _, err = cli(capsys, "tetris", "predict", runs / "tetris", "--input", empty, "--out",
                       tmp_path / "p.npy")
    one_error(code, err, str(empty), "empty (0 bytes)")
    assert not (tmp_path / "p.npy").exists()


def test_incomplete_and_disagreeing_recordings(runs, tmp_path, capsys):
    rec = tmp_path / "rec"
    shutil.copytree(runs / "rec", rec)
    manifest = json.loads((rec / "recording.json").read_text())
    (rec / "recording.json").write_text(json.dumps({**manifest, "complete": False}))
    code, _, err = cli(capsys, "tetris", "evaluate", runs / "tetris", "--data", rec)
    one_error(code, err, "incomplete recording")
    (rec / "recording.json").write_text(json.dumps(manifest))
    (rec / "test" / "19.npy").unlink()  # a file lost since
    code, _, err = cli(capsys, "tetris", "evaluate", runs / "tetris", "--data", rec)
    one_error(code, err, "holds 19 pair files", "recording.json says the recording made 20")
    (rec / "recording.json").unlink()  # no manifest (as the original recordings): compact vs
    code, _, err = cli(capsys, "tetris", "evaluate", runs / "tetris", "--data", rec)
    one_error(code, err, "recording.npz holds 20 test pairs", "holds 19 files")


def test_a_kill_mid_recording_is_detected(tmp_path):
    out = tmp_path / "rec"
    p = subprocess.Popen([sys.executable, "-m", "ganlab", "tetris", "record", str(out),
                          "--train", "200000", "--test", "10"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "train" / "50.npy").exists():
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    from ganlab.tetris.recordings import RecordingError, load_recording
    with pytest.raises(RecordingError, match="incomplete recording"):
        load_recording(out, "train")


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    probe = Game.from_config(tiny_config(*TINY))
    probe.play(1)
    size = len(torch.save(probe.state_dict(), buf := io.BytesIO()) or buf.getvalue())
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(1.6 * size) // 1024 + 24}k",
                        "none", str(disk)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip()}): no full disk")
    try:
        code, _, err = cli(capsys, "train", "ring8", "--out", disk / "run",
                           *sets(TINY + ["train.iterations=10", "train.checkpoint_every=2",
                                         "train.log_every=2"]))
        one_error(code, err, "latest.pt: could not be written (the disk is full)",
                  "the previous one is intact")
        state = safe_load(disk / "run" / "checkpoints" / "latest.pt")
        assert state["iteration"] == 2
        assert not list((disk / "run" / "checkpoints").glob(".*tmp*"))
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_sample_on_a_tetris_run_writes_board_pairs(runs, tmp_path, capsys):
    code, out, err = cli(capsys, "sample", runs / "tetris", "--n", "5", "--out",
                         tmp_path / "pairs")
    assert code == 0, err
    assert f"to {tmp_path / 'pairs.npz'}" in out  # the file written, with numpy's suffix
    z = np.load(tmp_path / "pairs.npz")
    assert z["pairs"].shape == (5, 2, 22, 10) and set(np.unique(z["pairs"])) <= {0, 1}
    assert np.array_equal(z["pairs"][:, 1], z["samples"])


def test_two_processes_cannot_train_in_one_folder(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganlab", "train", "ring8", "--out", str(run),
           *sets(TINY + ["train.iterations=100000", "train.checkpoint_every=50"])]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "checkpoints" / "latest.pt").exists():
            time.sleep(0.1)
        config = (run / "config.yaml").read_text()
        second = subprocess.run([sys.executable, "-m", "ganlab", "resume", str(run), "--set",
                                 "train.iterations=7"], capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert f"in use by another ganlab process (pid {first.pid})" in second.stderr
        assert (run / "config.yaml").read_text() == config  # nothing written by the second
        third = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert third.returncode == 2 and ("already holds a run" in third.stderr
                                          or "in use by another" in third.stderr)
    finally:
        first.kill()
        first.wait()


def _corrupt_a_tensor(path: Path) -> None:
    """Change 8 bytes in the middle of the largest tensor stored in a checkpoint."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as fh:  # the local header's extra field may differ: read it
        fh.seek(info.header_offset + 26)
        n, m = int.from_bytes(fh.read(2), "little"), int.from_bytes(fh.read(2), "little")
        offset = info.header_offset + 30 + n + m + info.file_size // 2
        fh.seek(offset)
        fh.write(b"\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f")


def test_a_checkpoint_changed_on_disk_is_refused_and_resume_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_config("train.iterations=10"), run)
    latest = run / "checkpoints" / "latest.pt"
    _corrupt_a_tensor(latest)
    config = (run / "config.yaml").read_text()
    metrics = (run / "metrics.jsonl").read_text()
    code, _, err = cli(capsys, "resume", run, "--set", "train.iterations=40")
    one_error(code, err, str(latest), "do not match the checksum")
    assert (run / "config.yaml").read_text() == config  # the --set was not written
    assert (run / "metrics.jsonl").read_text() == metrics


def test_a_start_that_fails_leaves_no_run_folder(tmp_path, capsys):
    code, _, err = cli(capsys, "train", "mnist-dcgan", "--out", tmp_path / "r", "--set",
                       f"data.path={tmp_path / 'no-mnist'}")
    one_error(code, err, "MNIST not found")
    assert not (tmp_path / "r").exists()


def test_temporary_files_of_a_killed_write_are_cleaned(tmp_path):
    run = tmp_path / "run"
    game = start(tiny_config("train.iterations=10", "train.checkpoint_every=5"), run)
    game.play(5)
    game.run_lock.release()
    stale = run / "checkpoints" / ".latest.pt.tmp-99999"
    stale.write_bytes(b"x" * 1000)
    resume(run)
    assert not stale.exists()


def test_after_a_resume_each_iteration_is_logged_once(tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config("train.iterations=20", "train.checkpoint_every=10", "train.log_every=5",
                      "train.eval_every=5", "train.sample_every=100")
    game = start(cfg, run)
    game.play(10)
    latest = run / "checkpoints" / "latest.pt"
    at_10 = latest.read_bytes()
    game.play(5)  # a run that went on past its checkpoint at 10 and logged to 15 ...
    game.run_lock.release()
    latest.write_bytes(at_10)  # ... then was killed before its next checkpoint
    assert safe_load(latest)["iteration"] == 10
    resume(run)
    rows = read_jsonl(run / "metrics.jsonl")
    for kind in ("train", "eval"):
        its = [r["iteration"] for r in rows if r["kind"] == kind]
        assert its == [5, 10, 15, 20], (kind, its)


def test_sample_out_names(runs, tmp_path, capsys):
    code, out, err = cli(capsys, "sample", runs / "ring", "--n", "2", "--out",
                         tmp_path / "mysamples")
    assert code == 0 and f"to {tmp_path / 'mysamples.npz'}" in out
    assert (tmp_path / "mysamples.npz").is_file() and not (tmp_path / "mysamples").exists()


def test_checkpoint_refusals_say_why(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "ganlab-checkpoint-1", "x": Evil()}, evil)
    with pytest.raises(CheckpointError, match=r"refused: it needs arbitrary pickle code to load "
                                              r"\(posix.system\)"):
        safe_load(evil)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pt: not a readable checkpoint: the file "
                                              r"is empty \(0 bytes\)"):
        safe_load(empty)


def test_progress_in_a_terminal_and_in_a_log():
    from ganlab.callbacks import LogLosses

    class Log(io.StringIO):
        def isatty(self):
            return False

    class Tty(io.StringIO):
        def isatty(self):
            return True

    game = Game.from_config(tiny_config("train.log_every=100"))
    log = Log()
    game.trainer.callbacks[2] = LogLosses(100, None, stream=log)
    game.play(40)
    lines = log.getvalue().splitlines()
    assert len(lines) == 20 and lines[0].startswith("iteration 2 (5% of this run's 40): ")
    assert "it/s" in lines[0] and "left" in lines[0] and "d_loss" in lines[-1]
    tty = Tty()
    bar = LogLosses(100, None, stream=tty)
    game.trainer.callbacks[2] = bar
    seen = []

    def spy(trainer):
        LogLosses.on_iteration(bar, trainer)
        seen.append(bar.bar.n if bar.bar is not None else None)

    bar.on_iteration = spy
    game.play(7)
    assert seen == [1, 2, 3, 4, 5, 6, 7]  # the bar moves every iteration


def test_a_notebook_run_is_an_ordinary_run_folder(tmp_path, capsys):
    from ganlab.data import load_dataset
    from ganlab.registry import MODELS
    G = MODELS.build("toy-mlp-g", {"hidden": 16, "layers": 2}, latent_dim=2)
    D = MODELS.build("toy-mlp-d", {"hidden": 16, "layers": 2})
    data = load_dataset("ring8", args={"n": 512})
    run = tmp_path / "nb"
    game = Game(G, D, data, latent_dim=2, batch_size=32, run_dir=run, progress=False,
                checkpoint_every=5)
    game.play(10)
    assert (run / "config.yaml").is_file()
    code, out, err = cli(capsys, "sample", run, "--n", "3", "--out", tmp_path / "s.npz")
    assert code == 0, err
    code, out, err = cli(capsys, "evaluate", run)
    assert code == 0 and "modes_captured" in out, err
    code, out, err = cli(capsys, "resume", run, "--set", "train.iterations=15")
    assert code == 0 and "trained 15 iterations" in out, err
    custom = Game(torch.nn.Linear(2, 2), D, data, latent_dim=2, batch_size=32,
                  run_dir=tmp_path / "custom", progress=False)
    custom.play(2)
    code, _, err = cli(capsys, "sample", tmp_path / "custom", "--out", tmp_path / "c.npz")
    one_error(code, err, "model.generator came into a notebook's Game as Python objects")


def test_resume_of_a_finished_run_says_so(runs, tmp_path, capsys):
    shutil.copytree(runs / "ring", tmp_path / "done")
    code, out, err = cli(capsys, "resume", tmp_path / "done")
    assert code == 0 and "nothing to train" in out and not out.startswith("trained")


def test_the_tensorboard_hint_runs_from_anywhere(runs, capsys, tmp_path):
    code, out, _ = cli(capsys, "train", "ring8", "--out", tmp_path / "t",
                       *sets(TINY + ["train.iterations=2"]))
    hint = next(line for line in out.splitlines() if "tensorboard:" in line)
    command = hint.split("tensorboard:", 1)[1].split("--logdir")[0].split()
    assert shutil.which(command[0]) or Path(command[0]).is_file()
    r = subprocess.run(command + ["--help"], capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr


def test_a_rollout_gif_of_a_still_emulator_is_drawn_and_warned_about(tmp_path, capsys):
    from PIL import Image

    from ganlab.tetris.rollout import save_gif
    frames = [np.zeros((22, 10), np.int64)] * 5
    gif = save_gif(frames, tmp_path / "still.gif")
    err = capsys.readouterr().err
    assert "nothing moved in 5 frames" in err
    im = Image.open(gif)
    first = np.asarray(im.convert("RGB"))
    assert first.shape[0] > 22 * 12 and first.max() > 100  # outline, grid and caption drawn
    im.seek(4)
    last = np.asarray(im.convert("RGB"))
    assert not np.array_equal(first, last)  # the frame numbers differ


def test_a_gif_needs_a_gif_name(runs, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    code, _, err = cli(capsys, "tetris", "rollout", runs / "tetris", "--frames", "2", "--gif",
                       target)
    one_error(code, err, str(target), "must end in .gif")
    assert target.read_text() == "mine"
