"""What a Tetris emulator's codes mean while it learns: train a preset with a learnt reader
(``codes: clustered`` by default; BicycleGAN's ``codes: learned`` with ``--set
'regularizers=[{name: reconstruction, args: {weight: 100, codes: learned}}]'``) and, every
``--every`` iterations, print two tables on the spawns of a test split recorded from a stream
no training run uses:

- the encoder: for each true piece, how many of its spawns E gives each code ("none": the
  clustered reader saw no random outcome in the pair);
- the generator: for each code, which piece G draws under it (read by the spec's spawn ruling,
  "none" for a board that is no valid spawn) on the first ``--boards`` spawn inputs.

A learned encoder that works gives each piece its own code, and G draws that piece under it.
The piece reader is used here only to judge; nothing of it reaches training.

Usage:
  python bench/tetris_codes.py [--preset tetris] [--every 500] [--test 3000] [--boards 200]
      [--set KEY=VALUE ...]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from ganlab import Game, load_config
from ganlab.tetris.encoding import one_hot
from ganlab.tetris.recordings import record_pairs
from ganlab.tetris.rules import PIECE_NAMES
from ganlab.tetris.task import spawned_piece

TEST_SEED = [20261122, 7]  # the quality bench's test stream
CLUSTERED = "regularizers=[{name: reconstruction, args: {weight: 100, codes: clustered}}]"


def table(title: str, rows: list, cols: list, counts: np.ndarray) -> None:
    print(f"\n{title}\n| | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for name, line in zip(rows, counts):
        print(f"| {name} | " + " | ".join(str(v) for v in line) + " |")


@torch.no_grad()
def report(game, rec, x, y, piece, boards: int) -> None:
    """The two tables for the spawns ``x``, ``y`` of true pieces ``piece``."""
    k = game.latent_dim
    out = rec.encoder(x, y)  # logits (codes: learned) or a code per pair, -1 for none
    codes = out if out.dtype == torch.long else out.argmax(1)
    enc = np.zeros((len(PIECE_NAMES), k + 1), int)
    np.add.at(enc, (piece.numpy(), codes.numpy()), 1)  # -1 (seen as no spawn): the last column
    G = game.sampling_generator
    was = G.training
    G.eval()
    xs = x[:boards]
    drawn = np.zeros((k, len(PIECE_NAMES) + 1), int)
    for c in range(k):
        z = torch.nn.functional.one_hot(torch.full((len(xs),), c), k).float()
        got = spawned_piece(xs, one_hot(G(z, xs).argmax(1).numpy()))
        np.add.at(drawn[c], got.numpy(), 1)  # -1 (no valid spawn) lands in the last column
    G.train(was)
    codes_names = [f"code {c}" for c in range(k)]
    table(f"iteration {game.iteration}: E's code for each true piece ({len(x)} spawns)",
          list(PIECE_NAMES), codes_names + ["none"], enc)
    table(f"iteration {game.iteration}: the piece G draws under each code ({len(xs)} inputs)",
          codes_names, list(PIECE_NAMES) + ["none"], drawn)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tetris")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--test", type=int, default=3000)
    ap.add_argument("--boards", type=int, default=200)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    cfg = load_config(args.preset, [f"seed={args.seed}", "train.progress=false",
                                    "train.eval_every=0", CLUSTERED] + args.set)
    game = Game.from_config(cfg)
    rec = next((t for t in game.tricks if t.name == "reconstruction"
                and getattr(t, "encoder", None) is not None), None)
    if rec is None:
        raise SystemExit("this run has no learned encoder (codes: learned or clustered)")
    pairs = record_pairs(args.test, np.random.default_rng(TEST_SEED))
    x, y = one_hot(pairs[:, 0]), one_hot(pairs[:, 1])
    piece = spawned_piece(x, y)  # the test split's spawns, read once
    spawns = (piece >= 0).nonzero().flatten()
    x, y, piece = x[spawns], y[spawns], piece[spawns]
    print(f"# {args.preset}, seed {args.seed}, {' '.join(args.set)}")
    while game.iteration < cfg.train.iterations:
        game.play(min(args.every, cfg.train.iterations - game.iteration))
        report(game, rec, x, y, piece, args.boards)


if __name__ == "__main__":
    main()
