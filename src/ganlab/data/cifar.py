"""CIFAR-10 from its standard python-pickle batches (``cifar-10-batches-py``).

``data.path`` is the folder holding ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``
(or its parent). Each batch is a pickled dict with ``data`` (N x 3072 uint8, channel-major) and
``labels``; it is read with an unpickler that admits numpy arrays and nothing else. Images are
scaled to [-1, 1], shape (N, 3, 32, 32). ``classes`` keeps only the named classes (names or
numbers, e.g. ``[frog]``), relabelled 0..k-1 in the order given; ``split``: train, test or all.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..tasks import ImageTask
from . import DATASETS, Dataset
from .mnist import DataError, _NumpyOnlyUnpickler

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as fh:
            d = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        raise DataError(f"{path}: not a readable CIFAR-10 batch: {exc}") from None
    if not isinstance(d, dict):
        raise DataError(f"{path}: expected a pickled dict with data and labels")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise DataError(f"{path}: missing 'data' or 'labels' (keys: {', '.join(map(str, d))})")
    x, y = np.asarray(d["data"]), np.asarray(d["labels"], dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
        raise DataError(f"{path}: expected data of shape (N, 3072) and N labels, got {x.shape} "
                        f"and {y.shape}")
    return x.reshape(-1, 3, 32, 32), y


def _folder(path: Optional[str]) -> Path:
    if not path:
        raise DataError("CIFAR-10: set data.path to the folder with data_batch_1..5 and "
                        "test_batch (cifar-10-batches-py)")
    p = Path(path)
    for cand in (p, p / "cifar-10-batches-py"):
        if (cand / "data_batch_1").is_file() or (cand / "test_batch").is_file():
            return cand
    raise DataError(f"CIFAR-10 not found in {p} or {p / 'cifar-10-batches-py'}: expected "
                    "data_batch_1 ... data_batch_5 and test_batch")


def _class_ids(classes) -> list[int]:
    ids = []
    for c in classes:
        if isinstance(c, int) and 0 <= c < 10:
            ids.append(c)
        elif isinstance(c, str) and c in CLASSES:
            ids.append(CLASSES.index(c))
        else:
            raise DataError(f"data.args.classes: unknown class {c!r}; valid: {', '.join(CLASSES)} "
                            "or 0-9")
    return ids


@DATASETS.register("cifar10")
def cifar10(path: Optional[str] = None, seed: int = 0, split: str = "train",
            classes: Optional[list] = None) -> Dataset:
    if split not in ("train", "test", "all"):
        raise DataError(f"data.args.split: unknown split {split!r}; valid: train, test, all")
    folder = _folder(path)
    names = FILES["train"] + FILES["test"] if split == "all" else FILES[split]
    xs, ys = [], []
    for name in names:
        if not (folder / name).is_file():
            raise DataError(f"{folder / name}: missing CIFAR-10 batch")
        x, y = read_batch(folder / name)
        xs.append(x)
        ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    label_names = list(CLASSES)
    if classes:
        ids = _class_ids(classes)
        keep = np.isin(y, ids)
        x, y = x[keep], np.array([ids.index(v) for v in y[keep]], dtype=np.int64)
        label_names = [CLASSES[i] for i in ids]
        if len(x) == 0:
            raise DataError(f"{folder}: no images of classes {classes}")
    images = torch.from_numpy(x.astype(np.float32)).div_(127.5).sub_(1)
    return Dataset(examples=images, labels=torch.from_numpy(y),
                   task=ImageTask(class_names=label_names))
