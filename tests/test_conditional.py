import pickle

import numpy as np
import pytest
import torch

from ganlab import Game, load_config
from ganlab.data import load_dataset
from ganlab.errors import DataError
from ganlab.models import MODELS
from ganlab.registry import ConfigError
from ganlab.hooks import Penalty
from ganlab.run import resume, start, train


def tiny_cifar(folder, n=30, seed=0):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"labels": list(rng.integers(0, 10, n).tolist())}
        (folder / name).write_bytes(pickle.dumps(d, protocol=2))
    return folder


def cond_config(tiny_mnist, *extra):
    return load_config("mnist-cgan", [
        f"data.path={tiny_mnist}", "data.batch_size=10",
        "model.generator.args={num_classes: 10, hidden: 16, layers: 1}",
        "model.discriminator.args={num_classes: 10, hidden: 16, layers: 1, mode: concat}",
        "latent.dim=8", "train.iterations=6", "train.num_samples=20", "train.sample_every=3",
        "train.checkpoint_every=3", "train.log_every=3", "train.progress=false", *extra])


def test_label_embeddings_follow_the_lab_design():
    G = MODELS.build("cgan-mlp-g", {"latent_dim": 8, "num_classes": 10})
    D = MODELS.build("cgan-mlp-d", {"num_classes": 10})
    assert G.embed.weight.shape == (10, 10) and D.embed.weight.shape == (10, 10)
    assert G.net[0].in_features == 8 + 10 and D.body[0].in_features == 784 + 10
    y = torch.tensor([3, 3])
    z = torch.randn(1, 8).repeat(2, 1)
    assert torch.allclose(G(z, y)[0], G(z, y)[1], atol=1e-6)
    assert not torch.allclose(G(z, torch.tensor([3, 4]))[0], G(z, torch.tensor([3, 4]))[1])


def test_projection_discriminator_formula():
    D = MODELS.build("cgan-mlp-d", {"num_classes": 5, "hidden": 8, "layers": 1,
                                    "mode": "projection"})
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 4])
    phi = D.body(x.reshape(4, -1))
    expected = D.head.score(phi).reshape(4) + (D.head.embed(y) * phi).sum(1)
    assert torch.allclose(D(x, y), expected)


def test_engine_feeds_true_labels_for_reals_and_uniform_labels_for_fakes(tiny_mnist):
    seen = []

    class Spy(Penalty):
        name = "spy"

        def d_penalty(self, b):
            seen.append((b.real_cond.clone(), b.fake_cond.clone(), b.real.clone()))

    game = Game.from_config(cond_config(tiny_mnist))
    game.tricks.add(Spy())
    game.play(4)
    data = load_dataset("mnist", str(tiny_mnist))
    for real_y, fake_y, real in seen:
        idx = [int(torch.nonzero((data.examples == r).flatten(1).all(1))[0]) for r in real]
        assert torch.equal(real_y, data.labels[idx])  # each real image with its own label
        assert fake_y.min() >= 0 and fake_y.max() <= 9
    all_fake = torch.cat([torch.stack([s[1] for s in seen])])
    assert len(all_fake.unique()) > 5


def test_sample_grid_has_one_row_per_class(tiny_mnist, tmp_path):
    game = train(cond_config(tiny_mnist), tmp_path / "run")
    assert game.sampler.grid_cond.tolist() == [i // 2 for i in range(20)]
    from PIL import Image
    img = Image.open(tmp_path / "run" / "samples" / "iter_0000006.png")
    assert img.height == 2 * (10 * 30 + 2) and img.width == 2 * (2 * 30 + 2)  # 10 rows x 2
    x = game.sample(6, labels=torch.tensor([7] * 6))
    assert x.shape == (6, 1, 28, 28)


def test_acgan_head_and_losses(tiny_mnist):
    cfg = cond_config(tiny_mnist, "model.discriminator.args={num_classes: 10, hidden: 16, "
                      "layers: 1, mode: acgan}", "regularizers=[{name: acgan}]")
    h = Game.from_config(cfg).play(3)
    assert len(h["d_acgan"]) == 3 and len(h["g_acgan"]) == 3 and min(h["d_acgan"]) > 0
    with pytest.raises(ConfigError, match="acgan.*mode: acgan"):
        Game.from_config(cond_config(tiny_mnist, "regularizers=[{name: acgan}]"))


def test_conditional_resume_is_bitwise_identical(tiny_mnist, tmp_path):
    cfg = cond_config(tiny_mnist)
    full = train(cfg, tmp_path / "full")
    part = start(cfg, tmp_path / "part")
    part.play(3)
    resumed = resume(tmp_path / "part")
    for a, b in zip(full.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)


def test_cifar10_batches_and_class_filter(tmp_path):
    folder = tiny_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", str(tmp_path), {"split": "train"})
    assert ds.examples.shape == (150, 3, 32, 32) and ds.examples.min() >= -1
    raw = pickle.loads((folder / "data_batch_1").read_bytes())
    assert torch.allclose(ds.examples[0], torch.from_numpy(
        raw[b"data"][0].reshape(3, 32, 32).astype(np.float32)) / 127.5 - 1)
    frogs = load_dataset("cifar10", str(folder), {"split": "all", "classes": ["frog", 0]})
    all_y = np.concatenate([pickle.loads((folder / f).read_bytes())[b"labels"]
                            for f in sorted(p.name for p in folder.iterdir())])
    assert len(frogs) == int(np.isin(all_y, [6, 0]).sum())
    assert set(frogs.labels.tolist()) <= {0, 1} and frogs.task.class_names == ["frog",
                                                                              "airplane"]
    with pytest.raises(DataError, match="unknown class 'frogs'"):
        load_dataset("cifar10", str(folder), {"classes": ["frogs"]})
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        load_dataset("cifar10", str(tmp_path / "none"))
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": np.zeros((2, 5))}, protocol=2))
    with pytest.raises(DataError, match="data_batch_2: missing 'data' or 'labels'"):
        load_dataset("cifar10", str(folder))


@pytest.mark.parametrize("preset", ["cifar10-cgan", "cifar10-wgangp"])
def test_cifar_presets_train_on_tiny_data(preset, tmp_path):
    folder = tiny_cifar(tmp_path / "c")
    cfg = load_config(preset, [f"data.path={folder}", "data.batch_size=8", "train.iterations=2",
                               "train.progress=false", "train.n_critic=2"])
    h = Game.from_config(cfg).play(2)
    assert len(h["d_loss"]) == 2
