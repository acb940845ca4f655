"""The imagefolder dataset: any folder of images, decoded once into a memory-mapped cache."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab import Game, load_config
from ganlab.data import load_dataset
from ganlab.data.imagefolder import ImageStore
from ganlab.errors import ConfigError, DataError


def make_folder(root, with_labels=True, n=6):
    """Cats as RGB PNGs of several sizes, dogs as JPEGs and WebPs; some wide, some tall."""
    rng = np.random.default_rng(0)
    for cls, ext in (("cats", "png"), ("dogs", "jpg")):
        folder = root / cls if with_labels else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = (40, 60) if i % 2 else (50, 30)
            a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            name = f"{cls}{i}.{'webp' if cls == 'dogs' and i == 0 else ext}"
            Image.fromarray(a).save(folder / name)
    return root


def test_shapes_scale_labels_and_flips(tmp_path):
    make_folder(tmp_path / "imgs")
    ds = load_dataset("imagefolder", str(tmp_path / "imgs"), {"resolution": 16, "labels": True})
    x = ds.examples[torch.arange(len(ds))]
    assert len(ds) == 12 and x.shape == (12, 3, 16, 16)
    assert x.min() >= -1 and x.max() <= 1 and x.dtype == torch.float32
    assert ds.labels.tolist() == [0] * 6 + [1] * 6 and ds.task.class_names == ["cats", "dogs"]
    assert isinstance(ds.examples, ImageStore) and isinstance(ds.examples.array, np.memmap)
    flipped = load_dataset("imagefolder", str(tmp_path / "imgs"),
                           {"resolution": 16, "labels": True, "flip": True})
    assert len(flipped) == 24 and flipped.labels.tolist()[12:] == ds.labels.tolist()
    assert torch.equal(flipped.examples[[15]], flipped.examples[[3]].flip(-1))  # a mirror
    assert torch.equal(flipped.examples.index_select(0, torch.tensor([2, 14])),
                       torch.stack([x[2], x[2].flip(-1)]))


def test_center_crop_and_resize(tmp_path):
    root = tmp_path / "one"
    root.mkdir()
    a = np.zeros((20, 60), np.uint8)  # a wide grey image: black | white | black
    a[:, 20:40] = 255
    Image.fromarray(a).save(root / "wide.png")
    crop = load_dataset("imagefolder", str(root), {"resolution": 20}).examples[[0]]
    assert crop.shape == (1, 1, 20, 20) and crop.min() > 0.9  # the middle square: all white
    squash = load_dataset("imagefolder", str(root), {"resolution": 20, "crop": "resize"})
    row = squash.examples[[0]][0, 0, 10]
    assert row[0] < -0.9 and row[10] > 0.9 and row[-1] < -0.9  # all three bands, squeezed


def test_the_cache_is_built_once_and_rebuilt_when_the_folder_changes(tmp_path, monkeypatch):
    make_folder(tmp_path / "imgs", n=3)
    from ganlab.data import imagefolder as module
    calls = []
    real = module._decode
    monkeypatch.setattr(module, "_decode", lambda *a: (calls.append(a[0]), real(*a))[1])
    args = {"resolution": 8}
    load_dataset("imagefolder", str(tmp_path / "imgs"), args)
    assert len(calls) == 6 and (tmp_path / "imgs" / ".ganlab-cache").is_dir()
    load_dataset("imagefolder", str(tmp_path / "imgs"), args)
    assert len(calls) == 6  # read from the cache
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "imgs" / "cats" / "new.png")
    ds = load_dataset("imagefolder", str(tmp_path / "imgs"), args)
    assert len(calls) == 13 and len(ds) == 7  # rebuilt
    assert len(list((tmp_path / "imgs" / ".ganlab-cache").glob("*.npy"))) == 1  # the old one gone
    load_dataset("imagefolder", str(tmp_path / "imgs"), {"resolution": 12})
    assert len(calls) == 20  # another resolution is another cache


def test_errors_name_the_folder_and_the_file(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images"):
        load_dataset("imagefolder", str(tmp_path / "empty"))
    root = make_folder(tmp_path / "imgs", n=2)
    (root / "cats" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"broken.png: not a readable image.*skip_bad"):
        load_dataset("imagefolder", str(root), {"resolution": 8})
    ds = load_dataset("imagefolder", str(root), {"resolution": 8, "skip_bad": True})
    assert len(ds) == 4 and "broken.png: not a readable image, skipped" in capsys.readouterr().err
    (root / "cats" / "broken.png").unlink()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "cats" / "grey.png")
    with pytest.raises(DataError, match=r"mixed channel counts: .*grey.png is grayscale and "
                                        r".*is RGB; set data.args.channels"):
        load_dataset("imagefolder", str(root), {"resolution": 8})
    rgb = load_dataset("imagefolder", str(root), {"resolution": 8, "channels": 3})
    assert rgb.examples.shape == (5, 3, 8, 8)
    gray = load_dataset("imagefolder", str(root), {"resolution": 8, "channels": 1})
    assert gray.examples.shape == (5, 1, 8, 8)
    flat = make_folder(tmp_path / "flat", with_labels=False, n=1)
    with pytest.raises(DataError, match="labels: true takes the class from the subfolder"):
        load_dataset("imagefolder", str(flat), {"labels": True})
    with pytest.raises(DataError, match="needs data.path"):
        load_dataset("imagefolder", None)


def test_a_read_only_folder_caches_elsewhere(tmp_path, monkeypatch, capsys):
    root = make_folder(tmp_path / "imgs", n=1)
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path / "home-cache"))
    os.chmod(root, 0o555)
    try:
        if os.access(root, os.W_OK) and os.geteuid() == 0:
            import subprocess
            r = subprocess.run(["mount", "--bind", "-o", "ro", str(root), str(root)],
                               capture_output=True)
            if r.returncode:
                pytest.skip("cannot make a read-only folder here (root, no bind mount)")
            subprocess.run(["mount", "-o", "remount,ro,bind", str(root)], capture_output=True)
        ds = load_dataset("imagefolder", str(root), {"resolution": 8})
        assert len(ds) == 2 and "is not writable; the image cache is" in capsys.readouterr().err
        assert list((tmp_path / "home-cache" / "imagefolder").rglob("*.npy"))
    finally:
        if os.geteuid() == 0:
            import subprocess
            subprocess.run(["umount", "-l", str(root)], capture_output=True)
        os.chmod(root, 0o755)


@pytest.mark.parametrize("resolution", [32, 64])
def test_the_preset_trains_on_a_folder(tmp_path, resolution):
    root = make_folder(tmp_path / "imgs", n=4)
    cfg = load_config("imagefolder", [f"data.path={root}", f"data.args.resolution={resolution}",
                                      "data.batch_size=4", "train.iterations=2",
                                      "train.progress=false", "model.generator.args.width=8",
                                      "model.discriminator.args.width=8", "latent.dim=16"])
    game = Game.from_config(cfg)
    assert game.G.body[1].in_channels == 16  # channels and size came from the data
    h = game.play(2)
    assert len(h["d_loss"]) == 2
    assert game.sample(3).shape == (3, 3, resolution, resolution)
    with pytest.raises(ConfigError, match=r"model.generator.args.image_size: 32, but the data's "
                                          r"examples have image_size 64"):
        Game.from_config(load_config(cfg.to_dict(), ["data.args.resolution=64",
                                                     "model.generator.args.image_size=32"]))


def test_a_conditional_model_on_class_subfolders(tmp_path):
    root = make_folder(tmp_path / "imgs", n=4)
    cfg = load_config("imagefolder", [
        f"data.path={root}", "data.args={resolution: 16, labels: true}", "data.batch_size=4",
        "train.iterations=2", "train.progress=false", "latent.dim=8",
        "model.generator.args={width: 8, num_classes: 2}",
        "model.discriminator.args={width: 8, num_classes: 2, norm: none}"])
    game = Game.from_config(cfg)
    assert game.conditioning.kind == "labels" and game.conditioning.num_classes == 2
    game.play(2)
    x = game.sample(4, labels=torch.tensor([0, 1, 0, 1]))
    assert x.shape == (4, 3, 16, 16)
