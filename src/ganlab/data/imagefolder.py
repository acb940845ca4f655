"""``imagefolder``: a folder of your own images (PNG, JPEG, WebP, BMP; grayscale or RGB; any
sizes), decoded once into a memory-mapped uint8 cache beside the data.

- ``resolution``: the side of the square training images; ``crop``: ``center`` (scale the short
  side to ``resolution``, cut the middle square) or ``resize`` (squash to the square);
- ``flip``: also train on every image mirrored left-right (the data set doubles, as StyleGAN's
  ``--mirror``; the mirror is made per batch, not stored);
- ``labels``: class labels from the first level of subfolders (``cats/*.png``, ``dogs/*.png``),
  so conditional models work on it;
- ``channels``: 1 or 3 to convert every image; unset, all images must have one channel count;
- ``skip_bad``: skip unreadable files with a warning instead of stopping at the first.

The cache (``PATH/.ganlab-cache/``, or ``~/.cache/ganlab/imagefolder/`` where the folder is
read-only) is keyed by the files' names, sizes and modification times and by these options, so
it is rebuilt when the folder changes. Examples stay uint8 on disk and become [-1, 1] floats one
batch at a time: 100,000 images at 64 x 64 need about 1.2 GB of disk and little memory.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from ..tasks import ImageTask
from . import DATASETS, Dataset

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
CROPS = ("center", "resize")


class ImageStore:
    """uint8 images (N, C, H, W) on disk (a memory map), read as [-1, 1] float tensors one
    batch at a time; with ``flip`` rows N..2N-1 are rows 0..N-1 mirrored left-right. It answers
    what the engine asks of an examples tensor: ``len``, ``shape``, indexing, ``index_select``,
    ``to(device)`` and ``contiguous(memory_format=...)``."""

    def __init__(self, array: np.ndarray, flip: bool = False, device=None,
                 memory_format=torch.contiguous_format):
        self.array, self.flip = array, flip
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.memory_format = memory_format

    def __len__(self) -> int:
        return len(self.array) * (2 if self.flip else 1)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self),) + tuple(self.array.shape[1:]))

    def dim(self) -> int:
        return 4

    def _rows(self, idx: np.ndarray) -> Tensor:
        n = len(self.array)
        src = idx % n
        order = np.argsort(src, kind="stable")  # read the memory map in file order
        raw = np.empty((len(idx),) + self.array.shape[1:], np.uint8)
        raw[order] = self.array[src[order]]
        x = torch.from_numpy(raw)
        if self.flip:
            mirrored = torch.from_numpy(idx >= n)
            x[mirrored] = x[mirrored].flip(-1)
        x = x.to(self.device).float().div_(127.5).sub_(1)
        return x.contiguous(memory_format=self.memory_format)

    def __getitem__(self, key) -> Tensor:
        if isinstance(key, slice):
            idx = np.arange(len(self))[key]
        elif isinstance(key, int):
            return self._rows(np.array([key % len(self)]))[0]
        else:
            idx = np.asarray(key.cpu() if isinstance(key, Tensor) else key, dtype=np.int64)
        return self._rows(idx.reshape(-1))

    def index_select(self, dim: int, idx: Tensor) -> Tensor:
        if dim != 0:
            raise ValueError("ImageStore.index_select: only rows (dim 0)")
        return self[idx]

    def to(self, device) -> "ImageStore":
        return ImageStore(self.array, self.flip, device, self.memory_format)

    def contiguous(self, memory_format=torch.contiguous_format) -> "ImageStore":
        return ImageStore(self.array, self.flip, self.device, memory_format)


def image_files(root: Path, labels: bool) -> tuple[list[Path], list[str]]:
    """The image files under ``root`` (sorted) and, with ``labels``, the class names."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
                   and ".ganlab-cache" not in p.parts)
    if not files:
        raise DataError(f"{root}: no images ({', '.join(e[1:] for e in EXTENSIONS)}) in this "
                        "folder or its subfolders")
    if not labels:
        return files, []
    top = [p for p in files if p.parent == root]
    if top:
        raise DataError(f"{top[0]}: labels: true takes the class from the subfolder an image is "
                        f"in, but {len(top)} images lie directly in {root}")
    return files, sorted({p.relative_to(root).parts[0] for p in files})


def _fingerprint(root: Path, files: list[Path], options: dict) -> str:
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _cache_dir(root: Path) -> Path:
    beside = root / ".ganlab-cache"
    try:
        beside.mkdir(exist_ok=True)
        probe = beside / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return beside
    except OSError:
        home = Path(os.environ.get("GANLAB_CACHE", Path.home() / ".cache" / "ganlab"))
        where = home / "imagefolder" / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        where.mkdir(parents=True, exist_ok=True)
        print(f"ganlab: {root} is not writable; the image cache is {where}", file=sys.stderr)
        return where


def _channels(path: Path) -> int:
    from PIL import Image
    with Image.open(path) as im:
        return 1 if im.mode in GRAY_MODES else 3


def _decode(path: Path, resolution: int, crop: str, channels: int) -> np.ndarray:
    from PIL import Image, ImageOps
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        im = im.convert("L" if channels == 1 else "RGB")
        size = (resolution, resolution)
        im = (ImageOps.fit(im, size, method=Image.Resampling.LANCZOS) if crop == "center"
              else im.resize(size, Image.Resampling.LANCZOS))
        a = np.asarray(im, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def build_cache(root: Path, files: list[Path], key: str, folder: Path, resolution: int,
                crop: str, channels: int, skip_bad: bool) -> tuple[list[Path], list[str]]:
    """Decode every file into ``folder/key.npy`` (uint8 (N, C, R, R)); returns the files kept
    and the ones skipped."""
    from PIL import UnidentifiedImageError
    tmp = folder / f".{key}.npy.tmp-{os.getpid()}"
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                    shape=(len(files), channels, resolution, resolution))
    kept, skipped = [], []
    for path in files:
        try:
            arr[len(kept)] = _decode(path, resolution, crop, channels)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            if not skip_bad:
                del arr
                tmp.unlink(missing_ok=True)
                raise DataError(f"{path}: not a readable image ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}); remove it, "
                                "or set data.args.skip_bad: true to skip such files") from None
            print(f"ganlab: warning: {path}: not a readable image, skipped", file=sys.stderr)
            skipped.append(str(path.relative_to(root)))
            continue
        kept.append(path)
    arr.flush()
    del arr
    if skipped:  # the memory map was made for every file: cut it to the ones decoded
        full = np.load(tmp, mmap_mode="r")
        cut = np.lib.format.open_memmap(folder / f".{key}.cut.npy", mode="w+", dtype=np.uint8,
                                        shape=(len(kept),) + full.shape[1:])
        cut[:] = full[:len(kept)]
        cut.flush()
        del cut, full
        os.replace(folder / f".{key}.cut.npy", tmp)
    os.replace(tmp, folder / f"{key}.npy")
    return kept, skipped


@DATASETS.register("imagefolder")
def imagefolder(path: Optional[str] = None, seed: int = 0, resolution: int = 64,
                crop: str = "center", flip: bool = False, labels: bool = False,
                channels: Optional[int] = None, skip_bad: bool = False) -> Dataset:
    if not path:
        raise DataError("imagefolder: needs data.path, the folder of images "
                        "(--set data.path=DIR)")
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder of images")
    if crop not in CROPS:
        raise DataError(f"data.args.crop: {crop!r}; valid: {', '.join(CROPS)}")
    if resolution < 4:
        raise DataError(f"data.args.resolution: must be at least 4, got {resolution}")
    if channels not in (None, 1, 3):
        raise DataError(f"data.args.channels: 1 or 3 (or unset), got {channels}")
    files, classes = image_files(root, labels)
    options = {"resolution": resolution, "crop": crop, "channels": channels,
               "skip_bad": skip_bad, "format": 1}
    key = _fingerprint(root, files, options)
    folder = _cache_dir(root)
    meta_path = folder / f"{key}.json"
    if not (meta_path.is_file() and (folder / f"{key}.npy").is_file()):
        if channels is None:
            channels = _common_channels(files, skip_bad)
        for old in folder.glob("*.npy"):  # an earlier version of the folder
            old.unlink(missing_ok=True)
        for old in folder.glob("*.json"):
            old.unlink(missing_ok=True)
        kept, skipped = build_cache(root, files, key, folder, resolution, crop, channels,
                                    skip_bad)
        meta = {"files": [str(p.relative_to(root)) for p in kept], "skipped": skipped,
                "channels": channels, "classes": classes}
        meta_path.write_text(json.dumps(meta))
    meta = json.loads(meta_path.read_text())
    array = np.load(folder / f"{key}.npy", mmap_mode="r")
    y = None
    if labels:
        names = meta["classes"]
        y = torch.tensor([names.index(Path(f).parts[0]) for f in meta["files"]])
        if flip:
            y = torch.cat([y, y])
    return Dataset(examples=ImageStore(array, flip), labels=y,
                   task=ImageTask(class_names=meta["classes"] or None))


def _common_channels(files: list[Path], skip_bad: bool) -> int:
    """The one channel count of the images; mixed counts are an error that names one of each."""
    first: dict[int, Path] = {}
    for p in files:
        try:
            first.setdefault(_channels(p), p)
        except OSError:
            if not skip_bad:
                raise DataError(f"{p}: not a readable image; remove it, or set "
                                "data.args.skip_bad: true to skip such files") from None
        if len(first) == 2:
            raise DataError(f"mixed channel counts: {first[1]} is grayscale and {first[3]} is "
                            "RGB; set data.args.channels: 1 or 3 to convert them all")
    if not first:
        raise DataError(f"{files[0].parent}: none of the images is readable")
    return next(iter(first))
