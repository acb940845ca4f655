"""Mode collapse on the PacGAN protocol: every trick, one at a time and combined, on the ring of 8
Gaussians (std 0.01) and the grid of 25 (std 0.05), several seeds each.

For each (dataset, variant, seed) it trains the preset (PacGAN-sized MLPs: G 4x400 ReLU+BN,
D 3x200), draws 2,500 samples and records modes captured, % high-quality samples (within 3 std
of their nearest mode) and reverse KL of the mode histogram, with the run's wall time. The table
gives mean +- standard error across seeds. Results go to ``--out`` as JSONL, one line per run;
runs already there are skipped, so an interrupted benchmark resumes.

Usage:
  python bench/mode_collapse.py [--datasets ring8,grid25] [--variants all|NAME,...]
      [--seeds 0,1,2,3,4] [--jobs 2] [--device cpu] [--set KEY=VALUE ...] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

# each variant: overrides on top of the dataset's preset
VARIANTS = {
    "baseline": [],
    "label-smoothing": ["regularizers=[{name: label-smoothing, args: {real: 0.9}}]"],
    "noisy-labels": ["regularizers=[{name: noisy-labels}]"],
    "flip-labels": ["regularizers=[{name: flip-labels, args: {p: 0.05}}]"],
    "instance-noise": ["regularizers=[{name: instance-noise, args: {std: 0.1, anneal_iters: 6000}}]"],
    "replay-buffer": ["regularizers=[{name: replay-buffer, args: {size: 2560, ratio: 0.25}}]"],
    "r1": ["regularizers=[{name: r1, args: {weight: 1.0}}]"],
    "r2": ["regularizers=[{name: r2, args: {weight: 1.0}}]"],
    "spectral-norm": ["regularizers=[{name: spectral-norm}]"],
    "feature-matching": ["regularizers=[{name: feature-matching, args: {replace: false}}]"],
    "historical-averaging": ["regularizers=[{name: historical-averaging, args: {weight: 1.0e-4}}]"],
    "ema": ["regularizers=[{name: ema, args: {decay: 0.999}}]"],
    "pack2": ["regularizers=[{name: pack, args: {m: 2}}]",
              "model.discriminator.args={hidden: 200, layers: 3, in_dim: 4}"],
    "ttur": ["optim.d.lr=3.0e-3", "optim.g.lr=1.0e-3"],
    "virtual-batch-norm": ["regularizers=[{name: virtual-batch-norm, args: {size: 64}}]"],
    "layer-norm-g": ["model.generator.args={hidden: 400, layers: 4, norm: layer}"],
    # the strongest found so far (exploration of 2026-11-22, see BENCHMARKS.md): R1 gives full,
    # uniform coverage on both mixtures; longer training at a lower lr raises sample quality
    "best": ["regularizers=[{name: r1, args: {weight: 1.0}}]", "optim.g.lr=5.0e-4",
             "optim.d.lr=5.0e-4", "train.iterations=24000"],
    # discriminator rejection sampling: training is R1's / best's, samples are filtered
    "r1+drs": ["regularizers=[{name: r1, args: {weight: 1.0}}, "
               "{name: discriminator-rejection, args: {calibrate: 5000}}]"],
    "best+drs": ["regularizers=[{name: r1, args: {weight: 1.0}}, "
                 "{name: discriminator-rejection, args: {calibrate: 10000}}]",
                 "optim.g.lr=5.0e-4", "optim.d.lr=5.0e-4", "train.iterations=24000"],
    # Jacobian truncation: best's training; the 10% of draws with the largest ||J_G(z)||_F,
    # the latents G stretches across the gaps between modes, are drawn again
    "best+jt": ["regularizers=[{name: r1, args: {weight: 1.0}}, "
                "{name: jacobian-truncation, args: {keep: 0.9}}]",
                "optim.g.lr=5.0e-4", "optim.d.lr=5.0e-4", "train.iterations=24000"],
}


def run_one(dataset: str, variant: str, seed: int, extra: list[str], device: str,
            threads: int) -> dict:
    import torch

    from ganlab import Game, load_config
    from ganlab.hooks import SampleFilter
    from ganlab.metrics.modes import mode_metrics

    torch.set_num_threads(threads)
    cfg = load_config(dataset, [f"seed={seed}", "train.progress=false", f"train.device={device}",
                                f"train.threads={threads}"] + VARIANTS[variant] + list(extra))
    game = Game.from_config(cfg)
    t0 = time.perf_counter()
    game.play(cfg.train.iterations)
    wall = time.perf_counter() - t0
    task = game.data.task
    t0 = time.perf_counter()
    x = game.sample(2500).cpu()
    sample_s = time.perf_counter() - t0
    m = mode_metrics(x, task.modes, task.std)
    row = {"dataset": dataset, "variant": variant, "seed": seed, "extra": list(extra),
           "iterations": game.iteration, "modes": m["modes_captured"],
           "modes_total": m["modes_total"], "high_quality": 100 * m["high_quality"],
           "reverse_kl": m["reverse_kl"], "wall_s": wall, "device": device}
    filters = game.tricks[SampleFilter]
    if filters:  # rejection sampling: its cost, its acceptance and the unfiltered samples
        plain = mode_metrics(game.sample(2500, reject=False).cpu(), task.modes, task.std)
        row.update(sample_s=sample_s, acceptance=filters[0].acceptance,
                   plain={"modes": plain["modes_captured"],
                          "high_quality": 100 * plain["high_quality"],
                          "reverse_kl": plain["reverse_kl"]})
    return row


def _define(variants: dict) -> None:
    """Worker start-up: variants defined on the command line exist in every process."""
    VARIANTS.update(variants)


def mean_se(xs) -> str:
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return "n/a"
    m = statistics.fmean(xs)
    if len(xs) == 1:
        return f"{m:.2f}"
    return f"{m:.2f} ± {statistics.stdev(xs) / math.sqrt(len(xs)):.2f}"


def table(rows: list[dict]) -> str:
    out = ["| dataset | variant | seeds | modes captured | high-quality % | reverse KL | "
           "all modes in every seed | wall s/run |", "|---|---|---|---|---|---|---|---|"]
    keys = []
    for r in rows:
        if (r["dataset"], r["variant"]) not in keys:
            keys.append((r["dataset"], r["variant"]))
    # a rejection-sampling variant also shows its own runs' samples before rejection
    rows = rows + [{**r, **r["plain"], "variant": f"{r['variant']} (no rejection)"}
                   for r in rows if "plain" in r]
    for ds, var in list(keys):
        if any(r["variant"] == var and "plain" in r for r in rows):
            keys.insert(keys.index((ds, var)) + 1, (ds, f"{var} (no rejection)"))
    for ds, var in keys:
        rs = [r for r in rows if r["dataset"] == ds and r["variant"] == var]
        every = all(r["modes"] == r["modes_total"] for r in rs)
        out.append(f"| {ds} | {var} | {len(rs)} | {mean_se([r['modes'] for r in rs])} / "
                   f"{rs[0]['modes_total']} | {mean_se([r['high_quality'] for r in rs])} | "
                   f"{mean_se([r['reverse_kl'] for r in rs])} | {'yes' if every else 'no'} | "
                   f"{statistics.fmean(r['wall_s'] for r in rs):.0f} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="ring8,grid25")
    ap.add_argument("--variants", default="all")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    ap.add_argument("--threads", type=int, default=1, help="torch threads per job")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", default="runs/bench-mode-collapse.jsonl")
    ap.add_argument("--define", action="append", default=[], metavar="NAME=OVERRIDE;OVERRIDE",
                    help="an extra variant, e.g. 'ema-pack=regularizers=[...];optim.g.lr=2e-3'")
    args = ap.parse_args()
    for spec in args.define:
        name, _, body = spec.partition("=")
        VARIANTS[name] = [o for o in body.split(";") if o]
    variants = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v!r}; valid: {', '.join(VARIANTS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    have = {(r["dataset"], r["variant"], r["seed"], tuple(r["extra"])) for r in done}
    todo = [(d, v, int(s)) for d in args.datasets.split(",") for v in variants
            for s in args.seeds.split(",") if (d, v, int(s), tuple(args.set)) not in have]
    print(f"# {len(todo)} runs to do, {len(done)} on file ({out}); {args.jobs} jobs x "
          f"{args.threads} threads on {args.device}", flush=True)
    with ProcessPoolExecutor(args.jobs, initializer=_define, initargs=(dict(VARIANTS),)) as pool, \
            open(out, "a") as fh:
        futs = {pool.submit(run_one, d, v, s, args.set, args.device, args.threads): (d, v, s)
                for d, v, s in todo}
        for fut in as_completed(futs):
            r = fut.result()
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            done.append(r)
            print(f"{r['dataset']} {r['variant']} seed {r['seed']}: {r['modes']}/"
                  f"{r['modes_total']} modes, {r['high_quality']:.1f}% HQ, "
                  f"{r['wall_s']:.0f}s", flush=True)
    wanted = [r for r in done if r["variant"] in variants and tuple(r["extra"]) == tuple(args.set)
              and r["dataset"] in args.datasets.split(",")]
    print(table(wanted))


if __name__ == "__main__":
    main()
