"""MNIST sample quality against issue 5's bar: train a preset (default ``mnist-best``) on this
machine, then score 10,000 samples on the shipped domain classifier against the MNIST test set,
beside the real-vs-real floor (10,000 training images in place of the samples).

Bar: classifier IS >= 9.3, FID <= 2.5 x the floor, class-histogram KL <= 0.01, with at most
``--budget`` seconds (30 minutes) of training. One JSON line per run goes to ``--out``.

Usage:
  python bench/mnist_quality.py [--preset mnist-best] [--seeds 0] [--data data/mnist]
      [--budget 1800] [--n 10000] [--set KEY=VALUE ...] [--runs DIR] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganlab import load_config
from ganlab.evaluation import evaluate_run
from ganlab.run import train

BAR = {"is": 9.3, "fid_over_floor": 2.5, "class_kl": 0.01}


def meets_bar(m: dict, seconds: float, budget: float) -> bool:
    return (m["is"] >= BAR["is"] and m["fid_over_floor"] <= BAR["fid_over_floor"]
            and m["class_kl"] <= BAR["class_kl"] and seconds <= budget)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mnist-best")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--budget", type=float, default=1800)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--runs", default="runs/bench-mnist")
    ap.add_argument("--out", default="bench/results/mnist-quality.jsonl")
    args = ap.parse_args()
    print(f"# {args.preset}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"bar: IS >= {BAR['is']}, FID <= {BAR['fid_over_floor']} x floor, "
          f"KL <= {BAR['class_kl']}, training <= {args.budget:.0f} s")
    print("| preset | seed | iterations | train s | IS | FID | floor FID | FID / floor | "
          "precision | recall | class KL | meets bar |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in [int(s) for s in args.seeds.split(",")]:
        cfg = load_config(args.preset, [f"seed={seed}", f"data.path={args.data}",
                                        "train.progress=false"] + args.set)
        run_dir = Path(args.runs) / f"{args.preset}-{seed}"
        t0 = time.perf_counter()
        game = train(cfg, run_dir)
        seconds = game.elapsed()
        m = evaluate_run(run_dir, n=args.n)
        row = {"preset": args.preset, "seed": seed, "iterations": game.iteration,
               "train_seconds": seconds, "wall_seconds": time.perf_counter() - t0,
               "overrides": args.set, "date": time.strftime("%Y-%m-%d"),
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               **{k: v for k, v in m.items() if k != "class_counts"},
               "class_counts": m.get("class_counts"),
               "meets_bar": meets_bar(m, seconds, args.budget)}
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"| {args.preset} | {seed} | {game.iteration} | {seconds:.0f} | {m['is']:.2f} | "
              f"{m['fid']:.2f} | {m['real_vs_real/fid']:.2f} | {m['fid_over_floor']:.2f} | "
              f"{m['precision']:.3f} | {m['recall']:.3f} | {m['class_kl']:.4f} | "
              f"{'yes' if row['meets_bar'] else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
