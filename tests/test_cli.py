"""The ganlab command end to end, in subprocesses, as a user runs it."""
import subprocess
import sys

import numpy as np
import pytest

SMALL = ["--set", "model.generator.args={hidden: 16, layers: 2, norm: batch}",
         "--set", "model.discriminator.args={hidden: 16, layers: 2}",
         "--set", "data.args={n: 512}", "--set", "data.batch_size=32",
         "--set", "train.log_every=5", "--set", "train.sample_every=10",
         "--set", "train.checkpoint_every=10", "--set", "train.num_samples=100"]


def ganlab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ganlab", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_train_sample_resume(tmp_path):
    run = tmp_path / "run"
    r = ganlab("train", "ring8", "--out", str(run), "--set", "train.iterations=10", *SMALL)
    assert r.returncode == 0, r.stderr
    assert "trained 10 iterations" in r.stdout and str(run / "tb") in r.stdout
    assert "modes captured" in r.stdout
    assert "training" not in r.stderr  # no progress bar when stderr is not a terminal
    r = ganlab("sample", str(run), "--n", "37", "--out", str(tmp_path / "s.npz"))
    assert r.returncode == 0, r.stderr
    z = np.load(tmp_path / "s.npz")
    assert z["samples"].shape == (37, 2) and int(z["iteration"]) == 10
    r = ganlab("sample", str(run), "--n", "37", "--out", str(tmp_path / "f.npz"), "--filter",
               "discriminator-rejection", "--filter-arg", "calibrate=5", "--filter-arg",
               "gamma_quantile=0.5")
    assert r.returncode == 0, r.stderr
    f = np.load(tmp_path / "f.npz")["samples"]
    assert f.shape == (37, 2) and not np.array_equal(f, z["samples"])
    r = ganlab("sample", str(run), "--out", str(tmp_path / "g.npz"), "--filter", "r1")
    assert r.returncode == 2 and "'r1' is a training trick, not a sampling filter" in r.stderr
    r = ganlab("resume", str(run), "--set", "train.iterations=20")
    assert r.returncode == 0, r.stderr
    assert "trained 20 iterations" in r.stdout
    r = ganlab("train", "ring8", "--out", str(run), *SMALL)
    assert r.returncode == 2 and "already holds a run" in r.stderr


def test_sample_mnist_is_in_data_scale(tmp_path, tiny_mnist):
    run = tmp_path / "run"
    r = ganlab("train", "mnist-mlp", "--out", str(run), "--set", f"data.path={tiny_mnist}",
               "--set", "data.batch_size=8", "--set", "train.iterations=3",
               "--set", "train.num_samples=4")
    assert r.returncode == 0, r.stderr
    assert (run / "samples" / "iter_0000003.png").is_file()
    r = ganlab("sample", str(run), "--n", "5", "--out", str(tmp_path / "m.npz"))
    x = np.load(tmp_path / "m.npz")["samples"]
    assert x.shape == (5, 1, 28, 28) and x.min() >= 0 and x.max() <= 1


def test_presets_listed():
    r = ganlab("presets")
    assert r.returncode == 0
    for name in ("mnist-mlp", "mnist-lsgan", "mnist-dcgan", "mnist-dcgan-goethe", "ring8", "grid25"):
        assert name in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["train", "ring8", "--set", "loss.name=wgan_gp"], "unknown loss 'wgan_gp'; valid:"),
    (["train", "ring8", "--set", "train.iterations"], "expected KEY=VALUE"),
    (["train", "missing.yaml"], "missing.yaml: no such config file or preset"),
    (["train", "mnist-mlp", "--set", "data.path=/nonexistent/mnist"], "MNIST not found"),
    (["resume", "/nonexistent/run"], "not a ganlab run directory"),
])
def test_errors_are_one_clear_line_without_traceback(args, needle, tmp_path):
    r = ganlab(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_config_command_resolves_overrides():
    r = ganlab("config", "mnist-dcgan", "--set", "train.iterations=7")
    assert r.returncode == 0 and "iterations: 7" in r.stdout and "cs231n-dcgan-g" in r.stdout
