"""Tetris: the classic rule engine, recordings in the original layout, the emulator dataset and
the emulator metrics, following ``shared/TETRIS_RULES.md``."""
from .rules import COLS, PIECES, ROWS, SPAWN_MASKS, TetrisEngine, empty_board

__all__ = ["ROWS", "COLS", "PIECES", "SPAWN_MASKS", "TetrisEngine", "empty_board"]
