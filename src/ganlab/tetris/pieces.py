"""A falling-block game's piece set and board size: the seven tetrominoes on 22 x 10 (the
classic ruleset of ``docs/TETRIS_RULES.md``) or any other, read from a small YAML or JSON file.

The file (``ganlab tetris record --pieces FILE``)::

    rows: 20            # optional: the board (``--rows/--cols`` override it)
    cols: 10
    pieces:
      I3: {array: [[1, 1, 1]], column: 3}     # row 0 on top; non-zero entries are cells
      L3: {array: [[1, 0], [1, 1]]}           # column omitted: int(cols / 2 - width / 2)

A recording made with a piece set writes it beside itself as ``pieces.json``, so that the
metrics (which must know the pieces to judge a spawn) read it; training never does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Optional

import numpy as np
import yaml

from ..errors import DataError

PIECES_NAME = "pieces.json"


class PieceFileError(DataError, ValueError):
    """A piece file is missing or malformed; the message names the file and the key."""


@dataclass(frozen=True)
class PieceSet:
    """``names`` and, per piece, its spawn cells ``(row, column)`` on a ``rows`` x ``cols``
    board. ``masks`` are the spawn masks over the spawn rows (the tallest piece's height plus
    one, rows 0-2 for the tetrominoes: the rows the spawn-validity ruling compares); they and
    ``shapes`` are computed once per set (the rollout judges every frame with them) and must
    not be written to."""

    names: tuple
    cells: tuple
    rows: int = 22
    cols: int = 10

    def __post_init__(self):
        if len(self.names) != len(self.cells) or len(self.names) < 1:
            raise ValueError("a piece set needs one cell list per name, and at least one piece")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"piece names must be distinct, got {list(self.names)}")
        if self.rows < 4 or self.cols < 4:
            raise ValueError(f"boards must be at least 4 x 4, got {self.rows} x {self.cols}")
        for name, cells in zip(self.names, self.cells):
            rr = [r for r, _ in cells]
            cc = [c for _, c in cells]
            if not cells or min(rr) != 0 or min(cc) < 0 or max(cc) >= self.cols \
                    or max(rr) + 2 >= self.rows:
                raise ValueError(f"piece {name}: its cells {list(cells)} must start in row 0 and "
                                 f"lie on the {self.rows} x {self.cols} board with room to fall")

    def __len__(self) -> int:
        return len(self.names)

    @cached_property
    def spawn_rows(self) -> int:
        return max(r for cells in self.cells for r, _ in cells) + 2

    @cached_property
    def masks(self) -> np.ndarray:
        """(pieces, spawn_rows, cols) 0/1 spawn masks."""
        m = np.zeros((len(self), self.spawn_rows, self.cols), np.int32)
        for i, cells in enumerate(self.cells):
            for r, c in cells:
                m[i, r, c] = 1
        return m

    @cached_property
    def shapes(self) -> list:
        """Each piece's cells as an (n, 2) array, as it spawns."""
        return [np.array(cells, np.int64) for cells in self.cells]

    def arrays(self) -> dict:
        """{name: {"array": 0/1 rows, "column": left column}}: the file's form."""
        out = {}
        for name, cells in zip(self.names, self.cells):
            left = min(c for _, c in cells)
            h = max(r for r, _ in cells) + 1
            w = max(c for _, c in cells) - left + 1
            a = np.zeros((h, w), np.int64)
            for r, c in cells:
                a[r, c - left] = 1
            out[name] = {"array": a.tolist(), "column": left}
        return out

    def to_json(self) -> dict:
        return {"rows": self.rows, "cols": self.cols, "pieces": self.arrays()}

    def resized(self, rows: Optional[int] = None, cols: Optional[int] = None) -> "PieceSet":
        """The same pieces on another board, each at its default (centred) spawn column where
        the width changes."""
        rows, cols = rows or self.rows, cols or self.cols
        if cols == self.cols:
            return PieceSet(self.names, self.cells, rows, cols)
        spec = {n: {"array": a["array"]} for n, a in self.arrays().items()}
        return from_spec({"rows": rows, "cols": cols, "pieces": spec},
                         f"these pieces on {rows} x {cols}")


def from_spec(spec, where: str, rows: Optional[int] = None,
              cols: Optional[int] = None) -> PieceSet:
    """A piece set from the file's mapping; errors name ``where`` and the key."""
    if not isinstance(spec, dict) or not isinstance(spec.get("pieces"), dict) \
            or not spec["pieces"]:
        raise PieceFileError(f"{where}: expected a mapping with 'pieces': {{name: {{array: "
                             f"[[...]], column: C}}}} (and optional rows, cols)")
    unknown = set(spec) - {"rows", "cols", "pieces"}
    if unknown:
        raise PieceFileError(f"{where}: unknown key(s) {sorted(unknown)}; valid: rows, cols, "
                             "pieces")
    try:
        rows = int(rows or spec.get("rows", 22))
        cols = int(cols or spec.get("cols", 10))
    except (TypeError, ValueError):
        raise PieceFileError(f"{where}: rows and cols must be integers") from None
    names, cells = [], []
    for name, piece in spec["pieces"].items():
        key = f"{where}: pieces.{name}"
        if not isinstance(piece, dict) or "array" not in piece:
            raise PieceFileError(f"{key}: expected {{array: [[...]], column: C}}")
        extra = set(piece) - {"array", "column"}
        if extra:
            raise PieceFileError(f"{key}: unknown key(s) {sorted(extra)}; valid: array, column")
        try:
            a = np.asarray(piece["array"])
        except ValueError:
            a = np.zeros(0)
        if a.ndim != 2 or a.size == 0 or not np.issubdtype(a.dtype, np.number):
            raise PieceFileError(f"{key}.array: expected a 2-d array of numbers (rows of equal "
                                 f"length), got {piece['array']!r}")
        if not a[0].any() or not a[:, 0].any():
            raise PieceFileError(f"{key}.array: its first row and first column must hold a "
                                 f"cell (trim the empty border), got {a.tolist()}")
        column = piece.get("column", int(cols / 2 - a.shape[1] / 2))
        if not isinstance(column, int) or column < 0 or column + a.shape[1] > cols:
            raise PieceFileError(f"{key}.column: {column!r} puts the piece (width {a.shape[1]}) "
                                 f"off the {cols}-column board")
        names.append(str(name))
        cells.append(tuple((int(r), int(c) + column) for r, c in np.argwhere(a != 0)))
    try:
        return PieceSet(tuple(names), tuple(cells), rows, cols)
    except ValueError as exc:
        raise PieceFileError(f"{where}: {exc}") from None


def load_pieces(path: str | Path, rows: Optional[int] = None,
                cols: Optional[int] = None) -> PieceSet:
    """A piece set from a YAML or JSON file (``rows``/``cols`` override the file's)."""
    path = Path(path)  # JSON is YAML
    if not path.is_file():
        raise PieceFileError(f"{path}: no such piece file")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PieceFileError(f"{path}: not readable as YAML or JSON ({exc})") from None
    return from_spec(spec, str(path), rows, cols)


def write_pieces(folder: str | Path, pieces: PieceSet) -> Path:
    path = Path(folder) / PIECES_NAME
    path.write_text(json.dumps(pieces.to_json(), indent=1))
    return path


def pieces_beside(path: str | Path) -> Optional[PieceSet]:
    """The piece set a recording wrote beside itself (``pieces.json`` in its folder, or beside
    its compact file), or None."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    return load_pieces(folder / PIECES_NAME) if (folder / PIECES_NAME).is_file() else None


#: The classic ruleset's seven tetrominoes at their spawn cells (TETRIS_RULES.md), 22 x 10.
CLASSIC = PieceSet(
    names=("I", "O", "J", "T", "S", "L", "Z"),
    cells=(((0, 3), (0, 4), (0, 5), (0, 6)), ((0, 4), (0, 5), (1, 4), (1, 5)),
           ((0, 3), (1, 3), (1, 4), (1, 5)), ((0, 3), (0, 4), (0, 5), (1, 4)),
           ((0, 4), (0, 5), (1, 3), (1, 4)), ((0, 5), (1, 3), (1, 4), (1, 5)),
           ((0, 3), (0, 4), (1, 4), (1, 5))),
    rows=22, cols=10)
