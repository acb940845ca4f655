"""``ganlab tetris ...``: record data sets, and predict, evaluate and roll out a trained emulator.
The Tetris plugin registers this command itself (:data:`ganlab.registry.COMMANDS`)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import safe_load
from ..config import load_config
from ..data import Dataset
from ..errors import CheckpointError, ConfigError
from ..game import Game
from ..paths import output_dir, output_file
from ..registry import COMMANDS
from ..tracking import format_value, print_metrics
from .encoding import one_hot
from .metrics import actual_spawns
from .recordings import COMPACT_NAME, RecordingError, load_recording, record
from .rules import COLS, ROWS
from .evaluate import evaluate_pairs, predict
from .interactive import EVENT_NAMES
from .interactive_recordings import record_interactive
from .players import PLAYERS
from .rollout import rollout, save_gif
from .task import TetrisTask


def load_emulator(path: str | Path) -> Game:
    """A Game restored from a run directory (its latest checkpoint) or a checkpoint file."""
    path = Path(path)
    ckpt_path = path / "checkpoints" / "latest.pt" if path.is_dir() else path
    state = safe_load(ckpt_path)
    if not state.get("config"):
        raise CheckpointError(f"{ckpt_path}: holds no config to rebuild the emulator from")
    cfg = load_config(state["config"])
    if cfg.data.name != "tetris":
        raise ConfigError(f"{ckpt_path}: not a Tetris emulator (data.name is {cfg.data.name!r})")
    blank = one_hot(np.zeros((cfg.data.batch_size, ROWS, COLS), np.int64))
    game = Game.from_config(cfg, dataset=Dataset(examples=blank, conditions=blank,
                                                 task=TetrisTask()))
    game.load_state_dict(state, str(ckpt_path))
    return game


def read_boards(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: no such file")
    try:
        boards = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        reason = ("the file is empty (0 bytes)" if path.stat().st_size == 0 else
                  f"corrupt or truncated: {type(exc).__name__}")
        raise RecordingError(f"{path}: not a readable .npy array ({reason})") from None
    if boards.ndim != 3 or boards.shape[1:] != (ROWS, COLS):
        raise RecordingError(f"{path}: expected boards of shape (N, {ROWS}, {COLS}), "
                             f"got {boards.shape}")
    if not np.isin(boards, (0, 1)).all():
        raise RecordingError(f"{path}: board cells must be 0 or 1")
    return boards.astype(np.int64)


def cmd_predict(args) -> None:
    if args.samples < 1:
        raise ConfigError(f"--samples: must be at least 1, got {args.samples}")
    out_path = output_file(args.out, suffix=".npy", example="predictions")
    boards = read_boards(args.input)
    game = load_emulator(args.run)
    out = predict(game, boards, args.samples, seed=args.seed)
    np.save(out_path, out)
    print(f"wrote {out.shape} int8 predictions to {out_path}")


def cmd_evaluate(args) -> None:
    json_path = output_file(args.json, "--json", example="metrics.json") if args.json else None
    pairs = load_recording(args.data, args.split)[args.split]
    game = load_emulator(args.run)
    with torch.no_grad():
        m = evaluate_pairs(game, pairs, diversity_samples=args.samples, seed=args.seed)
    print_metrics(m, json_path, header=f"metric ({args.split}, {len(pairs)} pairs)")


def cmd_rollout(args) -> None:
    if args.frames < 1:
        raise ConfigError(f"--frames: must be at least 1, got {args.frames}")
    gif = (output_file(args.gif, "--gif", example="game.gif", required_suffix=".gif")
           if args.gif else None)
    game = load_emulator(args.run)
    r = rollout(game, args.frames, seed=args.seed, keep_frames=bool(args.gif))
    print(f"rollout legality {format_value(r['legality'])} ({r['legal']}/{r['frames']} transitions "
          f"legal); games played {r['games_finished']}")
    print("spawns per piece: " + ", ".join(f"{k} {v}" for k, v in r["spawns"].items()))
    if gif:
        print(f"GIF: {save_gif(r['frames_kept'], gif)}")


def record_interactive_cmd(args) -> None:
    args.player = args.player or "human"
    output_dir(args.out, "record OUT")
    t0 = time.perf_counter()
    stats: dict = {}
    data = record_interactive(args.out, args.train, args.test, args.seed, player=args.player,
                              layout=not args.compact_only, stats=stats)
    secs = time.perf_counter() - t0
    out = Path(args.out)
    for split, (_, events) in data.items():
        s = stats[split]
        n = max(s.get("events", 0), 1)  # the spawns and clears count whole games
        shares = ", ".join(f"{name} {float((events == i).mean()) if len(events) else 0:.2f}"
                           for i, name in enumerate(EVENT_NAMES))
        played = s.get("spawns", 0)
        clears = ", ".join(f"{k} rows {v}" for k, v in sorted(s.get("clears", {}).items()))
        where = f"{out / split}/0..{len(events) - 1}/, " if not args.compact_only else ""
        print(f"{split}: {len(events)} transitions ({where}{s.get('games', 0)} games over)")
        print(f"  events: {shares}; in the {s.get('events', 0)} events of the games played: "
              f"{played} pieces ({played / n:.3f} per event), line clears {clears or 'none'}")
    print(f"compact file: {out / COMPACT_NAME}; {secs:.1f} s")


def cmd_record(args) -> None:
    if args.train < 0 or args.test < 0:
        raise ConfigError("--train and --test must be >= 0")
    if args.ruleset == "interactive":
        return record_interactive_cmd(args)
    if args.player is not None:
        raise ConfigError("--player: only the interactive ruleset has players "
                          "(add --ruleset interactive)")
    output_dir(args.out, "record OUT")
    t0 = time.perf_counter()
    data = record(args.out, args.train, args.test, args.seed, layout=not args.compact_only)
    secs = time.perf_counter() - t0
    out = Path(args.out)
    for split, pairs in data.items():
        share = float(actual_spawns(pairs[:, 0], pairs[:, 1]).mean()) if len(pairs) else 0.0
        where = f"{out / split}/0..{len(pairs) - 1}.npy, " if not args.compact_only else ""
        print(f"{split}: {len(pairs)} pairs ({where}spawn share {share:.3f})")
    print(f"compact file: {out / COMPACT_NAME}; {secs:.1f} s")


@COMMANDS.register("tetris")
def add_command(sub) -> None:
    """``ganlab tetris record|predict|evaluate|rollout``."""
    sp = sub.add_parser("tetris", help="the Tetris emulator: record, predict, evaluate, rollout")
    tsub = sp.add_subparsers(dest="what", required=True)
    tp = tsub.add_parser("record", help="record a data set: (board t, board t+1) pairs of the "
                         "classic ruleset in the original layout, or (board t, event, board t+1) "
                         "of the interactive ruleset in the later layout")
    tp.add_argument("out")
    tp.add_argument("--ruleset", choices=["classic", "interactive"], default="classic",
                    help="docs/TETRIS_RULES.md: the classic tick or the interactive game")
    tp.add_argument("--player", choices=sorted(PLAYERS), default=None,
                    help="interactive only: who plays the recorded games (default human)")
    tp.add_argument("--train", type=int, default=100_000)
    tp.add_argument("--test", type=int, default=10_000)
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument("--compact-only", action="store_true",
                    help="write only the compact recording.npz, not one .npy file per pair")
    tp.set_defaults(func=cmd_record)
    tp = tsub.add_parser("rollout", help="let the emulator play on its own output")
    tp.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    tp.add_argument("--frames", type=int, default=5000)
    tp.add_argument("--gif", help="also render the game as an animated GIF")
    tp.add_argument("--seed", type=int, default=0)
    tp.set_defaults(func=cmd_rollout)
    tp = tsub.add_parser("predict", help="predict next boards for boards in an .npy file")
    tp.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    tp.add_argument("--input", required=True, help="(N, 22, 10) 0/1 boards")
    tp.add_argument("--samples", type=int, default=1, help="noise samples per board (K)")
    tp.add_argument("--out", required=True, help="(N, K, 22, 10) int8 predictions")
    tp.add_argument("--seed", type=int, default=0)
    tp.set_defaults(func=cmd_predict)
    tp = tsub.add_parser("evaluate", help="the emulator metrics on a recorded data set")
    tp.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    tp.add_argument("--data", required=True, help="recording folder (train/ test/) or file")
    tp.add_argument("--split", default="test", choices=["train", "test"])
    tp.add_argument("--samples", type=int, default=50, help="noise samples per spawn input")
    tp.add_argument("--json", help="also write the metrics to this JSON file")
    tp.add_argument("--seed", type=int, default=0)
    tp.set_defaults(func=cmd_evaluate)
