"""ganlab.threads: intra-op threads that fit the cores other processes leave free."""
import os
import subprocess
import sys
import time

import pytest
import torch

from ganlab.threads import CpuLoad, ThreadGovernor, fixed_threads, threads_for, usable_cores


def test_threads_for_rounds_the_free_cores_and_keeps_one():
    assert threads_for(2, 0.0) == 2
    assert threads_for(2, 0.4) == 2  # a browser's share does not cost a thread
    assert threads_for(2, 1.0) == 1  # another run on one core
    assert threads_for(2, 1.9) == 1 and threads_for(2, 5.0) == 1  # never zero
    assert threads_for(8, 2.6) == 5


def test_fixed_threads_from_the_config_or_the_environment(monkeypatch):
    monkeypatch.delenv("GANLAB_THREADS", raising=False)
    assert fixed_threads(None) is None and fixed_threads(3) == 3
    monkeypatch.setenv("GANLAB_THREADS", "2")
    assert fixed_threads(None) == 2 and fixed_threads(1) == 1  # the config wins
    monkeypatch.setenv("GANLAB_THREADS", "lots")
    assert fixed_threads(None) is None


def _stat(path, busy_jiffies):
    cpus = sorted(os.sched_getaffinity(0))
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    lines += [f"cpu{c} {busy_jiffies // len(cpus)} 0 0 1000 0 0 0 0 0 0" for c in cpus]
    path.write_text("\n".join(lines) + "\n")


def test_cpu_load_subtracts_this_process_and_counts_only_busy_time(tmp_path):
    stat = tmp_path / "stat"
    _stat(stat, 0)
    load = CpuLoad(str(stat))
    t0 = time.perf_counter()
    own0 = time.process_time()
    while time.perf_counter() - t0 < 0.3:  # burn CPU ourselves: it must not count
        pass
    own = time.process_time() - own0
    # the machine's counters rose by our own time plus 0.5 cores' worth of another process
    wall = time.perf_counter() - t0
    _stat(stat, int((own + 0.5 * wall) * load.hz))
    busy = load.busy_elsewhere()
    assert busy == pytest.approx(0.5, abs=0.15)


class _Load:
    """A scripted CpuLoad: each reading returns the next value."""

    available = True

    def __init__(self, values):
        self.values, self.last = list(values), (0.0, 0.0, time.perf_counter() - 1)

    def busy_elsewhere(self):
        return self.values.pop(0)


class _Trainer:
    iteration = 0

    class game:
        class tracker:
            rows = []

            @classmethod
            def log(cls, it, scalars, kind):
                cls.rows.append((kind, scalars))


def test_governor_steps_down_at_once_and_up_after_two_readings():
    logs = []
    gov = ThreadGovernor(period=0.0, log=logs.append, load=_Load([0.0, 1.2, 0.1, 0.1, 0.1]))
    gov.cores = 2
    before = torch.get_num_threads()
    try:
        gov.on_start(_Trainer, 10)
        assert gov.threads == 2 and torch.get_num_threads() == 2
        gov.on_iteration(_Trainer)  # another run started: down at once
        assert gov.threads == 1 and torch.get_num_threads() == 1
        gov.on_iteration(_Trainer)  # one quiet reading is not enough
        assert gov.threads == 1
        gov.on_iteration(_Trainer)  # two in a row: back up
        assert gov.threads == 2
    finally:
        torch.set_num_threads(before)
    assert logs[0].startswith("threads: 2 (auto: 2 cores")
    assert logs[1] == "threads: 2 -> 1 (1.2 of 2 cores busy with other processes)"
    assert [r for r in _Trainer.game.tracker.rows if r[0] == "system"][-3:] == [
        ("system", {"threads": 2}), ("system", {"threads": 1}), ("system", {"threads": 2})]


def test_fixed_threads_are_set_and_never_changed():
    logs = []
    gov = ThreadGovernor(fixed=1, period=0.0, log=logs.append)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        gov.on_start(_Trainer, 10)
        gov.on_iteration(_Trainer)
        assert torch.get_num_threads() == 1 and gov.load is None
    finally:
        torch.set_num_threads(before)
    assert logs == ["threads: 1 (fixed by train.threads or GANLAB_THREADS)"]


def test_a_run_says_what_it_chose_and_logs_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GANLAB_THREADS"}
    cmd = [sys.executable, "-m", "ganlab", "train", "ring8", "--out", str(tmp_path / "r")]
    for s in ["model.generator.args={hidden: 16, layers: 2}", "data.args={n: 512}",
              "data.batch_size=32", "train.iterations=5", "train.progress=false"]:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"ganlab: threads: " in p.stderr and f"auto: {usable_cores()} cores" in p.stderr
    rows = (tmp_path / "r" / "metrics.jsonl").read_text()
    assert '"kind": "system", "threads": ' in rows


def test_sweeps_fix_the_thread_count_per_run(tmp_path):
    from ganlab.sweep import sweep
    logs = []
    sweep("ring8", 1, [], tmp_path / "s", jobs=2,
          overrides=["train.iterations=2", "model.generator.args={hidden: 8, layers: 1}",
                     "model.discriminator.args={hidden: 8, layers: 1}", "data.args={n: 256}",
                     "data.batch_size=16", "train.progress=false"], log=logs.append)
    assert any(f"{max(1, usable_cores() // 2)} thread(s) each" in line for line in logs)
    cfg = (tmp_path / "s" / "baseline" / "seed0" / "config.yaml").read_text()
    assert f"threads: {max(1, usable_cores() // 2)}" in cfg
