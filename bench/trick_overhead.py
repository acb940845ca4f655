"""Per-iteration cost of each trick against the plain engine on an MNIST-sized pair.

Every variant trains the same pair (default: the CS231N MLP pair, batch 128, on random
MNIST-shaped data) from the same weights; variants are interleaved rep by rep, and the median
seconds per iteration and the ratio to the baseline are printed. The conditional lab's
hand-written historical averaging took 5x its baseline; ganlab's bar is under 1.10x.

Usage: python bench/trick_overhead.py [--pair mlp|dcgan] [--iters 30] [--reps 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from ganlab import Game
from ganlab.data import Dataset
from ganlab.models import MODELS
from ganlab.registry import TRICKS as REGISTERED

TRICKS = {
    "baseline": [],
    "historical-averaging": [("historical-averaging", {})],
    "ema": [("ema", {})],
    "spectral-norm": [("spectral-norm", {})],
    "label-smoothing": [("label-smoothing", {})],
    "instance-noise": [("instance-noise", {})],
    "replay-buffer": [("replay-buffer", {})],
    "feature-matching": [("feature-matching", {"replace": False})],
    "r1": [("r1", {})],
    "r1-lazy16": [("r1", {"interval": 16})],
}
PAIRS = {"mlp": ("cs231n-mlp-g", "cs231n-mlp-d"), "dcgan": ("cs231n-dcgan-g", "cs231n-dcgan-d")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", default="mlp", choices=list(PAIRS))
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tricks", default=",".join(TRICKS))
    args = ap.parse_args()
    data = Dataset.of(torch.rand(4096, 1, 28, 28) * 2 - 1)
    g_name, d_name = PAIRS[args.pair]
    games = {}
    for name in args.tricks.split(","):
        torch.manual_seed(0)
        G, D = MODELS.build(g_name, {"latent_dim": 96}), MODELS.build(d_name, {})
        hooks = [REGISTERED.build(n, a) for n, a in TRICKS[name]]
        games[name] = Game(G, D, data, latent_dim=96, latent_dist="uniform", tricks=hooks,
                           threads=torch.get_num_threads(),
                           lr_g=1e-3, lr_d=1e-3, batch_size=128, progress=False, log_every=100)
        games[name].play(3)
    times = {n: [] for n in games}
    for _ in range(args.reps):
        for name, game in games.items():
            t0 = time.perf_counter()
            game.play(args.iters)
            times[name].append((time.perf_counter() - t0) / args.iters)
    base = statistics.median(times["baseline"]) if "baseline" in times else None
    print(f"# trick overhead, {args.pair} pair, batch 128, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.iters} iters x {args.reps} reps (median)")
    print("| trick | s/iter | ratio to baseline |")
    print("|---|---|---|")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.4f} | {m / base:.3f} |" if base else f"| {name} | {m:.4f} | |")


if __name__ == "__main__":
    main()
