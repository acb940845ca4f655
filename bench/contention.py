"""Training speed alone and beside a second training on the same machine.

For each preset, ``ganlab train PRESET`` with the default settings is timed (the ms/iter it
reports) alone, and then while a second ``ganlab train`` of the same preset, started first, is
training; the second run's own speed over the overlap is read from its ``metrics.jsonl``. The
same is measured with the thread count fixed at one per core (``train.threads`` = cores), which
is what torch does by default and what ganlab did before it chose its threads.

The bar (issue 18): beside another run, each default run stays within 2.5x of its time alone,
and alone it is no slower than the fixed one-per-core count.

Usage: python bench/contention.py [--presets ring8,mnist-dcgan,tetris] [--modes default,fixed]
mnist-dcgan trains on a generated MNIST-shaped data set (speed does not depend on the digits).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ITERS = {"ring8": 400, "mnist-dcgan": 60, "tetris": 60, "mnist-best": 100, "grid25": 400}


def fake_mnist(folder: Path, n: int = 4096) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", n), ("t10k", 512)):
        x = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, count, dtype=np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            head = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
            (folder / f"{prefix}-{kind}-ubyte").write_bytes(head + arr.tobytes())
    return folder


def command(preset: str, out: Path, iters: int, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "ganlab", "train", preset, "--out", str(out),
           "--set", f"train.iterations={iters}", "--set", "train.progress=false"]
    for s in extra:
        cmd += ["--set", s]
    return cmd


def timed_run(preset: str, out: Path, iters: int, extra: list[str]) -> tuple[float, str]:
    p = subprocess.run(command(preset, out, iters, extra), capture_output=True, text=True,
                       env=ENV)
    m = re.search(r"\(([\d.]+) ms/iter\)", p.stdout)
    if p.returncode or not m:
        raise SystemExit(f"{preset}: training failed:\n{p.stderr[-2000:]}")
    threads = re.findall(r"threads: (.*)", p.stderr)
    return float(m.group(1)), "; ".join(threads)


def speed_over(rows: list[dict], t0: float, t1: float) -> float | None:
    """ms/iter of a run between its wall-clock seconds t0 and t1 (metrics.jsonl rows)."""
    inside = [r for r in rows if t0 <= r["seconds"] <= t1]
    if len(inside) < 2:
        return None
    a, b = inside[0], inside[-1]
    return 1000 * (b["seconds"] - a["seconds"]) / (b["iteration"] - a["iteration"])


def beside(preset: str, work: Path, iters: int, extra: list[str]) -> tuple[float, str, float]:
    bg_dir = work / "background"
    bg = subprocess.Popen(command(preset, bg_dir, 10_000_000, extra + ["train.log_every=5",
                                                                       "train.sample_every=100000",
                                                                       "train.checkpoint_every=100000"]),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    metrics = bg_dir / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.2)
    time.sleep(2.0)  # the background run is training, its threads settled
    start_rows = _train_rows(metrics)
    started = start_rows[-1]["seconds"] if start_rows else 0.0
    try:
        ms, threads = timed_run(preset, work / "foreground", iters, extra)
    finally:
        rows = _train_rows(metrics)
        bg.kill()
        bg.wait()
    ended = rows[-1]["seconds"] if rows else 0.0
    return ms, threads, speed_over(rows, started, ended)


def _train_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("kind") == "train" and "seconds" in row:
            rows.append(row)
    return rows


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="ring8,mnist-dcgan,tetris")
    ap.add_argument("--modes", default="default,fixed")
    ap.add_argument("--repeat", type=int, default=3,
                    help="times each alone measurement is taken (modes alternating; median)")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    ENV = {k: v for k, v in os.environ.items() if k not in ("GANLAB_THREADS", "OMP_NUM_THREADS")}
    work = Path(tempfile.mkdtemp(prefix="ganlab-contention-"))
    mnist = fake_mnist(work / "mnist")
    print(f"# training beside another run; {cores} cores, {sys.platform}, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| preset | threads | alone ms/iter (median of the repeats) | beside: this run ms/iter "
          "| beside: the other run ms/iter | beside / alone | threads chosen beside |")
    print("|---|---|---|---|---|---|---|")
    try:
        for preset in args.presets.split(","):
            base = [f"data.path={mnist}"] if preset.startswith("mnist") else []
            modes = args.modes.split(",")
            extras = {m: base + ([f"train.threads={cores}"] if m == "fixed" else [])
                      for m in modes}
            alone_ms = {m: [] for m in modes}
            for _ in range(args.repeat):  # alternating, so drift of the machine hits both
                for mode in modes:
                    shutil.rmtree(work / "alone", ignore_errors=True)
                    alone_ms[mode].append(timed_run(preset, work / "alone", ITERS[preset],
                                                    extras[mode])[0])
            for mode in modes:
                extra = extras[mode]
                label = "auto (default)" if mode == "default" else f"fixed {cores} (torch's default)"
                for sub in ("background", "foreground"):
                    shutil.rmtree(work / sub, ignore_errors=True)
                alone = statistics.median(alone_ms[mode])
                ms, threads, other = beside(preset, work, ITERS[preset], extra)
                other_s = f"{other:.1f}" if other else "-"
                spread = "/".join(f"{v:.0f}" for v in alone_ms[mode])
                print(f"| {preset} | {label} | {alone:.1f} ({spread}) | {ms:.1f} | {other_s} | "
                      f"{ms / alone:.2f} | {threads or '-'} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


ENV: dict = {}

if __name__ == "__main__":
    main()
