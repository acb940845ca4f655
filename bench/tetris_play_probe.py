"""How far the interactive emulator's generator gets on the game's determined part with plain
supervision: a diagnostic for issue 17, which separates the network from the GAN.

A preset's G (its config, its data) is trained for ``--seconds`` of wall time on cross-entropy
to the true board t+1 alone: no D, no noise (the code is zeros), Adam with the preset's G
settings and a linear decay over the time budget. On spawns only rows 0-1 (the new piece, the
random part) are left out of the loss. Then board accuracy per event over the non-spawns and
line-clear accuracy (rows 2-21 of the spawns that clear rows) are measured on the first
``--eval`` training transitions and on a test split from the stream the quality bench uses
(``bench/tetris_play_quality.py``, [20261202, 0], the preset's player). A network that cannot
reach the bars this way cannot reach them as a GAN either; train and test agreeing says it
underfits rather than overfits (more data would not help).

The rules are used only to judge and to find the spawns whose rows 0-1 are left out.

Usage:
  python bench/tetris_play_probe.py [--preset tetris-play] [--seconds 240] [--set KEY=VALUE ...]
      [--test 2000] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from ganlab import load_config
from ganlab.data import load_dataset
from ganlab.game import build_model
from ganlab.tetris.encoding import to_boards
from ganlab.tetris.interactive import EVENT_NAMES, N_CELLS
from ganlab.tetris.interactive_metrics import EVENT_KEYS, actual_spawns, emulator_metrics
from ganlab.tetris.interactive_recordings import record_transitions
from ganlab.tetris.play_emulator import decode_events, encode

TEST_SEED = 20261202  # the quality bench's test stream; no training run records from it


def accuracies(G, boards, events, latent_dim, batch=500) -> dict:
    """The spec's board accuracy per event over the non-spawns and line-clear accuracy
    (``emulator_metrics``) of G's predictions with the code at zeros."""
    x = boards[:, 0]
    G.eval()
    with torch.no_grad():
        p = torch.cat([to_boards(G(torch.zeros(len(x[i:i + batch]), latent_dim),
                                   encode(x[i:i + batch], events[i:i + batch])))
                       for i in range(0, len(x), batch)]).numpy()
    G.train()
    m = emulator_metrics(x, events, boards[:, 1], p)
    out = {name: m[f"board_accuracy_{key}"] for name, key in zip(EVENT_NAMES, EVENT_KEYS)}
    out["line clears"] = m["line_clear_accuracy"]
    out["n line clears"] = m["line_clears"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tetris-play")
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--eval", type=int, default=2000)
    ap.add_argument("--out", default="bench/results/tetris-play-probe.jsonl")
    args = ap.parse_args()
    cfg = load_config(args.preset, ["train.progress=false"] + args.set)
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.data.name, cfg.data.path, cfg.data.args, seed=cfg.seed)
    G = build_model(cfg.model.generator, "model.generator", data.task.model_args(data),
                    latent_dim=cfg.latent.dim)
    latent = cfg.latent.dim
    # the training transitions as boards again (the dataset holds one-hot maps)
    x = to_boards(data.conditions[:, :N_CELLS]).numpy()
    ev = decode_events(data.conditions).numpy()
    y = data.examples.argmax(1)
    boards = np.stack([x, y.numpy().astype(x.dtype)], 1)
    spawn = torch.as_tensor(actual_spawns(x, ev, boards[:, 1]))
    mask = torch.ones(len(x), x.shape[1], 1)
    mask[spawn, :2] = 0  # the new piece is the random part: not supervised
    test = record_transitions(args.test, np.random.default_rng([TEST_SEED, 0]),
                              cfg.data.args.get("player", "human"))
    o = cfg.optim.g
    opt = torch.optim.Adam(G.parameters(), o.lr, betas=tuple(o.betas))
    gen = torch.Generator().manual_seed(cfg.seed)
    t0, it = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - t0) < args.seconds:
        for group in opt.param_groups:
            group["lr"] = o.lr * max(0.0, 1 - elapsed / args.seconds)
        idx = torch.randint(0, len(x), (cfg.data.batch_size,), generator=gen)
        pred = G(torch.zeros(len(idx), latent), data.conditions[idx])
        nll = F.nll_loss(torch.log(pred.clamp_min(1e-8)), y[idx], reduction="none")
        loss = (nll * mask[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
    seconds = time.perf_counter() - t0
    rows = {"train": accuracies(G, boards[:args.eval], ev[:args.eval], latent),
            "test": accuracies(G, *test, latent)}
    names = list(EVENT_NAMES) + ["line clears"]
    print(f"# {args.preset} {' '.join(args.set)}: {it} iterations in {seconds:.0f} s, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")
    print("| split | " + " | ".join(names) + " | line-clear spawns |")
    print("|---|" + "---|" * (len(names) + 1))
    for split, m in rows.items():
        cells = ["undefined" if m.get(k) is None else f"{m[k]:.4f}" for k in names]
        print(f"| {split} | " + " | ".join(cells) + f" | {m['n line clears']} |")
        with open(args.out, "a") as f:
            f.write(json.dumps({"preset": args.preset, "overrides": args.set, "split": split,
                                "iterations": it, "seconds": seconds,
                                "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
                                "threads": torch.get_num_threads(), **m}) + "\n")


if __name__ == "__main__":
    main()
