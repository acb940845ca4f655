"""Image metrics on tiny feature sets, against independent computations."""
import numpy as np
import pytest
import torch
from scipy import linalg

from ganlab.metrics.classifier import MNISTClassifier
from ganlab.metrics.image import (class_histogram_kl, fid, image_metrics, inception_score,
                                  precision_recall)


def test_fid_matches_the_frechet_formula_on_classifier_features():
    torch.manual_seed(0)
    clf = MNISTClassifier().eval()
    real = torch.rand(200, 1, 28, 28) * 2 - 1
    fake = torch.rand(200, 1, 28, 28) * 1.5 - 1
    got = fid(clf, real, fake)
    fr, _ = clf.embed(real)
    ff, _ = clf.embed(fake)
    a, b = fr.double().numpy(), ff.double().numpy()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert got == pytest.approx(expected, rel=1e-3, abs=1e-4)
    assert fid(clf, real, real) == pytest.approx(0.0, abs=1e-3)


def test_precision_recall_definition():
    real = torch.tensor([[0.0, 0], [1, 0], [0, 1], [1, 1]])
    fake = torch.tensor([[0.5, 0.5], [10, 10]])  # one inside the real manifold, one far out
    p, r = precision_recall(real, fake, k=1)
    assert p == 0.5
    # fake radii with k=1: both points' nearest neighbour is the other, at distance ~13.4:
    # every real point lies within 13.4 of (0.5, 0.5)
    assert r == 1.0


def test_class_histogram_kl_and_is_extremes():
    uniform = torch.eye(10).repeat(5, 1) * 10
    assert class_histogram_kl(uniform)["class_kl"] == pytest.approx(0.0)
    single = torch.zeros(20, 10)
    single[:, 3] = 10
    h = class_histogram_kl(single)
    assert h["class_kl"] == pytest.approx(np.log(10)) and h["class_counts"][3] == 20


def test_inception_score_of_confident_uniform_classes_is_near_the_class_count():
    class Confident(MNISTClassifier):
        pass

    clf = Confident().eval()
    with torch.no_grad():  # make the head read a one-hot class from the features
        clf.features = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 128))
        clf.head.weight.zero_()
        clf.head.bias.zero_()
    images = torch.zeros(100, 1, 28, 28)
    for i in range(100):
        images[i, 0, 0, i % 10] = 1.0
    with torch.no_grad():
        clf.features[1].weight.zero_()
        clf.features[1].bias.zero_()
        for c in range(10):
            clf.features[1].weight[c, c] = 50.0
            clf.head.weight[c, c] = 1.0
    mean, _ = inception_score(clf, images, splits=1)
    assert mean == pytest.approx(10.0, rel=1e-3)
    m = image_metrics(clf, images, images)
    assert m["class_kl"] == pytest.approx(0.0) and m["precision"] == 1.0


def test_stacked_mnist_data_and_modes(tiny_mnist):
    from ganlab.data import load_dataset
    from ganlab.metrics.classifier import load_classifier
    from ganlab.metrics.image import stacked_modes
    ds = load_dataset("stacked-mnist", str(tiny_mnist), {"n": 50})
    base = load_dataset("mnist", str(tiny_mnist))
    assert ds.examples.shape == (50, 3, 28, 28) and ds.labels.max() < 1000
    # each channel is one of the base digits, and the label spells the three digits
    first = ds.examples[0]
    hits = [int(torch.nonzero((base.examples[:, 0] == first[c]).flatten(1).all(1))[0])
            for c in range(3)]
    assert int(ds.labels[0]) == sum(int(base.labels[h]) * 10 ** (2 - c) for c, h in enumerate(hits))
    clf = load_classifier()
    m = stacked_modes(clf, ds.examples)
    assert 1 <= m["stacked_modes"] <= 50
    one = stacked_modes(clf, ds.examples[:1].repeat(20, 1, 1, 1))
    assert one["stacked_modes"] == 1 and one["stacked_kl"] == pytest.approx(np.log(1000))
    with pytest.raises(ValueError, match=r"expected \(N, 3, 28, 28\)"):
        stacked_modes(clf, base.examples[:2])
