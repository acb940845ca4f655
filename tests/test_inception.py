"""Standard Inception metrics from a user-supplied TorchScript file.

The real network cannot be downloaded here, so the tests script a small network with the same
calling convention (uint8 (N, 3, H, W) in; ``return_features`` / ``no_output_bias``) and check
the arithmetic against a direct computation on its features."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from ganlab.config import load_config
from ganlab.evaluation import evaluate_run
from ganlab.metrics.inception import inception_metrics, load_inception, to_uint8_rgb
from ganlab.registry import ConfigError
from ganlab.run import train

from test_conditional import tiny_cifar


class ColourNet(nn.Module):
    """Features: mean intensity per channel in [0, 1]; classes: which channel is brightest,
    with an output bias that would send everything to class 2 if it were applied."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(3) * 60)
            self.fc.bias.copy_(torch.tensor([0.0, 0.0, 1000.0]))

    def forward(self, x: torch.Tensor, return_features: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.shape[1] != 3 or x.shape[2] != 299:
            raise RuntimeError("expected uint8 (N, 3, 299, 299)")
        feats = x.float().mean((2, 3)) / 255
        if return_features:
            return feats
        bias = torch.zeros(3) if no_output_bias else self.fc.bias
        return torch.softmax(feats @ self.fc.weight.t() + bias, 1)


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(ColourNet()).save(str(path))
    return path


def colour_images(n, seed, colours=(0, 1, 2), size=12):
    """[-1, 1] images: one bright channel (cycled through ``colours``) plus noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 3, size, size), -0.8) + 0.3 * torch.rand(n, 3, size, size, generator=g)
    for i in range(n):
        x[i, colours[i % len(colours)]] += 1.5 * float(torch.rand(1, generator=g)) + 0.2
    return x.clamp(-1, 1)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    m1, m2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(c1 @ c2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * root))


def test_images_become_uint8_rgb_at_299():
    grey = torch.tensor([-1.0, 0.0, 1.0]).view(3, 1, 1, 1).expand(3, 1, 8, 8)
    out = to_uint8_rgb(grey)
    assert out.dtype == torch.uint8 and out.shape == (3, 3, 299, 299)
    assert out[:, :, 100, 100].tolist() == [[0] * 3, [128] * 3, [255] * 3]
    with pytest.raises(ValueError, match=r"\(N, 1 or 3, H, W\)"):
        to_uint8_rgb(torch.zeros(2, 2, 8, 8))


def test_fid_kid_and_is_use_the_networks_features_and_unbiased_probabilities(net_file):
    net = load_inception(net_file)
    real, fake = colour_images(300, 0), colour_images(300, 1, colours=(0, 0, 1))
    m = inception_metrics(net, real, fake, kid_subsets=5, kid_subset_size=100)
    feats = [net(to_uint8_rgb(x), return_features=True).double().numpy() for x in (real, fake)]
    assert m["inception_fid"] == pytest.approx(frechet(*feats), rel=1e-3, abs=1e-6)
    assert m["inception_fid"] > 0.01 and m["inception_kid"] > 0
    same = inception_metrics(net, real, real, kid_subsets=5, kid_subset_size=100)
    assert abs(same["inception_fid"]) < 1e-6
    assert abs(same["inception_kid"]) < m["inception_kid"] / 5  # unbiased: noise around 0
    # three colours equally often, each classified confidently once the bias is left out:
    # IS near 3 (the biased output would give 1.0); two colours 2:1 give less
    assert 2.7 < same["inception_is"] <= 3.0 + 1e-6
    assert 1.5 < m["inception_is"] < same["inception_is"]


def test_bad_inception_files_are_named(tmp_path, net_file):
    with pytest.raises(ConfigError, match="missing.pt: no such file"):
        load_inception(tmp_path / "missing.pt")
    state = tmp_path / "state.pth"
    torch.save({"w": torch.zeros(2)}, state)
    with pytest.raises(ConfigError, match="state.pth: not a TorchScript module"):
        load_inception(state)
    plain = tmp_path / "plain.pt"
    torch.jit.script(nn.Linear(3, 3)).save(str(plain))
    with pytest.raises(ConfigError, match="return_features=True"):
        inception_metrics(load_inception(plain), colour_images(4, 0), colour_images(4, 1))


def test_evaluate_a_cifar_run_with_inception_weights(tmp_path, net_file):
    folder = tiny_cifar(tmp_path / "c", n=20)
    cfg = load_config("cifar10-wgangp", [f"data.path={folder}", "data.batch_size=8",
                                         "train.iterations=2", "train.progress=false",
                                         "train.n_critic=1", "train.num_samples=4"])
    train(cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match="pass --inception FILE"):
        evaluate_run(tmp_path / "run", n=30)
    r = subprocess.run([sys.executable, "-m", "ganlab", "evaluate", str(tmp_path / "run"),
                        "--n", "40", "--inception", str(net_file), "--json",
                        str(tmp_path / "m.json")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    import json
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["iteration"] == 2 and m["inception_fid"] > 0 and 1 <= m["inception_is"] <= 3


def test_inception_on_non_image_runs_is_an_error(tmp_path, net_file):
    from helpers import tiny_config
    train(tiny_config("train.iterations=2"), tmp_path / "r")
    with pytest.raises(ConfigError, match="Inception metrics need images"):
        evaluate_run(tmp_path / "r", inception=str(net_file))
