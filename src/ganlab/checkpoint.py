"""Checkpoints: atomic writes, ``weights_only`` loads, and the RNG states exact resume needs.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so it loads with
``torch.load(..., weights_only=True)``; a file that needs arbitrary pickle code is refused.
Writes go to a temporary file in the same folder, are flushed to disk, then renamed over the
target: a kill at any moment leaves either the previous checkpoint or the new one, never a torn
file.
"""
from __future__ import annotations

import errno
import os
import pickle
import random
import re
import shutil
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointError

FORMAT = "ganlab-checkpoint-1"
__all__ = ["FORMAT", "CheckpointError", "atomic_save", "safe_load", "capture_rng", "restore_rng",
           "seed_everything"]


def tensor_checksum(obj) -> int:
    """CRC-32 of every tensor in a nested structure (dict keys sorted): its dtype, shape and
    bytes. Stored in each checkpoint and checked on load, so a file whose bytes changed on disk
    is refused instead of training on corrupted state."""
    crc = 0

    def walk(x, crc):
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            crc = zlib.crc32(f"{t.dtype}{tuple(t.shape)}".encode(), crc)
            return zlib.crc32(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel()
                              else b"", crc)
        if isinstance(x, dict):
            for k in sorted(x, key=str):
                if k != "checksum":
                    crc = walk(x[k], zlib.crc32(str(k).encode(), crc))
            return crc
        if isinstance(x, (list, tuple)):
            for v in x:
                crc = walk(v, crc)
        return crc

    return walk(obj, crc)


def stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files a killed write left behind (``.NAME.tmp-PID``)."""
    return sorted(Path(folder).glob(".*.tmp-*")) if Path(folder).is_dir() else []


def atomic_save(obj, path: str | Path) -> Path:
    """Write ``obj`` (a checkpoint dict gets its tensor checksum) to a temporary file, flush it
    to disk, rename it over ``path``. A failed write (a full disk) leaves the previous file as
    it was and raises :class:`CheckpointError`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = {**obj, "checksum": tensor_checksum(obj)}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC or \
            shutil.disk_usage(path.parent).free < 1 << 20
        why = "the disk is full" if full else str(exc).splitlines()[-1]
        kept = "the previous one is intact" if path.exists() else "no earlier one exists"
        raise CheckpointError(f"{path}: could not be written ({why}); {kept}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def safe_load(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: not a readable checkpoint: the file is empty (0 bytes)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "GLOBAL" not in msg:  # a pickle of something else, or garbage
            raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or not a torch "
                                  "file)") from None
        glob = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", msg)
        what = f" ({glob.group(1)})" if glob else ""
        raise CheckpointError(
            f"{path}: refused: it needs arbitrary pickle code to load{what}, and ganlab only "
            "loads checkpoints with torch.load(weights_only=True)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated: "
                              f"{reason})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a ganlab checkpoint (expected format {FORMAT!r})")
    if "checksum" in obj and tensor_checksum(obj) != obj["checksum"]:
        raise CheckpointError(f"{path}: corrupt: its tensors do not match the checksum written "
                              "with them (the file changed on disk); use another checkpoint")
    return obj


def capture_rng() -> dict:
    """Global RNG states of torch (CPU and CUDA), numpy and python, as weights_only-safe values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
