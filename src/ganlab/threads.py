"""How many intra-op threads a run uses: as many as there are free cores, re-checked while it
trains.

torch's default is one thread per core, and its OpenMP threads spin while they wait. Two runs
with two spinning threads each on two cores slow each other down several times over (measured
in BENCHMARKS.md, "Training beside another run"). So by default (``train.threads`` unset) a run
measures, from ``/proc/stat``, how many of its cores other processes keep busy, uses the rest
(at least one), and measures again every second while it trains: when a second run starts, both
step down to one thread each; when it ends, the survivor steps back up. Every choice is printed
and logged (``metrics.jsonl`` rows of kind ``system``, TensorBoard ``system/threads``).

The thread count changes floating-point summation order, so a run whose count changed is not
bit-for-bit the run it would have been on an idle machine. ``train.threads: N`` (or the
environment variable ``GANLAB_THREADS=N``) fixes the count: a fixed count makes runs and
resumes exactly reproducible whatever else the machine is doing. Sweeps fix it for every run
(``--threads``, by default cores / jobs).
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from .trainer import Callback

_BUSY_FIELDS = (0, 1, 2, 5, 6)  # user, nice, system, irq, softirq (not idle, iowait or steal)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def fixed_threads(configured: Optional[int]) -> Optional[int]:
    """The fixed thread count: ``train.threads``, else ``$GANLAB_THREADS``, else None (auto)."""
    if configured:
        return int(configured)
    env = os.environ.get("GANLAB_THREADS", "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else None


class CpuLoad:
    """How busy this process's cores are with other processes' work, between two readings."""

    def __init__(self, stat_path: str = "/proc/stat"):
        self.stat_path = stat_path
        try:
            self.cpus = {f"cpu{c}" for c in os.sched_getaffinity(0)}
        except AttributeError:
            self.cpus = set()
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last = self.read()

    @property
    def available(self) -> bool:
        return self.last is not None

    def read(self) -> Optional[tuple[float, float, float]]:
        """(busy CPU seconds of these cores, this process's CPU seconds, wall seconds)."""
        try:
            lines = Path(self.stat_path).read_text().splitlines()
        except OSError:
            return None
        busy = 0
        for line in lines:
            name, *fields = line.split()
            if name in self.cpus:
                busy += sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields))
        return busy / self.hz, time.process_time(), time.perf_counter()

    def busy_elsewhere(self) -> Optional[float]:
        """Cores' worth of CPU time other processes used since the last call."""
        now = self.read()
        if now is None or self.last is None:
            return None
        (b0, own0, t0), (b1, own1, t1) = self.last, now
        self.last = now
        wall = t1 - t0
        if wall <= 0:
            return None
        return max(0.0, ((b1 - b0) - (own1 - own0)) / wall)


def threads_for(cores: int, busy_elsewhere: float) -> int:
    """One thread per core left free by other processes (rounded to the nearest), at least
    one."""
    return max(1, min(cores, math.floor(cores - busy_elsewhere + 0.5)))


class ThreadGovernor(Callback):
    """Sets torch's intra-op threads at the start of ``play`` and, unless they are fixed, every
    ``period`` seconds to fit the free cores: a step down after one reading, a step up after
    two in a row (a brief lull in the other run's work does not flip it back)."""

    def __init__(self, fixed: Optional[int] = None, period: float = 1.0, ranks_per_node: int = 1,
                 log=None, load: Optional[CpuLoad] = None):
        self.fixed, self.period = fixed, period
        self.cores = max(1, usable_cores() // max(1, ranks_per_node))
        self.log = log or (lambda msg: print(f"ganlab: {msg}", file=sys.stderr, flush=True))
        self.load = None if fixed else (load or CpuLoad())  # readings start when the game is built
        self.threads: Optional[int] = None
        self._up = 0
        self._next = 0.0

    def _set(self, trainer, n: int, why: str) -> None:
        torch.set_num_threads(n)
        if n != self.threads:
            before = self.threads
            self.threads = n
            self.log(f"threads: {n} ({why})" if before is None else
                     f"threads: {before} -> {n} ({why})")
            trainer.game.tracker.log(trainer.iteration, {"threads": n}, kind="system")

    def on_start(self, trainer, num_iter):
        if self.fixed:
            self._set(trainer, self.fixed, "fixed by train.threads or GANLAB_THREADS")
            return
        if self.threads is not None:  # a later ``play``: the readings go on from the last one
            torch.set_num_threads(self.threads)
            return
        if self.load is None or not self.load.available:
            self._set(trainer, self.cores, f"{self.cores} cores; no /proc/stat to watch")
            self.load = None
            return
        wait = 0.2 - (time.perf_counter() - self.load.last[2])
        if wait > 0:  # the game was built a moment ago: read the others' load a little longer
            time.sleep(wait)
        busy = self.load.busy_elsewhere() or 0.0
        self._set(trainer, threads_for(self.cores, busy),
                  f"auto: {self.cores} cores, {busy:.1f} busy with other processes")
        self._next = time.perf_counter() + self.period

    def on_iteration(self, trainer):
        if self.fixed or self.load is None or time.perf_counter() < self._next:
            return
        self._next = time.perf_counter() + self.period
        busy = self.load.busy_elsewhere()
        if busy is None:
            return
        want = threads_for(self.cores, busy)
        self._up = self._up + 1 if want > self.threads else 0
        if want < self.threads or self._up >= 2:
            self._up = 0
            self._set(trainer, want, f"{busy:.1f} of {self.cores} cores busy with other "
                                     "processes")
