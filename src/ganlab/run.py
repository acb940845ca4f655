"""Runs on disk: a self-describing run directory around a :class:`~ganlab.game.Game`.

Layout: ``config.yaml`` (the resolved config), ``metrics.jsonl``, ``tb/`` (TensorBoard events),
``samples/iter_*.png``, ``loss.png``, ``checkpoints/latest.pt``, and ``.lock`` (held by the
process training in it).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

from . import checkpoint as ckpt
from .config import RunConfig, load_config, write_config
from .distributed import barrier, world
from .errors import CheckpointError
from .game import Game
from .lock import RunLock
from .paths import output_dir, writable_run


def default_run_dir(cfg: RunConfig) -> Path:
    return Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def read_run_config(run_dir: str | Path) -> RunConfig:
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a ganlab run directory (no config.yaml)")
    cfg = load_config(path)
    if cfg.custom:
        raise CheckpointError(
            f"{run_dir}: its {', '.join(cfg.custom)} came into a notebook's Game as Python "
            "objects, not by registered name, so the command line cannot rebuild it; in Python: "
            f"Game(G, D, data, config=load_config('{path}')).load('{run_dir}/checkpoints/"
            "latest.pt')")
    return cfg


def start(cfg: RunConfig, run_dir: Optional[str | Path] = None) -> Game:
    """A fresh game in a new run directory (not yet trained). The directory is made, locked
    and given its ``config.yaml`` only once the game is built: a start that fails leaves no
    half-made run folder."""
    rank, size = world()
    if run_dir is None and size > 1:
        raise CheckpointError("a distributed run needs --out RUN_DIR (the same on every rank)")
    run_dir = output_dir(run_dir if run_dir else default_run_dir(cfg), "--out")
    if (run_dir / "checkpoints" / "latest.pt").exists():
        raise CheckpointError(f"{run_dir}: already holds a run; use `ganlab resume {run_dir}` "
                              "or choose another --out")
    game = Game.from_config(cfg, run_dir)
    barrier(size)  # every rank has checked before rank 0 writes
    if rank == 0:
        _take(game, run_dir, resume_at=0)  # a start killed before its first checkpoint: anew
        write_config(cfg, run_dir)
    return game


def _take(game: Game, run_dir: Path, resume_at: int, lock: Optional[RunLock] = None) -> None:
    """Lock ``run_dir`` for ``game`` and tidy what a killed process left there: temporary
    checkpoint files, and log rows after the iteration the run goes on from."""
    game.run_lock = lock or RunLock.acquire(run_dir)
    for tmp in ckpt.stale_temporaries(run_dir / "checkpoints"):
        tmp.unlink(missing_ok=True)
    game.tracker.resume_at(resume_at)


def open_run(run_dir: str | Path, overrides: list[str] | None = None,
             filters: Sequence[tuple[str, dict]] = (), train: bool = False) -> Game:
    """A game restored from a run directory's latest checkpoint, with the sampling ``filters``
    (``(name, args)``, see :meth:`Game.add_filter`) added; they do not change the run.

    ``train``: the game will train on (``ganlab resume``): the folder is locked, and only once
    the checkpoint has loaded are the ``overrides`` written into ``config.yaml``. Without it
    nothing in the folder is written (it may be read-only)."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if train:
        writable_run(run_dir, "resume")
    if overrides:
        cfg = load_config(cfg.to_dict(), overrides)
    game = Game.from_config(cfg, run_dir)
    latest = run_dir / "checkpoints" / "latest.pt"
    lock = RunLock.acquire(run_dir) if train and world()[0] == 0 else None
    try:
        if latest.exists():
            game.load(latest)
            game.last_checkpoint = latest
        for name, args in filters:
            game.add_filter(name, **args)
    except BaseException:
        if lock is not None:
            lock.release(remove=True)
        raise
    if lock is not None:
        _take(game, run_dir, resume_at=game.iteration, lock=lock)
        if overrides:
            write_config(cfg, run_dir)
    return game


def train(cfg: RunConfig, run_dir: Optional[str | Path] = None) -> Game:
    game = start(cfg, run_dir)
    game.play(cfg.train.iterations)
    return game


def resume(run_dir: str | Path, overrides: list[str] | None = None) -> Game:
    """Continue a run to its configured ``train.iterations`` (overrides may raise it)."""
    game = open_run(run_dir, overrides, train=True)
    game.resumed_from = game.iteration
    remaining = game.config.train.iterations - game.iteration
    if remaining > 0:
        game.play(remaining)
    return game
