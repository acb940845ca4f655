"""The sampling filters on one trained 2-D mixture run: where its samples lie and what each filter
changes, on the same model.

For the run's samples without a filter and through each filter (added to the restored run, which
is left unchanged), it prints modes captured, % high-quality samples (within 3 std of their
nearest mode), reverse KL of the mode histogram, the share of samples by distance to their
nearest mode (3-10 std: a mode's tails; beyond 10 std: between modes), the share of draws the
filter accepts and the seconds it took to draw the samples.

Usage:
  python bench/sample_filters.py RUN_DIR [--n 10000]
      [--filter 'NAME KEY=VALUE ...'] ...   (default: the filters below)
"""
from __future__ import annotations

import argparse
import time

import torch
import yaml

FILTERS = ["discriminator-rejection calibrate=10000", "jacobian-truncation keep=0.95",
           "jacobian-truncation keep=0.9"]


def bands(x: torch.Tensor, modes: torch.Tensor, std: float) -> dict:
    r = torch.cdist(x.double(), modes.double()).min(dim=1).values / std
    return {"3-10": float(((r > 3) & (r <= 10)).double().mean()),
            ">10": float((r > 10).double().mean())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--filter", action="append", default=[], metavar="'NAME KEY=VALUE ...'")
    args = ap.parse_args()

    from ganlab.metrics.modes import mode_metrics
    from ganlab.run import open_run

    game = open_run(args.run_dir)
    task = game.data.task
    if getattr(task, "modes", None) is None:
        raise SystemExit(f"{args.run_dir}: not a run on a 2-D mixture (ring8, grid25)")
    print(f"{args.run_dir}, iteration {game.iteration}, {args.n} samples per row")
    print("| filter | modes captured | high-quality % | reverse KL | 3-10 std % | beyond 10 std % "
          "| accepted | sample s |")
    print("|---|---|---|---|---|---|---|---|")
    torch.manual_seed(0)

    def row(label: str, x: torch.Tensor, accepted: str = "", secs: str = "") -> None:
        m, b = mode_metrics(x, task.modes, task.std), bands(x, task.modes, task.std)
        print(f"| {label} | {m['modes_captured']} / {m['modes_total']} | "
              f"{100 * m['high_quality']:.2f} | {m['reverse_kl']:.4f} | {100 * b['3-10']:.2f} | "
              f"{100 * b['>10']:.2f} | {accepted} | {secs} |", flush=True)

    row("(the data itself)", game.examples[torch.randperm(len(game.examples))[:args.n]].cpu())
    for spec in [None] + (args.filter or FILTERS):
        hook = None
        if spec is not None:
            name, *kv = spec.split()
            hook = game.add_filter(name, **{k: yaml.safe_load(v) for k, v in
                                            (item.split("=", 1) for item in kv)})
        t0 = time.perf_counter()
        x = game.sample(args.n).cpu()
        secs = time.perf_counter() - t0
        row(spec or "none", x, f"{hook.acceptance:.3f}" if hook else "1", f"{secs:.1f}")
        if hook is not None:
            game.tricks.remove(hook)


if __name__ == "__main__":
    main()
