"""The interactive emulator's quality bar (issue 17): train a preset on 2 CPU cores and score it
on test splits recorded from streams no training run uses: one played by the training player
(another seed) and one by the other player, plus a rollout of the random player.

Columns are the spec's interactive metrics (docs/TETRIS_RULES.md): board accuracy per event type
over the non-spawn transitions (the lowest of the five is shown, with the event), line-clear
accuracy, spawn recall / precision / validity, piece TV over ``--samples`` draws per spawn input,
and rollout legality over ``--events`` events. One JSON line per evaluation goes to ``--out``.

Usage:
  python bench/tetris_play_quality.py [--presets tetris-play] [--seeds 0] [--test 5000]
      [--samples 50] [--events 10000] [--set KEY=VALUE ...] [--out FILE] [--save DIR]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ganlab import Game, load_config
from ganlab.tetris.interactive import EVENT_NAMES
from ganlab.tetris.interactive_recordings import record_transitions
from ganlab.tetris.play_emulator import evaluate_transitions, rollout

TEST_SEED = 20261202  # training records with [run seed, 0]: never this stream

BARS = [("min_board_accuracy", "min board acc (event)", ">= 0.99"),
        ("line_clear_accuracy", "line clears", ">= 0.98"),
        ("spawn_recall", "spawn recall", ">= 0.99"), ("spawn_precision", "spawn prec.", ">= 0.99"),
        ("spawn_validity", "validity", ">= 0.99"), ("piece_tv", "piece TV", "<= 0.05")]


def fmt(v, digits=4):
    return "undefined" if v is None else f"{v:.{digits}f}"


def ok(v, bar):
    op, thr = bar.split()
    return v is not None and (v >= float(thr) if op == ">=" else v <= float(thr))


def score(game, test, samples) -> dict:
    boards, events = test
    m = evaluate_transitions(game, boards, events, diversity_samples=samples, seed=1)
    accs = {e: m[f"board_accuracy_{e}"] for e in EVENT_NAMES
            if m.get(f"board_accuracy_{e}") is not None}
    worst = min(accs, key=accs.get) if accs else None
    m["min_board_accuracy"] = accs[worst] if worst else None
    m["worst_event"] = worst
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="tetris-play")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--test", type=int, default=5000)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", default="bench/results/tetris-play-quality.jsonl")
    ap.add_argument("--save", metavar="DIR", help="also save each trained emulator as "
                    "DIR/PRESET-seedS.pt (for ganlab tetris play/rollout)")
    args = ap.parse_args()
    tests = {p: record_transitions(args.test, np.random.default_rng([TEST_SEED, i]), p)
             for i, p in enumerate(("human", "random"))}
    print(f"# test splits: {args.test} transitions each, human and random players, streams "
          f"[{TEST_SEED}, 0/1]; torch {torch.__version__}")
    head = ["preset", "seed", "iterations", "train s", "test player"] + \
        [f"{name} ({bar})" for _, name, bar in BARS] + ["rollout legal (>= 0.99)", "meets bar"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for preset in args.presets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg = load_config(preset, [f"seed={seed}", "train.progress=false",
                                       "train.eval_every=0"] + args.set)
            game = Game.from_config(cfg)
            t0 = time.perf_counter()
            game.play(cfg.train.iterations - game.iteration)
            if args.save:
                Path(args.save).mkdir(parents=True, exist_ok=True)
                print(f"  saved {game.save(Path(args.save) / f'{preset}-seed{seed}.pt')}")
            roll = rollout(game, args.events, seed=2)
            counts = {}
            for player, test in tests.items():
                m = score(game, test, args.samples)
                counts[player] = m.get("piece_counts")
                good = all(ok(m.get(k), bar) for k, _, bar in BARS) and roll["legality"] >= 0.99
                row = {"preset": preset, "seed": seed, "test_player": player,
                       "train_player": cfg.data.args.get("player", "human"),
                       "iterations": game.iteration, "train_seconds": game.elapsed(),
                       "rollout_legality": roll["legality"], "rollout_games": roll["games"],
                       "overrides": args.set, "date": time.strftime("%Y-%m-%d"),
                       "torch": torch.__version__, "threads": torch.get_num_threads(),
                       **{k: v for k, v in m.items() if k != "piece_counts"},
                       "piece_counts": m.get("piece_counts"), "meets_bar": good}
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
                cells = [fmt(m.get(k)) + (f" ({m['worst_event']})" if k == "min_board_accuracy"
                                          else "") for k, _, _ in BARS]
                print(f"| {preset} | {seed} | {game.iteration} | {game.elapsed():.0f} | {player} | "
                      + " | ".join(cells) + f" | {fmt(roll['legality'])} | "
                      f"{'yes' if good else 'no'} |", flush=True)
            print(f"  ({preset} seed {seed}: {time.perf_counter() - t0:.0f} s with evaluation; "
                  f"piece counts per test split {counts}; rollout games {roll['games']})",
                  flush=True)


if __name__ == "__main__":
    main()
