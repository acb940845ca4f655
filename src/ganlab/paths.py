"""Where outputs go: each output path is checked before anything is computed or written, so a
bad ``--out`` ends in one error that names the path and the problem, and nothing half-made.

A folder output (a run, a sweep, a recording, a comparison) may not exist yet: it is made later,
with its parents. A file output (samples, a JSON of metrics, predictions, a GIF) needs its
folder to exist already: ganlab writes the file asked for, and no folder that was not.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from .errors import ConfigError


def _probe(folder: Path, what: str, target: Path) -> None:
    """Whether a file can be created in ``folder`` (a read-only file system, permissions,
    a full disk), by creating and removing one."""
    try:
        fd, name = tempfile.mkstemp(prefix=".ganlab-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        reason = {errno.EROFS: "is on a read-only file system", errno.EACCES: "is not writable",
                  errno.EPERM: "is not writable", errno.ENOSPC: "is on a full disk"}.get(
            exc.errno, f"cannot be written to ({exc.strerror})")
        where = f"{folder}" if folder == target else f"{folder} (where {target} would be made)"
        raise ConfigError(f"{what} {target}: {where} {reason}") from None


def output_dir(path: str | Path, what: str = "--out") -> Path:
    """A folder that will be written into (made later with its parents)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{what} {p}: is a file, not a folder")
    existing = p
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{what} {p}: {existing} is a file, so no folder can be made in it")
    _probe(existing, what, p)
    return p


def output_file(path: str | Path, what: str = "--out", suffix: str = "",
                example: str = "out", required_suffix: str = "") -> Path:
    """The file that will be written for ``path`` (``suffix`` appended where it lacks it, as
    numpy does for ``.npy`` and ``.npz``; ``required_suffix``: the name must end so, since the
    writer picks its format by it). An existing file is overwritten."""
    p = Path(path)
    if suffix and p.suffix != suffix:
        p = p.with_name(p.name + suffix)

    if Path(path).is_dir() or p.is_dir():
        raise ConfigError(f"{what} {path}: is a folder; give a file name, e.g. "
                          f"{Path(path) / (example + suffix)}")
    parent = p.parent
    if not parent.exists():
        raise ConfigError(f"{what} {path}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: {parent} is a file, not a folder")
    _probe(parent, what, p)
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"{what} {path}: the file exists and is read-only")
    if required_suffix and p.suffix.lower() != required_suffix:
        raise ConfigError(f"{what} {path}: the file name must end in {required_suffix}")
    return p


def writable_run(path: str | Path, what: str) -> Path:
    """A run folder a command must write into (resume; sampling writes nothing there, but
    reading needs none of this)."""
    p = Path(path)
    _probe(p, what, p)
    return p
