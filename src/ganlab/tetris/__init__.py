"""Tetris, a plugin: the classic rule engine, recordings in the original layout, the emulator's
dataset, task, networks and metrics, and the ``ganlab tetris`` command, all following
``docs/TETRIS_RULES.md``.

Importing this package registers the ``tetris`` dataset, the ``tetris-*`` models and the
``tetris`` command; ganlab's registries import it on first use (:data:`ganlab.registry.PLUGINS`).
"""
from . import cli, dataset, models, play_emulator  # noqa: F401  (they register themselves)
from .rules import COLS, PIECES, ROWS, SPAWN_MASKS, TetrisEngine, empty_board

__all__ = ["ROWS", "COLS", "PIECES", "SPAWN_MASKS", "TetrisEngine", "empty_board"]
