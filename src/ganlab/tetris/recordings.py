"""Recordings of (board t, board t+1) pairs, in the original layout and as one compact file
(``docs/TETRIS_RULES.md``, "Recordings").

Original layout: a folder with ``train/`` and ``test/``, each holding ``0.npy``, ``1.npy``, ...
(no gaps), each an int32 array of shape (2, 22, 10) of 0/1 (another game's board size is read
off the files: every file of a recording has the same). The pairs of a game are frames
(0, 1), (2, 3), ... up to its last frame before game over; pairs of many games are shuffled
across files. The compact file (``recording.npz``) holds the same pairs as ``train`` and
``test`` arrays of shape (N, 2, 22, 10), uint8. A recording made here also holds ``pieces.json``,
its piece set and board (:mod:`.pieces`), which the metrics read and training never needs.
"""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataError
from .pieces import CLASSIC, PieceSet, write_pieces
from .rules import TetrisEngine

SPLITS = ("train", "test")
COMPACT_NAME = "recording.npz"
MANIFEST_NAME = "recording.json"


class RecordingError(DataError, ValueError):
    """A recording on disk is missing or malformed; the message names the file."""


def game_pairs(frames: np.ndarray, every_frame: bool = False) -> np.ndarray:
    """(frame 0, frame 1), (frame 2, frame 3), ... of one game's frames (the original layout);
    with ``every_frame``, (0, 1), (1, 2), (2, 3), ...: every frame is a board t once."""
    if every_frame:
        return np.stack([frames[:-1], frames[1:]], 1)
    n = len(frames) // 2
    return frames[: 2 * n].reshape(n, 2, *frames.shape[1:])


def record_pairs(n: int, rng: np.random.Generator, every_frame: bool = False,
                 pieces: PieceSet = CLASSIC) -> np.ndarray:
    """``n`` pairs from as many whole games as needed, shuffled; (n, 2, rows, cols) uint8.
    ``every_frame``: see :func:`game_pairs`; ``pieces``: the game (the seven on 22 x 10)."""
    chunks, total = [np.zeros((0, 2, pieces.rows, pieces.cols), np.uint8)], 0
    while total < n:
        pairs = game_pairs(TetrisEngine(rng=rng, pieces=pieces).play(), every_frame)
        chunks.append(pairs.astype(np.uint8))
        total += len(pairs)
    pairs = np.concatenate(chunks)
    return pairs[rng.permutation(len(pairs))[:n]]


def write_manifest(out: Path, counts: dict, complete: bool, **extra) -> None:
    """``recording.json``: what a recording holds; written first with ``complete: false`` and
    again last, so a recording killed mid-write is known to be incomplete."""
    tmp = out / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps({"format": "ganlab-recording-1", "complete": complete,
                               "pairs": counts, **extra}, indent=1))
    os.replace(tmp, out / MANIFEST_NAME)


def record(out: str | Path, n_train: int, n_test: int, seed: int = 0, layout: bool = True,
           compact: bool = True, pieces: PieceSet = CLASSIC) -> dict:
    """Record a data set; train and test come from different games (independent RNG streams).
    ``pieces.json`` beside it names the piece set and board."""
    out = Path(out)
    data = {"train": record_pairs(n_train, np.random.default_rng([seed, 0]), pieces=pieces),
            "test": record_pairs(n_test, np.random.default_rng([seed, 1]), pieces=pieces)}
    out.mkdir(parents=True, exist_ok=True)
    counts = {split: len(pairs) for split, pairs in data.items()}
    write_manifest(out, counts, False, seed=seed)
    write_pieces(out, pieces)
    if layout:
        header = _npy_header((pieces.rows, pieces.cols))
        for split, pairs in data.items():
            folder = out / split
            folder.mkdir(exist_ok=True)
            for i, pair in enumerate(pairs.astype("<i4")):
                with open(folder / f"{i}.npy", "wb") as fh:  # what np.save writes, faster
                    fh.write(header + pair.tobytes())
    if compact:
        tmp = out / (COMPACT_NAME + ".tmp.npz")
        np.savez_compressed(tmp, **data, seed=np.int64(seed))
        os.replace(tmp, out / COMPACT_NAME)
    write_manifest(out, counts, True, seed=seed, layout=layout, compact=compact)
    return data


_INDEX = re.compile(r"^(\d+)\.npy$")


def _npy_header(board: tuple = (22, 10)) -> bytes:
    """The .npy header np.save writes for an int32 (2, rows, cols) C-order array."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<i4", "fortran_order": False, "shape": (2, *board)})
    return buf.getvalue()


def _check_pair(arr: np.ndarray, where: str, board: Optional[tuple]) -> None:
    if arr.ndim != 3 or arr.shape[0] != 2 or (board is not None and arr.shape[1:] != board):
        want = f"2, {board[0]}, {board[1]}" if board else "2, rows, cols"
        why = " like the recording's first file" if board else ""
        raise RecordingError(f"{where}: expected shape ({want}){why}, got {arr.shape}")
    if min(arr.shape[1:]) < 4:
        raise RecordingError(f"{where}: a board of {arr.shape[1]} x {arr.shape[2]} is too small "
                             "(at least 4 x 4)")
    if not np.isin(arr, (0, 1)).all():
        bad = np.unique(arr[~np.isin(arr, (0, 1))])[:5].tolist()
        raise RecordingError(f"{where}: values must be 0 or 1, found {bad}")


def read_split(folder: Path) -> np.ndarray:
    if not folder.is_dir():
        raise RecordingError(f"{folder}: no such folder (expected {folder.name}/0.npy, 1.npy, ...)")
    indices = sorted(int(m.group(1)) for m in map(_INDEX.match, os.listdir(folder)) if m)
    if not indices:
        raise RecordingError(f"{folder}: holds no N.npy files")
    if indices[-1] != len(indices) - 1:
        missing = next(i for i, v in enumerate(indices) if i != v)
        raise RecordingError(f"{folder / f'{missing}.npy'}: missing (the files must be numbered "
                             f"0..{indices[-1]} without gaps)")
    out, board, header = None, None, b""
    for i in indices:
        path = folder / f"{i}.npy"
        try:
            raw = path.read_bytes()
            size = len(header) + 8 * board[0] * board[1] if board else -1
            if board and raw.startswith(header) and len(raw) == size:
                arr = np.frombuffer(raw, dtype="<i4", offset=len(header)).reshape(2, *board)
            else:  # the first file, another dtype or layout: let numpy parse it
                arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise RecordingError(f"{path}: not a readable .npy array ({_reason(path, exc)})"
                                 ) from None
        _check_pair(arr, str(path), board)
        if out is None:  # the first file decides the board size
            board = tuple(arr.shape[1:])
            header = _npy_header(board)
            out = np.empty((len(indices), 2, *board), dtype=np.uint8)
        out[i] = arr
    return out


def _reason(path: Path, exc: Exception) -> str:
    if path.is_file() and path.stat().st_size == 0:
        return "the file is empty (0 bytes)"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"corrupt or truncated: {type(exc).__name__}{': ' + text if text else ''}"


def load_npy(path: str | Path, missing: str = "no such file") -> np.ndarray:
    """One ``.npy`` array, or a :class:`RecordingError` that names the file and says why."""
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: {missing}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise RecordingError(f"{path}: not a readable .npy array ({_reason(path, exc)})"
                             ) from None


def pair_count(folder: Path) -> int:
    """How many pairs a split folder holds: ``N.npy`` files (the original layout) or ``N/``
    folders (the later layout); 0 if it is not there."""
    if not folder.is_dir():
        return 0
    return sum(1 for n in os.listdir(folder) if _INDEX.match(n) or
               (n.isdigit() and (folder / n).is_dir()))


def read_compact(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {s: z[s] for s in SPLITS if s in z}
    except Exception as exc:  # noqa: BLE001 - zip, zlib, CRC and format errors alike
        raise RecordingError(f"{path}: not a readable .npz file ({_reason(path, exc)})"
                             ) from None
    if not data:
        raise RecordingError(f"{path}: holds neither a train nor a test array")
    for split, arr in data.items():
        if arr.ndim != 4 or arr.shape[1] != 2 or min(arr.shape[2:]) < 4:
            raise RecordingError(f"{path}: {split} must have shape (N, 2, rows, cols) with "
                                 f"boards at least 4 x 4, got {arr.shape}")
        if not np.isin(arr, (0, 1)).all():
            raise RecordingError(f"{path}: {split} holds values other than 0 and 1")
    return {k: v.astype(np.uint8) for k, v in data.items()}


def load_any(path: str | Path, split: Optional[str], read_compact, read_split,
             agree=None) -> dict:
    """{split: data} from a compact file or a folder of splits, either layout: the compact file
    (given, or beside the folders: one read instead of one per example) is preferred, and
    ``agree(path, data)`` checks it against the folders beside it. ``split`` picks one."""
    path = Path(path)
    if path.is_dir():
        check_complete(path)
    if path.is_file():
        data = read_compact(path)
    elif (path / COMPACT_NAME).is_file():
        data = read_compact(path / COMPACT_NAME)
        if agree is not None:
            agree(path, data)
    elif path.is_dir():
        wanted = [split] if split else [s for s in SPLITS if (path / s).is_dir()]
        if not wanted:
            raise RecordingError(f"{path}: expected train/ and test/ folders or {COMPACT_NAME}")
        data = {s: read_split(path / s) for s in wanted}
    else:
        raise RecordingError(f"{path}: no such recording (a folder with train/ and test/, or "
                             f"a {COMPACT_NAME} file)")
    if split is not None:
        if split not in data:
            raise RecordingError(f"{path}: has no {split} split")
        return {split: data[split]}
    return data


def _compact_agrees(path: Path, data: dict) -> None:
    for s, arr in data.items():
        files = pair_count(path / s)
        if files and files != len(arr):
            raise RecordingError(
                f"{path}: {COMPACT_NAME} holds {len(arr)} {s} pairs but {path / s}/ holds "
                f"{files} files; they disagree (one is from another recording, or was cut "
                f"short): remove the wrong one")


def load_recording(path: str | Path, split: Optional[str] = None) -> dict:
    """{split: (N, 2, 22, 10) uint8} from a compact file or an original-layout folder (the
    compact file beside the folders is preferred: one read instead of one per pair)."""
    return load_any(path, split, read_compact, read_split, _compact_agrees)


def check_complete(folder: Path) -> None:
    """A recording made by ``record`` says in ``recording.json`` whether it was finished and
    how many pairs each split holds; one that was killed mid-write, or lost files since, is an
    error. A folder without the manifest (the original project's) is taken as it is."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return
    try:
        manifest = json.loads(path.read_text())
        counts = dict(manifest["pairs"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordingError(f"{path}: not a readable recording manifest ({exc})") from None
    if not manifest.get("complete"):
        raise RecordingError(f"{folder}: incomplete recording: {MANIFEST_NAME} says it was "
                             "still being written (killed mid-write?); record it again")
    for split, n in counts.items():
        files = pair_count(folder / split)
        if files and files != n:
            raise RecordingError(f"{folder / split}: holds {files} pair files, but "
                                 f"{MANIFEST_NAME} says the recording made {n}")
