"""Runs on disk: a self-describing run directory around a :class:`~ganlab.game.Game`.

Layout: ``config.yaml`` (the resolved config), ``metrics.jsonl``, ``tb/`` (TensorBoard events),
``samples/iter_*.png``, ``loss.png``, ``checkpoints/latest.pt``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import yaml

from .config import RunConfig, load_config
from .distributed import barrier, world
from .errors import CheckpointError
from .game import Game


def default_run_dir(cfg: RunConfig) -> Path:
    return Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def write_config(cfg: RunConfig, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return path


def read_run_config(run_dir: str | Path) -> RunConfig:
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a ganlab run directory (no config.yaml)")
    return load_config(path)


def start(cfg: RunConfig, run_dir: Optional[str | Path] = None) -> Game:
    """Create the run directory and a fresh game (not yet trained)."""
    rank, size = world()
    if run_dir is None and size > 1:
        raise CheckpointError("a distributed run needs --out RUN_DIR (the same on every rank)")
    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
    if (run_dir / "checkpoints" / "latest.pt").exists():
        raise CheckpointError(f"{run_dir}: already holds a run; use `ganlab resume {run_dir}` "
                              "or choose another --out")
    barrier(size)  # every rank has checked before rank 0 writes
    if rank == 0:
        write_config(cfg, run_dir)
    return Game.from_config(cfg, run_dir)


def open_run(run_dir: str | Path, overrides: list[str] | None = None,
             filters: Sequence[tuple[str, dict]] = ()) -> Game:
    """A game restored from a run directory's latest checkpoint, with the sampling ``filters``
    (``(name, args)``, see :meth:`Game.add_filter`) added; they do not change the run."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if overrides:
        cfg = load_config(cfg.to_dict(), overrides)
        if world()[0] == 0:
            write_config(cfg, run_dir)
    game = Game.from_config(cfg, run_dir)
    latest = run_dir / "checkpoints" / "latest.pt"
    if latest.exists():
        game.load(latest)
        game.last_checkpoint = latest
    for name, args in filters:
        game.add_filter(name, **args)
    return game


def train(cfg: RunConfig, run_dir: Optional[str | Path] = None) -> Game:
    game = start(cfg, run_dir)
    game.play(cfg.train.iterations)
    return game


def resume(run_dir: str | Path, overrides: list[str] | None = None) -> Game:
    """Continue a run to its configured ``train.iterations`` (overrides may raise it)."""
    game = open_run(run_dir, overrides)
    remaining = game.config.train.iterations - game.iteration
    if remaining > 0:
        game.play(remaining)
    return game
