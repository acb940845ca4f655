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
from .pieces import CLASSIC, PieceFileError, PieceSet, load_pieces, pieces_beside
from .recordings import COMPACT_NAME, RecordingError, load_npy, load_recording, record
from .rules import COLS, ROWS
from .evaluate import evaluate_pairs, predict
from . import play_emulator as play
from .interactive import EVENT_NAMES, N_CELLS, N_EVENTS
from .interactive_recordings import load_interactive, record_interactive
from .play_emulator import TetrisPlayTask
from .play_session import PlaySession
from .serve import serve
from .terminal import play as play_terminal
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
    if cfg.data.name not in ("tetris", "tetris-play"):
        raise ConfigError(f"{ckpt_path}: not a Tetris emulator (data.name is {cfg.data.name!r}; "
                          f"expected tetris or tetris-play)")
    empty = np.zeros((cfg.data.batch_size, *board_size(state)), np.int64)
    if cfg.data.name == "tetris-play":
        data = Dataset(examples=one_hot(empty, N_CELLS), task=TetrisPlayTask(),
                       conditions=play.encode(empty, np.zeros(len(empty), np.int64)))
    else:
        data = Dataset(examples=one_hot(empty), conditions=one_hot(empty), task=TetrisTask())
    game = Game.from_config(cfg, dataset=data)
    game.load_state_dict(state, str(ckpt_path))
    return game


def board_size(state: dict) -> tuple:
    """The board a checkpoint's generator was built for: the checkpoint's ``example_shape``, else
    (checkpoints from before it) its position embedding's shape where it has one
    (``tetris-emulator``), else the classic 22 x 10."""
    shape = state.get("example_shape")
    if shape is not None and len(shape) >= 2:
        return tuple(int(v) for v in shape[-2:])
    pos = state.get("G", {}).get("pos")
    return tuple(pos.shape[-2:]) if pos is not None and pos.ndim == 4 else (ROWS, COLS)


def run_pieces(game: Game, given: str | None = None) -> PieceSet:
    """The piece set that judges a classic emulator: ``--pieces FILE``, else the one beside the
    run's recording (``data.path``) or its ``data.args.pieces`` file, else the seven
    tetrominoes on 22 x 10 boards; another board with none is an error that says what to give."""
    board = tuple(game.data.examples.shape[-2:])
    path, args = game.config.data.path, game.config.data.args
    beside = pieces_beside(path) if path and Path(path).exists() else None
    if given:
        pieces = load_pieces(given)
    elif beside is not None:
        pieces = beside
    elif args.get("pieces"):
        pieces = load_pieces(args["pieces"], args.get("rows"), args.get("cols"))
    elif board == (CLASSIC.rows, CLASSIC.cols):
        return CLASSIC
    else:
        raise PieceFileError(f"--pieces: this emulator plays {board[0]} x {board[1]} boards and "
                             f"its recording names no piece set; give the game's piece file")
    if (pieces.rows, pieces.cols) != board:
        raise PieceFileError(f"--pieces: the piece set is for {pieces.rows} x {pieces.cols} "
                             f"boards, the emulator plays {board[0]} x {board[1]}")
    return pieces


def interactive(game: Game) -> bool:
    return isinstance(game.data.task, TetrisPlayTask)


def read_events(path: str | Path, n: int) -> np.ndarray:
    events = load_npy(path)
    if events.shape != (n,):
        raise RecordingError(f"{path}: expected events of shape ({n},), one per board, got "
                             f"{events.shape}")
    if not np.issubdtype(events.dtype, np.integer) or ((events < 0) | (events >= N_EVENTS)).any():
        raise RecordingError(f"{path}: events must be integers 0-4 (drop, left, right, rotate, "
                             f"instant drop)")
    return events.astype(np.int64)


def read_boards(path: str | Path, cells: int = 2, board: tuple = (ROWS, COLS)) -> np.ndarray:
    boards = load_npy(path)
    if boards.ndim != 3 or boards.shape[1:] != tuple(board):
        raise RecordingError(f"{path}: expected boards of shape (N, {board[0]}, {board[1]}), "
                             f"got {boards.shape}")
    if not np.isin(boards, np.arange(cells)).all():
        raise RecordingError(f"{path}: board cells must be " +
                             ("0 or 1" if cells == 2 else f"0-{cells - 1}"))
    return boards.astype(np.int64)


def cmd_predict(args) -> None:
    if args.samples < 1:
        raise ConfigError(f"--samples: must be at least 1, got {args.samples}")
    out_path = output_file(args.out, suffix=".npy", example="predictions")
    game = load_emulator(args.run)
    if interactive(game):
        if not args.events:
            raise ConfigError(f"--events: {args.run} is an interactive emulator; give the event "
                              f"of each board (an .npy file of N integers 0-4)")
        boards = read_boards(args.input, N_CELLS)
        out = play.predict(game, boards, read_events(args.events, len(boards)), args.samples,
                           seed=args.seed)
    else:
        if args.events:
            raise ConfigError(f"--events: {args.run} is a classic emulator; its ticks have no "
                              f"events")
        board = tuple(game.data.examples.shape[-2:])
        out = predict(game, read_boards(args.input, 2, board), args.samples, seed=args.seed)
    np.save(out_path, out)
    print(f"wrote {out.shape} int8 predictions to {out_path}")


def cmd_evaluate(args) -> None:
    json_path = output_file(args.json, "--json", example="metrics.json") if args.json else None
    game = load_emulator(args.run)
    if interactive(game) and args.pieces:
        raise ConfigError("--pieces: the interactive game has the spec's seven pieces")
    if interactive(game):
        boards, events = load_interactive(args.data, args.split)[args.split]
        m = play.evaluate_transitions(game, boards, events, args.samples, seed=args.seed)
        header = f"metric ({args.split}, {len(events)} transitions)"
    else:
        pairs = load_recording(args.data, args.split)[args.split]
        pieces = (None if args.pieces else pieces_beside(args.data)) or \
            run_pieces(game, args.pieces)
        if pairs.shape[2:] != (pieces.rows, pieces.cols):
            raise RecordingError(f"{args.data}: its boards are {pairs.shape[2]} x "
                                 f"{pairs.shape[3]}, the emulator's {pieces.rows} x {pieces.cols}")
        with torch.no_grad():
            m = evaluate_pairs(game, pairs, diversity_samples=args.samples, seed=args.seed,
                               pieces=pieces)
        header = f"metric ({args.split}, {len(pairs)} pairs)"
    print_metrics(m, json_path, header=header)


def cmd_rollout(args) -> None:
    if args.frames < 1:
        raise ConfigError(f"--frames: must be at least 1, got {args.frames}")
    gif = (output_file(args.gif, "--gif", example="game.gif", required_suffix=".gif")
           if args.gif else None)
    game = load_emulator(args.run)
    if interactive(game) and args.pieces:
        raise ConfigError("--pieces: the interactive game has the spec's seven pieces")
    if interactive(game):
        r = play.rollout(game, args.frames, seed=args.seed, keep_frames=bool(args.gif),
                         player=args.player)
        print(f"rollout legality {format_value(r['legality'])} ({r['legal']}/{r['events']} "
              f"events of the {args.player} player legal); games restarted {r['games']}")
        if gif:
            path = save_gif(r["frames"], gif, palette=play.PALETTE, events=[""] + r["played"])
            print(f"GIF: {path}")
        return
    if args.player != "random":
        raise ConfigError("--player: the classic ruleset has no players (its ticks have no "
                          "events)")
    r = rollout(game, args.frames, seed=args.seed, keep_frames=bool(args.gif),
                pieces=run_pieces(game, args.pieces))
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
        if args.pieces or args.rows or args.cols:
            raise ConfigError("--pieces/--rows/--cols: only the classic ruleset takes another "
                              "piece set or board (the interactive game is the spec's)")
        return record_interactive_cmd(args)
    if args.player is not None:
        raise ConfigError("--player: only the interactive ruleset has players "
                          "(add --ruleset interactive)")
    if args.rows is not None and args.rows < 4 or args.cols is not None and args.cols < 4:
        raise ConfigError(f"--rows/--cols: boards must be at least 4 x 4, got "
                          f"{args.rows} x {args.cols}")
    pieces = (load_pieces(args.pieces, args.rows, args.cols) if args.pieces
              else CLASSIC.resized(args.rows, args.cols))
    output_dir(args.out, "record OUT")
    t0 = time.perf_counter()
    data = record(args.out, args.train, args.test, args.seed, layout=not args.compact_only,
                  pieces=pieces)
    secs = time.perf_counter() - t0
    out = Path(args.out)
    for split, pairs in data.items():
        share = float(actual_spawns(pairs[:, 0], pairs[:, 1]).mean()) if len(pairs) else 0.0
        where = f"{out / split}/0..{len(pairs) - 1}.npy, " if not args.compact_only else ""
        print(f"{split}: {len(pairs)} pairs ({where}spawn share {share:.3f})")
    print(f"pieces: {', '.join(pieces.names)} on {pieces.rows} x {pieces.cols} "
          f"({out / 'pieces.json'})")
    print(f"compact file: {out / COMPACT_NAME}; {secs:.1f} s")


def session_from(args):
    engine = args.engine or ("model" if args.run else "rule")
    game = None
    if engine == "model":
        if not args.run:
            raise ConfigError("--engine model: give the RUN of a trained interactive emulator "
                              "(ganlab train tetris-play --out RUN)")
        game = load_emulator(args.run)
        if not interactive(game):
            raise ConfigError(f"{args.run}: a classic emulator; play needs an interactive one "
                              f"(tetris-play)")
    if args.record:
        output_dir(args.record, "--record DIR")
    return PlaySession(engine, game, args.mode, seed=args.seed, record=args.record)


def cmd_play(args) -> None:
    play_terminal(session_from(args), args.timer_ms)


def cmd_serve(args) -> None:
    serve(session_from(args), args.host, args.port, args.timer_ms)


def add_play_arguments(tp) -> None:
    tp.add_argument("run", nargs="?", metavar="RUN", help="a trained tetris-play run")
    tp.add_argument("--engine", choices=["model", "rule"],
                    help="who makes the boards: the emulator (default with RUN) or the rules")
    tp.add_argument("--mode", choices=["normal", "prob"], default="normal",
                    help="model: the likeliest cells, or each cell sampled from its probabilities")
    tp.add_argument("--record", metavar="DIR", help="record the play to DIR/train/ (later layout)")
    tp.add_argument("--timer-ms", type=int, default=800, help="the timer's drop interval")
    tp.add_argument("--seed", type=int, default=0)


@COMMANDS.register("tetris")
def add_command(sub) -> None:
    """``ganlab tetris record|play|serve|predict|evaluate|rollout``."""
    sp = sub.add_parser("tetris", help="the Tetris emulator: record, play, serve, predict, "
                        "evaluate, rollout")
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
    tp.add_argument("--pieces", metavar="FILE",
                    help="classic: another falling-block game, a YAML or JSON of piece arrays "
                    "and spawn columns (README: Other falling-block games)")
    tp.add_argument("--rows", type=int, help="classic: board rows (default 22, or the file's)")
    tp.add_argument("--cols", type=int, help="classic: board columns (default 10, or the file's)")
    tp.set_defaults(func=cmd_record)
    tp = tsub.add_parser("play", help="play interactive Tetris in the terminal")
    add_play_arguments(tp)
    tp.set_defaults(func=cmd_play)
    tp = tsub.add_parser("serve", help="play interactive Tetris as a local web page")
    add_play_arguments(tp)
    tp.add_argument("--port", type=int, default=8765)
    tp.add_argument("--host", default="127.0.0.1")
    tp.set_defaults(func=cmd_serve)
    tp = tsub.add_parser("rollout", help="let the emulator play on its own output")
    tp.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    tp.add_argument("--frames", type=int, default=5000,
                    help="frames (classic) or events (interactive)")
    tp.add_argument("--player", choices=sorted(PLAYERS), default="random",
                    help="interactive: who presses the keys (random: the spec's checks)")
    tp.add_argument("--gif", help="also render the game as an animated GIF")
    tp.add_argument("--pieces", metavar="FILE", help="classic: the piece file that judges the "
                    "game (default: the one beside the run's recording)")
    tp.add_argument("--seed", type=int, default=0)
    tp.set_defaults(func=cmd_rollout)
    tp = tsub.add_parser("predict", help="predict next boards for boards in an .npy file")
    tp.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    tp.add_argument("--input", required=True,
                    help="(N, 22, 10) boards: 0/1 classic, 0-7 interactive")
    tp.add_argument("--events", help="interactive runs: (N,) events 0-4, one per board")
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
    tp.add_argument("--pieces", metavar="FILE", help="classic: the piece file that judges the "
                    "data (default: its pieces.json, else the run's)")
    tp.add_argument("--seed", type=int, default=0)
    tp.set_defaults(func=cmd_evaluate)
