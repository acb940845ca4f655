"""ganlab evaluate on real runs; the shipped MNIST classifier."""
import json
import subprocess
import sys

import pytest
import torch

from ganlab.config import load_config
from ganlab.evaluation import evaluate_run
from ganlab.metrics.classifier import WEIGHTS, load_classifier
from ganlab.run import train

from helpers import tiny_config


def test_shipped_classifier_is_small_and_accurate():
    state = torch.load(WEIGHTS, weights_only=True)
    assert WEIGHTS.stat().st_size < 4e6
    assert state["test_accuracy"] >= 0.99  # measured by scripts/train_mnist_classifier.py
    clf = load_classifier()
    feats, logits = clf.embed(torch.zeros(3, 1, 28, 28) - 1)
    assert feats.shape == (3, 128) and logits.shape == (3, 10)


def test_evaluate_a_mixture_run_from_the_command_line(tmp_path):
    train(tiny_config("train.iterations=10"), tmp_path / "r")
    r = subprocess.run([sys.executable, "-m", "ganlab", "evaluate", str(tmp_path / "r"),
                        "--json", str(tmp_path / "m.json")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["iteration"] == 10 and m["modes_total"] == 8 and 0 <= m["high_quality"] <= 1
    assert "| modes_captured |" in r.stdout


def test_evaluate_an_mnist_run_reports_the_real_vs_real_floor(tmp_path, tiny_mnist):
    cfg = load_config("mnist-mlp", [f"data.path={tiny_mnist}", "data.batch_size=8",
                                    "train.iterations=2", "train.progress=false",
                                    "train.num_samples=4"])
    train(cfg, tmp_path / "run")
    m = evaluate_run(tmp_path / "run", n=20)
    for key in ("is", "fid", "kid", "precision", "recall", "class_kl", "real_vs_real/fid",
                "fid_over_floor"):
        assert key in m, key
    assert m["fid"] > m["real_vs_real/fid"] >= 0  # an untrained G is far from the data
    assert sum(m["class_counts"]) == 20


def test_evaluate_a_stacked_mnist_run(tmp_path, tiny_mnist):
    cfg = load_config("stacked-mnist", [f"data.path={tiny_mnist}", "data.args={n: 40}",
                                        "data.batch_size=8", "train.iterations=2",
                                        "train.progress=false", "train.num_samples=4"])
    train(cfg, tmp_path / "run")
    m = evaluate_run(tmp_path / "run", n=30)
    assert 1 <= m["stacked_modes"] <= 30 and m["stacked_kl"] >= 0
