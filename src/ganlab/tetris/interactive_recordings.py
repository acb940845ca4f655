"""Recordings of the interactive ruleset (``docs/TETRIS_RULES.md``, "Recordings (the original
project's later layout)"): (board t, event, board t+1) transitions.

Later layout: a folder with ``train/`` and ``test/``, each holding numbered folders ``0/``, ``1/``,
... (no gaps), each with ``boards.npy`` (int32 (2, 22, 10), cells 0-7) and ``events.npy`` (int32
(1,), 0-4). The compact file (``recording.npz``) holds ``train_boards`` (N, 2, 22, 10) and
``train_events`` (N,) uint8, and the same for ``test``. Transitions of many games are shuffled
across folders, as in the classic layout.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

import numpy as np

from .interactive import N_CELLS, N_EVENTS, InteractiveEngine
from .players import make_player, play_game
from .recordings import (COMPACT_NAME, SPLITS, RecordingError, _reason, load_any, load_npy,
                         write_manifest)
from .rules import COLS, ROWS

RULESET = "interactive"
_INDEX = re.compile(r"^\d+$")


def record_transitions(n: int, rng: np.random.Generator, player: str = "human",
                       stats: Optional[dict] = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` transitions from as many whole games of ``player`` as needed, shuffled: boards
    (n, 2, 22, 10) and events (n,), uint8. ``stats`` gathers the games' counts (``play_game``)."""
    agent = make_player(player, rng)
    boards, events, total = [np.zeros((0, 2, ROWS, COLS), np.uint8)], [np.zeros(0, np.uint8)], 0
    while total < n:
        frames, ev = play_game(agent, rng, engine=InteractiveEngine(rng=rng), stats=stats)
        boards.append(np.stack([frames[:-1], frames[1:]], 1).astype(np.uint8))
        events.append(ev.astype(np.uint8))
        total += len(ev)
    order = rng.permutation(total)[:n]
    return np.concatenate(boards)[order], np.concatenate(events)[order]


def record_interactive(out: str | Path, n_train: int, n_test: int, seed: int = 0,
                       player: str = "human", layout: bool = True, compact: bool = True,
                       stats: Optional[dict] = None) -> dict:
    """Record a data set; train and test come from different games (independent RNG streams).
    Returns {split: (boards, events)}; ``stats``, if given, gets {split: the games' counts}."""
    out = Path(out)
    stats = {} if stats is None else stats
    stats.update(train={}, test={})
    data = {split: record_transitions(n, np.random.default_rng([seed, i]), player, stats[split])
            for i, (split, n) in enumerate((("train", n_train), ("test", n_test)))}
    out.mkdir(parents=True, exist_ok=True)
    counts = {split: len(ev) for split, (_, ev) in data.items()}
    extra = {"ruleset": RULESET, "player": player, "seed": seed}
    write_manifest(out, counts, False, **extra)
    if layout:
        for split, (boards, events) in data.items():
            write_layout(out / split, boards, events)
    if compact:
        tmp = out / (COMPACT_NAME + ".tmp.npz")
        np.savez_compressed(tmp, **{f"{s}_{k}": v for s, (b, e) in data.items()
                                    for k, v in (("boards", b), ("events", e))},
                            seed=np.int64(seed))
        os.replace(tmp, out / COMPACT_NAME)
    write_manifest(out, counts, True, layout=layout, compact=compact, **extra)
    return data


def write_layout(folder: Path, boards: np.ndarray, events: np.ndarray, start: int = 0) -> None:
    """Transitions as numbered folders ``start``, ``start + 1``, ... of ``folder`` (later layout:
    int32 ``boards.npy`` (2, 22, 10) and ``events.npy`` (1,))."""
    for i, (b, e) in enumerate(zip(np.asarray(boards).astype("<i4"),
                                   np.asarray(events).astype("<i4")), start):
        sub = Path(folder) / str(i)
        sub.mkdir(parents=True, exist_ok=True)
        np.save(sub / "boards.npy", b)
        np.save(sub / "events.npy", e.reshape(1))


def append_layout(folder: Path, boards: np.ndarray, events: np.ndarray) -> range:
    """Add transitions after the numbered folders ``folder`` already holds; returns their
    numbers."""
    folder = Path(folder)
    taken = [int(n) for n in os.listdir(folder) if _INDEX.match(n)] if folder.is_dir() else []
    start = max(taken) + 1 if taken else 0
    write_layout(folder, boards, events, start)
    return range(start, start + len(events))


_MISSING = "missing (each transition folder holds boards.npy and events.npy)"


def check_transitions(boards: np.ndarray, events: np.ndarray, where: str) -> None:
    """Shapes (N, 2, 22, 10) and (N,), cells 0-7, events 0-4; the message names ``where``."""
    if boards.ndim != 4 or boards.shape[1:] != (2, ROWS, COLS):
        raise RecordingError(f"{where}: boards must have shape (N, 2, {ROWS}, {COLS}), "
                             f"got {boards.shape}")
    if events.shape != (len(boards),):
        raise RecordingError(f"{where}: events must have shape ({len(boards)},) to match the "
                             f"boards, got {events.shape}")
    bad = boards[(boards < 0) | (boards >= N_CELLS)]
    if bad.size:
        raise RecordingError(f"{where}: cells must be 0-7, found {np.unique(bad)[:5].tolist()}")
    bad = events[(events < 0) | (events >= N_EVENTS)]
    if bad.size:
        raise RecordingError(f"{where}: events must be 0-4 (drop, left, right, rotate, instant "
                             f"drop), found {np.unique(bad)[:5].tolist()}")


def read_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    if not folder.is_dir():
        raise RecordingError(f"{folder}: no such folder (expected {folder.name}/0/boards.npy, "
                             f"{folder.name}/0/events.npy, ...)")
    indices = sorted(int(n) for n in os.listdir(folder) if _INDEX.match(n)
                     and (folder / n).is_dir())
    if not indices:
        raise RecordingError(f"{folder}: holds no numbered transition folders 0/, 1/, ...")
    if indices[-1] != len(indices) - 1:
        missing = next(i for i, v in enumerate(indices) if i != v)
        raise RecordingError(f"{folder / str(missing)}: missing (the folders must be numbered "
                             f"0..{indices[-1]} without gaps)")
    boards = np.empty((len(indices), 2, ROWS, COLS), np.uint8)
    events = np.empty(len(indices), np.uint8)
    for i in indices:
        bp, ep = folder / str(i) / "boards.npy", folder / str(i) / "events.npy"
        b, e = load_npy(bp, _MISSING), load_npy(ep, _MISSING)
        if b.shape != (2, ROWS, COLS):
            raise RecordingError(f"{bp}: expected shape (2, {ROWS}, {COLS}), got {b.shape}")
        if e.shape not in ((1,), ()):
            raise RecordingError(f"{ep}: expected shape (1,) (the one event), got {e.shape}")
        check_transitions(b[None], e.reshape(1), str(folder / str(i)))
        boards[i], events[i] = b, e.reshape(())
    return boards, events


def read_compact(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {s: (z[f"{s}_boards"], z[f"{s}_events"]) for s in SPLITS
                    if f"{s}_boards" in z and f"{s}_events" in z}
    except Exception as exc:  # noqa: BLE001 - zip, zlib, CRC and format errors alike
        raise RecordingError(f"{path}: not a readable .npz file ({_reason(path, exc)})"
                             ) from None
    if not data:
        raise RecordingError(f"{path}: holds no train_boards/train_events or "
                             f"test_boards/test_events arrays")
    for split, (b, e) in data.items():
        check_transitions(b, e, f"{path} ({split})")
    return {k: (b.astype(np.uint8), e.astype(np.uint8)) for k, (b, e) in data.items()}


def is_interactive(path: str | Path) -> bool:
    """Whether a recording is in the later layout (or its compact file)."""
    path = Path(path)
    compact = path if path.is_file() else path / COMPACT_NAME
    if compact.is_file():
        try:
            with np.load(compact, allow_pickle=False) as z:
                return any(k.endswith("_events") for k in z.files)
        except Exception:  # noqa: BLE001 - an unreadable file is reported by the loader
            return False
    return any((path / s / "0").is_dir() for s in SPLITS)


def load_interactive(path: str | Path, split: Optional[str] = None) -> dict:
    """{split: (boards (N, 2, 22, 10), events (N,))} from a compact file or a later-layout
    folder (the compact file is preferred)."""
    return load_any(path, split, read_compact, read_split)
