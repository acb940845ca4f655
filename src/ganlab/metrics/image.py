"""Image-quality metrics on a domain classifier's features (no Inception download needed).

IS, FID and KID use torchmetrics' implementations with the shipped MNIST classifier as the
feature extractor (128-d features; logits for IS). Precision and recall follow Kynkäänniemi
et al. 2019 (k-NN manifolds of real and generated features, k = 3). The class histogram of
generated digits is compared with the uniform distribution by KL divergence.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class Extractor(nn.Module):
    """A feature extractor for torchmetrics' IS/FID/KID: ``fn(net, images)``, with the
    ``num_features`` torchmetrics reads instead of probing the network. ``net`` is a submodule,
    so it moves with the metric."""

    def __init__(self, net: nn.Module, num_features: int, fn):
        super().__init__()
        self.net, self.num_features, self.fn = net, num_features, fn

    def forward(self, x):
        return self.fn(self.net, x)


def _features(clf) -> Extractor:
    return Extractor(clf.eval(), clf.feature_dim, lambda c, x: c.features(x.float()))


def _logits(clf) -> Extractor:
    return Extractor(clf.eval(), 10, lambda c, x: c.head(c.features(x.float())))


def _batches(x: torch.Tensor, n: int = 1000):
    return x.split(n)


@torch.no_grad()
def fid(clf, real: torch.Tensor, fake: torch.Tensor) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance
    m = FrechetInceptionDistance(feature=_features(clf), normalize=False)
    for b in _batches(real):
        m.update(b, real=True)
    for b in _batches(fake):
        m.update(b, real=False)
    return float(m.compute())


@torch.no_grad()
def kid(clf, real: torch.Tensor, fake: torch.Tensor, subsets: int = 50,
        subset_size: int = 1000) -> tuple[float, float]:
    from torchmetrics.image.kid import KernelInceptionDistance
    size = min(subset_size, len(real), len(fake))
    m = KernelInceptionDistance(feature=_features(clf), subsets=subsets,
                                subset_size=size, normalize=False)
    for b in _batches(real):
        m.update(b, real=True)
    for b in _batches(fake):
        m.update(b, real=False)
    mean, std = m.compute()
    return float(mean), float(std)


@torch.no_grad()
def inception_score(clf, fake: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    from torchmetrics.image.inception import InceptionScore
    m = InceptionScore(feature=_logits(clf), splits=splits, normalize=False)
    for b in _batches(fake):
        m.update(b)
    mean, std = m.compute()
    return float(mean), float(std)


def precision_recall(real_feats: torch.Tensor, fake_feats: torch.Tensor, k: int = 3
                     ) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: precision = share of fakes inside the real manifold (union of
    k-NN balls around real features), recall = share of reals inside the fake manifold."""
    def radii(f):
        d = torch.cdist(f, f)
        return d.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0

    def inside(points, ref, r):
        d = torch.cdist(points, ref)
        return (d <= r[None, :]).any(1).float().mean().item()

    real, fake = real_feats.double(), fake_feats.double()
    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def class_histogram_kl(logits: torch.Tensor) -> dict:
    """Predicted-class histogram of generated samples and its KL divergence to uniform."""
    k = logits.shape[1]
    counts = torch.bincount(logits.argmax(1), minlength=k).double()
    q = counts / counts.sum()
    nz = q > 0
    kl = float((q[nz] * (q[nz] * k).log()).sum())
    return {"class_counts": counts.long().tolist(), "class_kl": kl}


def image_metrics(clf, real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict:
    """Every metric that applies to generated MNIST-like images (both in [-1, 1])."""
    rf, _ = clf.embed(real)
    ff, fl = clf.embed(fake)
    is_mean, is_std = inception_score(clf, fake)
    kid_mean, kid_std = kid(clf, real, fake)
    prec, rec = precision_recall(rf, ff, k)
    out = {"is": is_mean, "is_std": is_std, "fid": fid(clf, real, fake), "kid": kid_mean,
           "kid_std": kid_std, "precision": prec, "recall": rec}
    out.update(class_histogram_kl(fl))
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()}


@torch.no_grad()
def stacked_modes(clf, fake: torch.Tensor) -> dict:
    """Stacked MNIST modes: each channel classified as a digit, a sample's mode is the triple
    (1,000 in all); modes captured and KL of the mode histogram to uniform."""
    if fake.dim() != 4 or fake.shape[1] != 3:
        raise ValueError(f"stacked_modes: expected (N, 3, 28, 28) images, got {tuple(fake.shape)}")
    digits = [clf.embed(fake[:, c:c + 1])[1].argmax(1) for c in range(3)]
    modes = digits[0] * 100 + digits[1] * 10 + digits[2]
    counts = torch.bincount(modes, minlength=1000).double()
    q = counts / counts.sum()
    nz = q > 0
    return {"stacked_modes": int(nz.sum()), "stacked_kl": float((q[nz] * (q[nz] * 1000).log()).sum())}
