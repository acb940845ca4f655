"""One training process per run directory.

A process that trains in a run directory holds an exclusive lock on its ``.lock`` file (an OS
advisory lock, released when the process ends, however it ends); a second ``ganlab train`` or
``resume`` on the same folder fails at once with the first one's process id, instead of both
"succeeding" into one folder.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import CheckpointError

LOCK_NAME = ".lock"


_HELD: dict = {}  # this process's locks, by resolved folder: several games may share one


class RunLock:
    """This process's lock on a run directory (shared by every game of the process that
    trains there; the lock excludes other processes)."""

    def __init__(self, run_dir: Path, fd: int, created: bool):
        self.run_dir, self._fd, self.created, self.users = run_dir, fd, created, 0

    @classmethod
    def acquire(cls, run_dir: str | Path) -> "RunLock":
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        key = str(run_dir.resolve())
        lock = _HELD.get(key)
        if lock is None:
            path = run_dir / LOCK_NAME
            created = not path.exists()
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise CheckpointError(
                    f"{run_dir}: in use by another ganlab process{holder}, which is training "
                    "in it; wait for it to finish (or stop it), or choose another --out"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            lock = _HELD[key] = cls(run_dir, fd, created)
        lock.users += 1
        return lock

    def release(self, remove: bool = False) -> None:
        """One user gives the lock up; the last one unlocks (``remove``: and deletes the lock
        file this process made)."""
        self.users -= 1
        if self.users > 0 or self._fd is None:
            return
        _HELD.pop(str(self.run_dir.resolve()), None)
        if remove and self.created:
            (self.run_dir / LOCK_NAME).unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        pid = ""
    return f" (pid {pid})" if pid.isdigit() else ""
