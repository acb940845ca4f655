"""Where a trained classic emulator goes wrong: its invalid spawns on the bench's test split and
its illegal rollout transitions, each sorted by the board it was given.

Takes a game saved by ``bench/tetris_quality.py --save DIR`` (``DIR/PRESET-seedS.pt``) and the
same ``--set`` overrides that trained it (the networks and tricks must match the checkpoint).
Prints three tables:

- invalid predicted spawns on the test split (one prediction per pair, as the bench scores
  them): a stack in row 1 (board t holds a locked cell there), a change below the spawn rows,
  or a wrong shape in the spawn rows on a clean board;
- the rollout's illegal transitions (the bench's rollout: same seed, same frames), grouped into
  error events (a run of illegal transitions in a row counts once) and by the top row of
  board t's stack at the event: row ``rows - 2`` is one piece on the floor, the board every
  game passes through after its first lock;
- each piece alone on the floor (the first-lock board of a game that starts with it): the
  share of G's samples there that are a legal spawn.

Usage:
  python bench/tetris_errors.py SAVED.pt [--preset tetris] [--set KEY=VALUE ...]
      [--test 5000] [--frames 5000] [--show 3] [--lock-samples 200]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ganlab import Game, load_config
from ganlab.tetris.evaluate import predict
from ganlab.tetris.metrics import predicted_spawns, spawn_piece
from ganlab.tetris.pieces import CLASSIC
from ganlab.tetris.recordings import record_pairs
from ganlab.tetris.rollout import rollout

sys.path.insert(0, str(Path(__file__).parent))
from tetris_quality import TEST_SEED  # noqa: E402  (the bench's test split)


def draw(a: np.ndarray, b: np.ndarray) -> str:
    return "\n".join("".join(".#"[v] for v in ra) + "    " + "".join(".#"[v] for v in rb)
                     for ra, rb in zip(a, b))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("saved")
    ap.add_argument("--preset", default="tetris")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--test", type=int, default=5000)
    ap.add_argument("--frames", type=int, default=5000)
    ap.add_argument("--show", type=int, default=3, help="error events drawn (board t | G's)")
    ap.add_argument("--lock-samples", type=int, default=200,
                    help="samples of G per first-lock board")
    args = ap.parse_args()
    cfg = load_config(args.preset, ["train.progress=false", "train.eval_every=0"] + args.set)
    game = Game.from_config(cfg).load(args.saved)
    pieces, k = CLASSIC, CLASSIC.spawn_rows

    test = record_pairs(args.test, np.random.default_rng(TEST_SEED), pieces=pieces)
    x = test[:, 0].astype(np.int32)
    p = predict(game, x, 1, 1)[:, 0].astype(np.int32)  # the bench's predictions (seed 1)
    kinds = Counter()
    for i in np.nonzero(predicted_spawns(x, p))[0]:
        if spawn_piece(x[i], p[i], pieces)[0] >= 0:
            kinds["valid"] += 1
        elif x[i, 1].any():
            kinds["invalid: stack in row 1"] += 1
        elif (p[i, k:] != x[i, k:]).any():
            kinds["invalid: a change below the spawn rows"] += 1
        else:
            kinds["invalid: wrong shape on a clean board"] += 1
    print(f"# {args.saved}: {sum(kinds.values())} predicted spawns on the test split")
    print("| predicted spawn | count |\n|---|---|")
    for name, n in sorted(kinds.items()):
        print(f"| {name} | {n} |")

    r = rollout(game, args.frames, seed=2, pieces=pieces, keep_errors=True)
    events, last, shown = Counter(), -2, 0
    for t, b, a in r["errors"]:
        if t != last + 1:  # a new error event, not the run of one going on
            top = int(np.argmax(b.any(1))) if b.any() else pieces.rows
            events[top] += 1
            if shown < args.show:
                print(f"\nerror event at transition {t}, stack top row {top} (board t | G's):")
                print(draw(b, a))
                shown += 1
        last = t
    illegal = len(r["errors"])
    print(f"\n# rollout: {r['frames']} transitions, {r['legal']} legal; {illegal} illegal in "
          f"{sum(events.values())} error events (a run of illegal transitions counts once)")
    print("| stack top row of board t | error events |\n|---|---|")
    for top, n in sorted(events.items()):
        note = " (two rows high: after a first lock)" if top == pieces.rows - 2 else ""
        print(f"| {top}{note} | {n} |")

    # the board every game passes through and the original layout never has as a board t
    print(f"\n# first-lock boards: each piece alone on the floor (where its spawn columns put "
          f"it); share of {args.lock_samples} samples of G that are a legal spawn")
    print("| piece | " + " | ".join(pieces.names) + " |\n|---|" + "---|" * len(pieces))
    shares = []
    for mask in pieces.masks.astype(bool):
        height = int(np.nonzero(mask.any(1))[0].max()) + 1
        board = np.zeros((pieces.rows, pieces.cols), np.int32)
        board[pieces.rows - height:] = mask[:height]
        out = predict(game, board[None], args.lock_samples, seed=3)[0].astype(np.int32)
        shares.append(np.mean([spawn_piece(board, o, pieces)[0] >= 0 for o in out]))
    print("| legal spawns | " + " | ".join(f"{v:.2f}" for v in shares) + " |")


if __name__ == "__main__":
    main()
