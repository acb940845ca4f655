"""Engine overhead: ganlab's Game against a bare training loop written the way the notebooks write it.

Both train the same CS231N pair (DCGAN or MLP, batch 128, Adam lr 1e-3 betas (0.5, 0.999),
non-saturating BCE on logits) on the same in-memory MNIST-shaped data, from the same initial
weights, for ``--iters`` iterations. The two are alternated ``--reps`` times in one process and the
median seconds per iteration of each is reported, with the ratio ganlab / bare (lower is better).

Variants of the engine (``--variants``) show which speed options pay on this machine:
``default`` (foreach Adam, what a config gets unless it says otherwise), ``for-loop`` (torch's
per-parameter Adam, the notebooks' default on CPU), ``fused`` (fused Adam kernel),
``channels_last`` and ``compile`` (torch.compile of both networks).

Usage: python bench/engine_overhead.py [--iters 30] [--reps 5] [--pairs dcgan,mlp]
"""
from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch

from ganlab import Game
from ganlab.config import OptimizerConfig
from ganlab.init import apply_init
from ganlab.models import MODELS

PAIRS = {"dcgan": ("cs231n-dcgan-g", "cs231n-dcgan-d"), "mlp": ("cs231n-mlp-g", "cs231n-mlp-d")}
NOISE_DIM, BATCH, LR = 96, 128, 1e-3


def notebook_loop(G, D, data, iters, seed=0):
    """CS231N's ``run_a_gan`` body, with batches drawn from an in-memory tensor."""
    torch.manual_seed(seed)
    D_solver = torch.optim.Adam(D.parameters(), lr=LR, betas=(0.5, 0.999))
    G_solver = torch.optim.Adam(G.parameters(), lr=LR, betas=(0.5, 0.999))

    def bce(x, target):
        neg_abs = -x.abs()
        return (x.clamp(min=0) - x * target + (1 + neg_abs.exp()).log()).mean()

    perm = torch.randperm(len(data))
    pos = 0
    for it in range(iters):
        if pos + BATCH > len(data):
            perm, pos = torch.randperm(len(data)), 0
        x = data[perm[pos:pos + BATCH]]
        pos += BATCH
        D_solver.zero_grad()
        logits_real = D(x)
        fake = G(2 * torch.rand(BATCH, NOISE_DIM) - 1).detach()
        logits_fake = D(fake)
        d_total = bce(logits_real, torch.ones_like(logits_real)) + \
            bce(logits_fake, torch.zeros_like(logits_fake))
        d_total.backward()
        D_solver.step()
        G_solver.zero_grad()
        fake = G(2 * torch.rand(BATCH, NOISE_DIM) - 1)
        g_error = bce(D(fake), torch.ones_like(logits_fake))
        g_error.backward()
        G_solver.step()
        if it % 250 == 0:
            d_total.item(), g_error.item()  # the notebook prints here


def make_game(G, D, data, variant):
    impl = {"default": "auto", "for-loop": "for-loop", "fused": "fused"}.get(variant, "auto")
    opt = OptimizerConfig(lr=LR, betas=(0.5, 0.999), implementation=impl)
    return Game(G, D, data, latent_dim=NOISE_DIM, latent_dist="uniform", loss="nonsaturating",
                batch_size=BATCH, optim_g=opt, optim_d=copy.deepcopy(opt), log_every=250,
                channels_last=(variant == "channels_last"), compile=(variant == "compile"),
                progress=False, threads=torch.get_num_threads())  # the bare loop's count


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--pairs", default="dcgan,mlp")
    ap.add_argument("--variants", default="default,for-loop,fused,channels_last")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = torch.rand(8192, 1, 28, 28) * 2 - 1
    print(f"# engine overhead, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, batch {BATCH}, {args.iters} iters x "
          f"{args.reps} reps (median)")
    print("| pair | engine variant | bare loop s/iter | ganlab s/iter | ratio ganlab/bare |")
    print("|---|---|---|---|---|")
    for pair in args.pairs.split(","):
        gname, dname = PAIRS[pair]
        torch.manual_seed(0)
        G0 = apply_init(MODELS.build(gname, {"latent_dim": NOISE_DIM}), "xavier")
        D0 = apply_init(MODELS.build(dname, {}), "xavier")
        for variant in args.variants.split(","):
            bare_t, lab_t = [], []
            game = make_game(copy.deepcopy(G0), copy.deepcopy(D0), data, variant)
            game.play(3)  # warm-up (and compilation for the compile variant)
            Gb, Db = copy.deepcopy(G0), copy.deepcopy(D0)
            notebook_loop(Gb, Db, data, 3)
            for _ in range(args.reps):
                bare_t.append(timed(lambda: notebook_loop(Gb, Db, data, args.iters)) / args.iters)
                lab_t.append(timed(lambda: game.play(args.iters)) / args.iters)
            b, g = statistics.median(bare_t), statistics.median(lab_t)
            print(f"| {pair} | {variant} | {b:.4f} | {g:.4f} | {g / b:.3f} |", flush=True)


if __name__ == "__main__":
    main()
