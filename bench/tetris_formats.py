"""How fast the Tetris emulator's networks train on this CPU in each number format: one
forward and backward of the ``tetris`` preset's G and D on a batch of boards, in float32, with
channels-last tensors, under bfloat16 autocast, and both together (``tetris-learnt``'s
``model.channels_last`` and ``train.precision: bfloat16``). A speed probe for choosing a format; it
says nothing about what each format does to quality.

Usage:
  python bench/tetris_formats.py [--batch 64] [--steps 40]
"""
from __future__ import annotations

import argparse
import time

import torch

from ganlab import load_config
from ganlab.models import MODELS
import ganlab.tetris  # noqa: F401  (registers the Tetris models)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    cfg = load_config("tetris")
    torch.manual_seed(0)
    G = MODELS.build(cfg.model.generator.name, cfg.model.generator.args)
    D = MODELS.build(cfg.model.discriminator.name, cfg.model.discriminator.args)
    n, k = args.batch, cfg.latent.dim
    x = torch.nn.functional.one_hot(torch.randint(2, (n, 22, 10)), 2).permute(0, 3, 1, 2).float()
    z = torch.nn.functional.one_hot(torch.randint(k, (n,)), k).float()

    def step(x, bf16):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            p = G(z, x)
            s = D(p, x)
        (s.float().mean() + p.float().mean()).backward()

    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, batch {n}")
    print("| format | ms per G + D forward and backward |\n|---|---|")
    for name, last, bf16 in (("float32", False, False), ("channels-last", True, False),
                             ("bfloat16 autocast", False, True),
                             ("bfloat16 autocast, channels-last", True, True)):
        fmt = torch.channels_last if last else torch.contiguous_format
        G.to(memory_format=fmt)
        D.to(memory_format=fmt)
        xx = x.contiguous(memory_format=fmt)
        for _ in range(5):
            step(xx, bf16)
        t = time.perf_counter()
        for _ in range(args.steps):
            step(xx, bf16)
        print(f"| {name} | {(time.perf_counter() - t) / args.steps * 1000:.1f} |", flush=True)


if __name__ == "__main__":
    main()
