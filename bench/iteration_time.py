"""How long one training iteration of a preset takes on this machine, whole (data, D's and G's
steps, every trick's hooks), after a warm-up: the median of ``--blocks`` timed blocks of
``--block`` iterations each, for the preset as it is and for each ``--variant`` (a ``;``-separated
list of ``KEY=VALUE`` overrides). Where a trick changes what it does partway through (the
``codes: clustered`` reader fits at its warm-up's end), ``--warm`` must reach past that point.

A speed probe only: it says nothing about what a variant does to quality (the quality benches
do), and it must run alone on the machine (another training process skews it several times).

Usage:
  python bench/iteration_time.py --preset tetris-learnt --warm 800 \\
      --variant 'train.reuse_fakes=true'
  python bench/iteration_time.py --preset tetris-play --warm 20 \\
      --variant 'model.generator.args.shift_heads=4' --variant 'train.precision=bfloat16'
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from ganlab import Game, load_config


def time_variant(preset: str, sets: list[str], warm: int, block: int, blocks: int) -> dict:
    cfg = load_config(preset, ["train.progress=false", "train.eval_every=0"] + sets)
    game = Game.from_config(cfg)
    game.play(warm)
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        game.play(block)
        times.append((time.perf_counter() - t0) / block)
    return {"median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times),
            "max_ms": 1000 * max(times), "threads": torch.get_num_threads()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tetris-play")
    ap.add_argument("--variant", action="append", default=[],
                    help="';'-separated KEY=VALUE overrides; repeat for more variants")
    ap.add_argument("--set", action="append", default=[], help="applied to every variant")
    ap.add_argument("--warm", type=int, default=20, help="iterations played before timing")
    ap.add_argument("--block", type=int, default=20)
    ap.add_argument("--blocks", type=int, default=5)
    args = ap.parse_args()
    print(f"# {args.preset}, {args.warm} warm-up iterations, then {args.blocks} blocks of "
          f"{args.block}; torch {torch.__version__}")
    print("| variant | threads | median ms / iteration | fastest block | slowest block | vs first |")
    print("|---|---|---|---|---|---|")
    first = None
    for variant in ["", *args.variant]:
        sets = args.set + [s.strip() for s in variant.split(";") if s.strip()]
        r = time_variant(args.preset, sets, args.warm, args.block, args.blocks)
        first = first or r["median_ms"]
        print(f"| {variant or 'the preset'} | {r['threads']} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | "
              f"{r['max_ms']:.1f} | {r['median_ms'] / first:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
