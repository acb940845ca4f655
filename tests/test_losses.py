"""Each loss against an independent numpy computation on fixed logits."""
import numpy as np
import pytest
import torch

from ganlab import losses as L
from ganlab.losses import LOSSES
from ganlab.registry import ConfigError

REAL = np.array([2.5, -0.3, 0.0, 7.0, -4.0, 1.2], dtype=np.float64)
FAKE = np.array([-1.5, 0.4, -8.0, 3.3, 0.0, -0.2], dtype=np.float64)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def t(a):
    return torch.tensor(a, dtype=torch.float64)


def check(fn, expected, real=REAL, fake=FAKE):
    got = fn(t(real), t(fake)).item()
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_bce_discriminator():
    check(L.bce_discriminator_loss,
          -np.mean(np.log(sigmoid(REAL))) - np.mean(np.log(1 - sigmoid(FAKE))))


def test_minimax_generator():
    check(L.minimax_generator_loss, np.mean(np.log(1 - sigmoid(FAKE))))


def test_nonsaturating_generator():
    check(L.nonsaturating_generator_loss, -np.mean(np.log(sigmoid(FAKE))))


def test_half_weighted_goethe():
    check(L.half_bce_discriminator_loss,
          -0.5 * np.mean(np.log(sigmoid(REAL))) - 0.5 * np.mean(np.log(1 - sigmoid(FAKE))))
    check(L.half_nonsaturating_generator_loss, -0.5 * np.mean(np.log(sigmoid(FAKE))))


def test_lsgan_eq9():
    check(L.lsgan_discriminator_loss, 0.5 * np.mean((REAL - 1) ** 2) + 0.5 * np.mean(FAKE ** 2))
    check(L.lsgan_generator_loss, 0.5 * np.mean((FAKE - 1) ** 2))


def test_wasserstein():
    check(L.wasserstein_discriminator_loss, np.mean(FAKE) - np.mean(REAL))
    check(L.wasserstein_generator_loss, -np.mean(FAKE))


def test_hinge():
    check(L.hinge_discriminator_loss,
          np.mean(np.maximum(0, 1 - REAL)) + np.mean(np.maximum(0, 1 + FAKE)))
    check(L.hinge_generator_loss, -np.mean(FAKE))


def test_bce_is_stable_for_confident_logits():
    # naive log(sigmoid) underflows to -inf at these logits; the softplus form stays exact
    real = torch.tensor([200.0, -200.0], dtype=torch.float32)
    fake = torch.tensor([-200.0, 200.0], dtype=torch.float32)
    d = L.bce_discriminator_loss(real, fake)
    g = L.nonsaturating_generator_loss(None, fake)
    assert torch.isfinite(d) and torch.isfinite(g)
    assert d.item() == pytest.approx(200.0, rel=1e-6)  # mean(0, 200) + mean(0, 200)
    assert g.item() == pytest.approx(100.0, rel=1e-6)


def test_generator_losses_push_scores_up():
    fake = torch.zeros(4, requires_grad=True)
    for name in LOSSES.names():
        pair = LOSSES.get(name)
        (grad,) = torch.autograd.grad(pair.generator(None, fake), fake)
        assert (grad < 0).all(), name  # descending the loss raises D's score on fakes


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ConfigError) as exc:
        L.get_loss("wgan_gp")
    assert "wgan-gp" in str(exc.value) and "hinge" in str(exc.value)
