"""DiffAugment where it matters: MNIST cut to 1,000 training images, with and without it.

Each run trains a preset (default ``mnist-dcgan``) on the first 1,000 training digits
(``data.args.limit``) for ``--iterations``, with and without the ``diffaugment`` trick, for
every seed, then scores it with ``ganlab evaluate`` (10,000 samples): IS, FID against the full
10,000-digit test set and class KL on the shipped classifier's features, with the real-vs-real
floors. Runs go two at a time with one thread each; an interrupted bench resumes from --out.

Usage: python bench/diffaugment.py [--seeds 0,1,2] [--iterations 3000] [--preset mnist-dcgan]
MNIST must be on disk (make mnist).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VARIANTS = {"without": [], "diffaugment": ["regularizers=[{name: diffaugment}]"]}


def run_one(preset, variant, seed, iterations, limit, root: Path, extra) -> dict:
    run = root / f"{variant}-seed{seed}"
    sets = [f"seed={seed}", f"data.args.limit={limit}", f"train.iterations={iterations}",
            "train.threads=1", "train.progress=false", "train.sample_every=1000",
            "train.checkpoint_every=1000", *VARIANTS[variant], *extra]
    if (run / "checkpoints" / "latest.pt").exists():
        cmd = [sys.executable, "-m", "ganlab", "resume", str(run)]
    else:
        cmd = [sys.executable, "-m", "ganlab", "train", preset, "--out", str(run)]
        for s in sets:
            cmd += ["--set", s]
    env = {**os.environ, "GANLAB_THREADS": "1", "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit(f"{run}: training failed\n{p.stderr[-2000:]}")
    secs = float(p.stdout.split(" iterations in ")[1].split(" s")[0]) if " iterations in " \
        in p.stdout else None
    p = subprocess.run([sys.executable, "-m", "ganlab", "evaluate", str(run), "--json",
                        str(run / "metrics.json")], capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit(f"{run}: evaluation failed\n{p.stderr[-2000:]}")
    m = json.loads((run / "metrics.json").read_text())
    return {"variant": variant, "seed": seed, "iterations": iterations, "limit": limit,
            "train_s": secs, **{k: m.get(k) for k in ("is", "fid", "fid_over_floor", "kid",
                                                      "class_kl", "precision", "recall",
                                                      "real_vs_real/fid", "real_vs_real/is")}}


def mean_se(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    return f"{statistics.fmean(xs):.3f} ± {statistics.stdev(xs) / len(xs) ** 0.5:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mnist-dcgan")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", default="runs/bench-diffaugment")
    args = ap.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    rows_path = root / "rows.jsonl"
    done = {(r["variant"], r["seed"]) for r in map(json.loads, rows_path.read_text().splitlines())
            } if rows_path.exists() else set()
    todo = [(v, int(s)) for s in args.seeds.split(",") for v in VARIANTS if (v, int(s)) not in done]
    print(f"# {len(todo)} runs to do; {args.preset}, {args.limit} training digits, "
          f"{args.iterations} iterations", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        for row in pool.map(lambda vs: run_one(args.preset, vs[0], vs[1], args.iterations,
                                               args.limit, root, args.set), todo):
            with open(rows_path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{row['variant']} seed {row['seed']}: IS {row['is']:.2f}, FID {row['fid']:.2f} "
                  f"({row['fid_over_floor']:.2f}x the floor), class KL {row['class_kl']:.4f}",
                  flush=True)
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    print("| variant | seeds | IS | FID | FID / floor | class KL | precision | recall |")
    print("|---|---|---|---|---|---|---|---|")
    for v in VARIANTS:
        rs = [r for r in rows if r["variant"] == v]
        print(f"| {v} | {len(rs)} | {mean_se([r['is'] for r in rs])} | "
              f"{mean_se([r['fid'] for r in rs])} | {mean_se([r['fid_over_floor'] for r in rs])} "
              f"| {mean_se([r['class_kl'] for r in rs])} | {mean_se([r['precision'] for r in rs])}"
              f" | {mean_se([r['recall'] for r in rs])} |")
    floor = [r["real_vs_real/fid"] for r in rows if r.get("real_vs_real/fid")]
    if floor:
        print(f"\nreal-vs-real FID floor: {statistics.fmean(floor):.3f} (10,000 training digits "
              "against the test set)")


if __name__ == "__main__":
    main()
