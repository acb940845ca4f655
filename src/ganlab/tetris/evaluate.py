"""Emulator predictions and their metrics."""
from __future__ import annotations

import numpy as np
import torch

from .encoding import one_hot, to_boards
from .metrics import actual_spawns, emulator_metrics, piece_diversity
from .pieces import CLASSIC, PieceSet


@torch.no_grad()
def sample_boards(game, conditions, n: int, shape: tuple, samples: int = 1, seed: int = 0,
                  batch: int = 4096) -> np.ndarray:
    """(n, K, *shape) int8 argmax boards, one per noise draw, from the game's sampling
    generator in eval mode; ``conditions(start, stop)`` is the encoded input of rows
    start..stop."""
    G = game.sampling_generator
    was = G.training
    G.eval()
    gen = torch.Generator(device=game.device).manual_seed(seed)
    out = np.empty((n, samples) + tuple(shape), np.int8)
    try:
        for start in range(0, n, batch):
            c = conditions(start, min(start + batch, n)).to(game.device)
            for k in range(samples):
                z = game.sample_latent(len(c), generator=gen)
                out[start:start + len(c), k] = to_boards(G(z, c)).cpu().numpy()
    finally:
        G.train(was)
    return out


def predict(game, boards, samples: int = 1, seed: int = 0, batch: int = 4096) -> np.ndarray:
    """(N, rows, cols) 0/1 boards -> (N, K, rows, cols) int8 predictions, one per noise draw,
    with the game's sampling generator in eval mode."""
    boards = np.asarray(boards)
    return sample_boards(game, lambda a, b: one_hot(boards[a:b]), len(boards), boards.shape[1:],
                         samples, seed, batch)


def evaluate_pairs(game, pairs: np.ndarray, diversity_samples: int = 50, seed: int = 0,
                   pieces: PieceSet = CLASSIC) -> dict:
    """All emulator metrics on (N, 2, rows, cols) pairs of the game ``pieces``: one prediction
    per pair for accuracy and spawn metrics, ``diversity_samples`` per actual-spawn input for
    piece diversity."""
    x, y = pairs[:, 0], pairs[:, 1]
    p = predict(game, x, 1, seed)[:, 0]
    m = emulator_metrics(x, y, p, pieces)
    spawn = actual_spawns(x, y)
    if spawn.any() and diversity_samples:
        m.update(piece_diversity(x[spawn], predict(game, x[spawn], diversity_samples, seed + 1),
                                 pieces))
    return m


@torch.no_grad()
def adversarial_metrics(game, pairs: np.ndarray, seed: int = 0, batch: int = 4096) -> dict:
    """D's loss and accuracy on real pairs and on G's predictions, and G's loss, on ``pairs``
    (D accuracy: share of real pairs scored > 0 and fake pairs scored < 0)."""
    gen = torch.Generator(device=game.device).manual_seed(seed)
    G, D = game.sampling_generator, game.D
    was_g, was_d = G.training, D.training
    G.eval()
    D.eval()
    rs, fs = [], []
    try:
        for start in range(0, len(pairs), batch):
            chunk = pairs[start:start + batch]
            x, y = one_hot(chunk[:, 0]).to(game.device), one_hot(chunk[:, 1]).to(game.device)
            z = game.sample_latent(len(x), generator=gen)
            rs.append(D(y, x).float())
            fs.append(D(G(z, x), x).float())
    finally:
        G.train(was_g)
        D.train(was_d)
    r, f = torch.cat(rs), torch.cat(fs)
    acc = (torch.cat([(r > 0), (f < 0)]).float().mean()).item()
    return {"d_loss": game.loss.discriminator(r, f).item(), "g_loss": game.loss.generator(r, f).item(),
            "d_accuracy": acc}


def evaluate_splits(game, sets: dict, diversity_samples: int = 50,
                    pieces: PieceSet = CLASSIC) -> dict:
    """Every metric on every split, flattened to ``split/metric`` scalars for logging."""
    out = {}
    for split, pairs in sets.items():
        m = evaluate_pairs(game, pairs, diversity_samples=diversity_samples, pieces=pieces)
        m.update(adversarial_metrics(game, pairs))
        counts = m.pop("piece_counts", {})
        m.update({f"piece_{k}": v for k, v in counts.items()})
        board = m.get("board_accuracy")
        m["combined_accuracy"] = (board + 2 * m["d_accuracy"] - 1) if board is not None else None
        out.update({f"{split}/{k}": v for k, v in m.items()})
    return out
