"""The classic ruleset tick by tick on hand-made boards, recordings, and the emulator metrics."""
import subprocess
import sys

import numpy as np
import pytest

from ganlab.tetris.metrics import (actual_spawns, board_ceiling, emulator_metrics, legal_fall,
                                   legal_spawn, piece_diversity, spawn_piece,
                                   spawned_piece_rests)
from ganlab.tetris.encoding import one_hot
from ganlab.tetris.recordings import (RecordingError, load_recording, read_split, record,
                                      record_pairs)
from ganlab.tetris.rules import COLS, PIECE_NAMES, PIECES, ROWS, TetrisEngine, empty_board

SPEC_CELLS = {  # TETRIS_RULES.md, "Pieces and where they appear"
    "I": [(0, 3), (0, 4), (0, 5), (0, 6)], "O": [(0, 4), (0, 5), (1, 4), (1, 5)],
    "J": [(0, 3), (1, 3), (1, 4), (1, 5)], "T": [(0, 3), (0, 4), (0, 5), (1, 4)],
    "S": [(0, 4), (0, 5), (1, 3), (1, 4)], "L": [(0, 5), (1, 3), (1, 4), (1, 5)],
    "Z": [(0, 3), (0, 4), (1, 4), (1, 5)],
}


def board(*cells):
    b = empty_board()
    for r, c in cells:
        b[r, c] = 1
    return b


def shifted(cells, dr):
    return [(r + dr, c) for r, c in cells]


@pytest.mark.parametrize("name", list(SPEC_CELLS))
def test_spawn_cells_of_every_piece(name):
    eng = TetrisEngine()
    frame = eng.tick(piece=name)
    assert np.array_equal(frame, board(*SPEC_CELLS[name]))
    assert eng.piece == name and not eng.locked.any()  # still falling


def test_a_falling_piece_moves_down_one_row_per_tick():
    eng = TetrisEngine()
    eng.tick(piece="T")
    for k in range(1, 5):
        assert np.array_equal(eng.tick(), board(*shifted(SPEC_CELLS["T"], k)))


def test_locks_on_the_floor_in_the_tick_it_arrives_then_spawns():
    eng = TetrisEngine()
    eng.tick(piece="I")  # row 0
    for _ in range(21):
        frame = eng.tick()
    assert np.array_equal(frame, board(*shifted(SPEC_CELLS["I"], 21)))
    assert eng.falling is None and eng.locked[21, 3:7].all()  # locked on arrival at row 21
    frame = eng.tick(piece="O")  # the next tick spawns
    assert np.array_equal(frame, board(*shifted(SPEC_CELLS["I"], 21), *SPEC_CELLS["O"]))


def test_locks_on_the_stack():
    eng = TetrisEngine()
    eng.locked[10, 5] = True  # a single locked cell under the O's right column
    eng.tick(piece="O")  # rows 0-1
    frames = [eng.tick() for _ in range(8)]  # O reaches rows 8-9 and rests on (10, 5)
    assert np.array_equal(frames[-1], board((10, 5), (8, 4), (8, 5), (9, 4), (9, 5)))
    assert eng.falling is None
    assert np.array_equal(frames[-2], board((10, 5), (7, 4), (7, 5), (8, 4), (8, 5)))


def test_overhang_rests_on_any_cell():
    eng = TetrisEngine()
    eng.locked[5, 3] = True  # under the T's left arm only
    eng.tick(piece="T")
    for _ in range(3):
        eng.tick()
    assert eng.falling is not None  # at rows 3-4: the arm (3, 3) is not above (5, 3) yet
    frame = eng.tick()
    assert eng.falling is None  # at rows 4-5 the arm (4, 3) is above the locked (5, 3)
    assert np.array_equal(frame, board((5, 3), *shifted(SPEC_CELLS["T"], 4)))


def test_game_over_when_a_locked_cell_is_in_row_0():
    eng = TetrisEngine()
    eng.locked[2:, 4] = True  # a column up to row 2: the O spawned at rows 0-1 rests at once
    frame = eng.tick(piece="O")
    assert np.array_equal(frame[:2], board(*SPEC_CELLS["O"])[:2])
    assert eng.falling is None and eng.locked[0].any()
    assert eng.tick() is None and eng.over  # no new frame


def test_a_whole_game_follows_the_rules():
    frames = TetrisEngine(rng=np.random.default_rng(3)).play()
    assert not frames[0].any()  # frame 0 is the empty board
    for a, b in zip(frames[:-1], frames[1:]):
        assert legal_fall(a, b) or legal_spawn(a, b)
    assert frames[-1][0].any()  # the game ended with the stack at the top
    no_clear = frames.sum(axis=(1, 2))
    assert (np.diff(no_clear) >= 0).all()  # no line ever clears


def test_unknown_piece():
    with pytest.raises(ValueError, match="unknown piece 'X'"):
        TetrisEngine().tick(piece="X")


# --- recordings ----------------------------------------------------------------------------

def test_record_original_layout_and_compact(tmp_path):
    data = record(tmp_path / "rec", 300, 50, seed=1)
    for split, n in (("train", 300), ("test", 50)):
        files = sorted((tmp_path / "rec" / split).iterdir())
        assert len(files) == n
        arr = np.load(tmp_path / "rec" / split / "7.npy")
        assert arr.dtype == np.int32 and arr.shape == (2, ROWS, COLS)
        assert np.array_equal(arr, data[split][7])
    for pair in data["train"]:
        assert legal_fall(pair[0], pair[1]) or legal_spawn(pair[0], pair[1])
    share = (~data["train"][:, 0, 0].any(-1) & data["train"][:, 1, 0].any(-1)).mean()
    assert 0.05 < share < 0.15  # spec: about 8-10% spawns
    layout = read_split(tmp_path / "rec" / "train")
    compact = load_recording(tmp_path / "rec" / "recording.npz")
    assert np.array_equal(layout, compact["train"]) and np.array_equal(layout, data["train"])
    again = record(tmp_path / "again", 300, 50, seed=1, layout=False)
    assert np.array_equal(again["train"], data["train"])  # same seed, same data
    other = record(tmp_path / "other", 300, 50, seed=2, layout=False)
    assert not np.array_equal(other["train"], data["train"])


def test_pairs_are_consecutive_frames_of_games():
    from ganlab.tetris.recordings import game_pairs
    frames = TetrisEngine(rng=np.random.default_rng(0)).play()
    pairs = game_pairs(frames)
    assert np.array_equal(pairs[0, 0], frames[0]) and np.array_equal(pairs[0, 1], frames[1])
    assert np.array_equal(pairs[1, 0], frames[2]) and len(pairs) == len(frames) // 2
    every = game_pairs(frames, every_frame=True)
    assert len(every) == len(frames) - 1
    assert np.array_equal(every[:, 0], frames[:-1]) and np.array_equal(every[:, 1], frames[1:])


def _first_piece_on_the_floor(boards) -> int:
    """How many boards hold only a height-2 piece locked on the floor (rows 20-21)."""
    count = 0
    for b in boards:
        if b.sum() == 4 and b[20:].sum() == 4 and b[20].any() and b[21].any():
            count += 1
    return count


def test_every_frame_pairs_feed_boards_the_original_layout_never_shows():
    from ganlab.tetris.recordings import record_pairs
    orig = record_pairs(6000, np.random.default_rng(0))
    every = record_pairs(6000, np.random.default_rng(0), every_frame=True)
    # a height-2 first piece locks on the empty floor at frame 21: odd, never a board t ...
    assert _first_piece_on_the_floor(orig[:, 0]) == 0
    assert _first_piece_on_the_floor(orig[:, 1]) > 0
    # ... unless every frame is a board t once
    assert _first_piece_on_the_floor(every[:, 0]) > 0
    assert all(legal_fall(x, y) or legal_spawn(x, y) for x, y in every[:500])


def _write(folder, i, arr):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{i}.npy", arr)


def test_recording_errors_name_the_file(tmp_path):
    good = np.zeros((2, ROWS, COLS), np.int32)
    with pytest.raises(RecordingError, match="no such recording"):
        load_recording(tmp_path / "missing")
    gap = tmp_path / "gap" / "train"
    for i in (0, 1, 3):
        _write(gap, i, good)
    with pytest.raises(RecordingError, match=r"train/2\.npy: missing"):
        load_recording(tmp_path / "gap")
    shape = tmp_path / "shape" / "train"
    _write(shape, 0, good)
    _write(shape, 1, np.zeros((2, 20, 10), np.int32))
    with pytest.raises(RecordingError, match=r"train/1\.npy: expected shape \(2, 22, 10\)"):
        load_recording(tmp_path / "shape")
    vals = tmp_path / "vals" / "test"
    bad = good.copy()
    bad[0, 3, 3] = 2
    _write(vals, 0, bad)
    with pytest.raises(RecordingError, match=r"test/0\.npy: values must be 0 or 1, found \[2\]"):
        load_recording(tmp_path / "vals")
    int64 = tmp_path / "i64" / "train"
    _write(int64, 0, good.astype(np.int64))  # other dtypes are parsed by numpy and accepted
    assert load_recording(tmp_path / "i64")["train"].shape == (1, 2, ROWS, COLS)


def test_one_hot_matches_the_originals():
    b = np.zeros((ROWS, COLS), np.int32)
    b[5, 5] = 1
    oh = one_hot(b)
    assert oh.shape == (2, ROWS, COLS)
    assert oh[1, 5, 5] == 1 and oh[0, 5, 5] == 0 and oh[0, 0, 0] == 1 and oh.sum() == ROWS * COLS


def test_record_cli(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ganlab", "tetris", "record", str(tmp_path / "r"),
                        "--train", "40", "--test", "10", "--seed", "5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "train: 40 pairs" in r.stdout and (tmp_path / "r" / "test" / "9.npy").is_file()
    r = subprocess.run([sys.executable, "-m", "ganlab", "tetris", "record", str(tmp_path / "r"),
                        "--train", "-1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--train and --test must be >= 0" in r.stderr


# --- metrics -------------------------------------------------------------------------------

def test_metrics_on_hand_made_predictions():
    stack = [(21, c) for c in range(10)]
    x_spawn, y_spawn = board(*stack), board(*stack, *SPEC_CELLS["T"])
    x_fall = board(*stack, *shifted(SPEC_CELLS["O"], 5))
    y_fall = board(*stack, *shifted(SPEC_CELLS["O"], 6))
    x = np.stack([x_spawn, x_spawn, x_fall, x_fall])
    y = np.stack([y_spawn, y_spawn, y_fall, y_fall])
    p = np.stack([board(*stack, *SPEC_CELLS["L"]),  # a valid spawn, another piece
                  board(*stack, (0, 0)),             # a spawn, not valid
                  y_fall,                            # right
                  x_fall])                           # wrong: did not fall
    m = emulator_metrics(x, y, p)
    assert m["board_accuracy"] == 0.25 and m["fall_accuracy"] == 0.5
    assert m["spawn_recall"] == 1.0 and m["spawn_precision"] == 1.0
    assert m["spawn_validity"] == 0.5 and m["spawn_share"] == 0.5
    assert m["board_accuracy_ceiling"] == pytest.approx(0.5 + 0.5 / 7)
    assert m["cell_accuracy"] == pytest.approx(1 - (4 + 5 + 0 + 4) / (4 * 220))
    none = emulator_metrics(x, y, x)  # nothing predicted to spawn
    assert none["spawn_precision"] is None and none["spawn_validity"] is None
    assert none["spawn_recall"] == 0.0
    assert board_ceiling(0.0) == 1.0
    assert "spawn_validity_ceiling" not in m  # the ruling: one spawn validity, no ceiling


def test_spawn_onto_a_stack_at_row_1_is_valid_under_the_ruling():
    stack = [(r, c) for r in range(1, 22) for c in (4,)]  # column 4 reaches row 1
    x = board(*stack)
    y = board(*stack, *SPEC_CELLS["T"])  # T's (1, 4) is already filled: y - x misses it
    m = emulator_metrics(x[None], y[None], y[None])
    assert m["board_accuracy"] == 1.0 and m["spawn_recall"] == 1.0
    assert m["spawn_validity"] == 1.0  # p[0:3] == x[0:3] | mask
    assert spawn_piece(x[None], y[None]).tolist() == [PIECE_NAMES.index("T")]
    assert legal_spawn(x, y)  # the same reading as the rollout's legal spawn


def test_spawn_validity_ruling_edge_cases():
    o_or_s = board((1, 3), (1, 5))  # O's and S's unions are the same board here
    both = board((1, 3), (1, 5), *SPEC_CELLS["O"])
    assert np.array_equal(both, board((1, 3), (1, 5), *SPEC_CELLS["S"]))
    assert spawn_piece(o_or_s[None], both[None]).tolist() == [PIECE_NAMES.index("O")]
    assert piece_diversity(o_or_s[None], both[None, None])["piece_counts"]["O"] == 1
    low = board((21, 0))
    moved = board((21, 1), *SPEC_CELLS["I"])  # a spawn that also changes row 21: invalid
    assert spawn_piece(low[None], moved[None]).tolist() == [-1]
    over = board((0, 0))  # row 0 of board t not empty: no spawn can be valid
    assert spawn_piece(over[None], board((0, 0), *SPEC_CELLS["I"])[None]).tolist() == [-1]
    half = board(*SPEC_CELLS["L"][:3])  # three of L's four cells
    assert spawn_piece(empty_board()[None], half[None]).tolist() == [-1]


def test_true_boards_score_spawn_validity_one():
    pairs = record_pairs(4000, np.random.default_rng(11))
    x, y = pairs[:, 0], pairs[:, 1]
    m = emulator_metrics(x, y, y)
    covered = actual_spawns(x, y) & ((y - x)[:, 0:3].sum((1, 2)) < 4)  # spawns over row-1 cells
    assert covered.sum() >= 3  # the cases the ruling changed occur in a recording
    assert m["spawn_validity"] == 1.0 and m["spawn_precision"] == 1.0


def test_spawn_piece_identification_and_diversity():
    x = empty_board()
    ids = spawn_piece(np.stack([x] * 7), np.stack([board(*PIECES[n]) for n in PIECE_NAMES]))
    assert ids.tolist() == list(range(7))
    uniform = np.stack([board(*PIECES[n]) for n in PIECE_NAMES] * 10)[None]  # K = 70
    d = piece_diversity(x[None], uniform)
    assert d["piece_tv"] == pytest.approx(0.0) and d["piece_counts"]["T"] == 10
    collapsed = np.stack([board(*PIECES["T"])] * 50)[None]
    assert piece_diversity(x[None], collapsed)["piece_tv"] == pytest.approx(6 / 7)
    invalid = np.stack([board((0, 0))] * 5)[None]
    assert piece_diversity(x[None], invalid)["piece_tv"] is None


def test_legality_checks():
    x = board(*shifted(SPEC_CELLS["S"], 3))
    assert legal_fall(x, board(*shifted(SPEC_CELLS["S"], 4)))
    assert not legal_fall(x, board(*shifted(SPEC_CELLS["S"], 5)))  # two rows at once
    assert not legal_fall(x, board(*[(r + 1, c + 1) for r, c in shifted(SPEC_CELLS["S"], 3)]))
    rest = board(*shifted(SPEC_CELLS["I"], 21))
    assert not legal_fall(rest, empty_board())  # a locked piece does not move
    assert legal_spawn(empty_board(), board(*SPEC_CELLS["Z"]))
    assert not legal_spawn(empty_board(), board((0, 3), (0, 4), (1, 4), (1, 6)))
    assert not legal_spawn(board((0, 0)), board((0, 0), *SPEC_CELLS["Z"]))  # game was over
    tall = board(*[(r, 4) for r in range(2, 22)])
    assert spawned_piece_rests(tall, board(*[(r, 4) for r in range(2, 22)], *SPEC_CELLS["O"]))
    assert not spawned_piece_rests(empty_board(), board(*SPEC_CELLS["O"]))
    row1 = board((1, 4), (1, 5), (2, 4), (2, 5))  # a stack reaching row 1
    covered = board((1, 4), (1, 5), (2, 4), (2, 5), *SPEC_CELLS["T"])
    assert legal_spawn(row1, covered) and spawned_piece_rests(row1, covered)
    assert spawn_piece(row1[None], covered[None])[0] == PIECE_NAMES.index("T")  # the ruling
    eng = TetrisEngine()
    eng.locked[1:3, 4:6] = True
    assert np.array_equal(eng.tick(piece="T"), covered) and eng.tick() is None
