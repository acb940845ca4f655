"""How long one interactive emulator step takes for a person at the keyboard (issue 17: at most
10 ms on 2 CPU cores, median of 1,000 steps).

For each preset (or a trained RUN), it times, over ``--steps`` events of the random player on one
board at a time: the generator's forward pass alone, and a whole ``PlaySession.step`` (encode
the board and the event, G, argmax, and the legality judge behind the status line). The weights
do not change the time, so an untrained preset measures the same as a trained run.

Usage: python bench/tetris_play_latency.py [--presets tetris-play,tetris-play-original]
           [--run RUN] [--steps 1000] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ganlab import Game, load_config
from ganlab.data import Dataset
from ganlab.tetris.encoding import one_hot
from ganlab.tetris.play_emulator import TetrisPlayTask, encode, random_events
from ganlab.tetris.play_session import PlaySession


def untrained(preset: str) -> Game:
    cfg = load_config(preset, ["train.progress=false"])
    empty = np.zeros((cfg.data.batch_size, 22, 10), np.int64)
    data = Dataset(examples=one_hot(empty, 8), conditions=encode(empty, np.zeros(len(empty))),
                   task=TetrisPlayTask())
    return Game.from_config(cfg, dataset=data)


def time_game(name: str, game: Game, steps: int) -> tuple:
    session = PlaySession("model", game, seed=0)
    events = random_events(np.random.default_rng(0), steps)
    G = game.sampling_generator.eval()
    forward, whole = [], []
    with torch.no_grad():
        for e in events[:20]:  # warm-up
            session.step(int(e))
        for e in events:
            c = encode(session.board[None], np.array([e]))
            z = game.sample_latent(1)
            t0 = time.perf_counter()
            G(z, c)
            forward.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            session.step(int(e))
            whole.append(time.perf_counter() - t0)
            if session.over:
                session.new_game()
    ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
    p95 = lambda xs: 1000 * float(np.percentile(xs, 95))  # noqa: E731
    return name, ms(forward), p95(forward), ms(whole), p95(whole)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="tetris-play,tetris-play-original")
    ap.add_argument("--run", help="also time a trained run")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = [time_game(p, untrained(p), args.steps) for p in args.presets.split(",") if p]
    if args.run:
        from ganlab.tetris.cli import load_emulator
        rows.append(time_game(args.run, load_emulator(args.run), args.steps))
    print(f"# {args.steps} steps, one board each, {args.threads} threads, torch "
          f"{torch.__version__}")
    print("| emulator | G forward median ms | G forward p95 ms | session step median ms "
          "(G + judge) | session step p95 ms | bar (<= 10 ms median) |")
    print("|---|---|---|---|---|---|")
    for name, fm, fp, wm, wp in rows:
        print(f"| {name} | {fm:.2f} | {fp:.2f} | {wm:.2f} | {wp:.2f} | "
              f"{'yes' if wm <= 10 else 'no'} |")


if __name__ == "__main__":
    main()
