"""The interactive ruleset (docs/TETRIS_RULES.md, second part): the engine rule by rule on
hand-made boards, the players, the lenient legality judge and the later recording layout."""
import collections

import numpy as np
import pytest

from ganlab.errors import ConfigError
from ganlab.tetris.interactive import (DROP, INSTANT, LEFT, RIGHT, ROTATE, InteractiveEngine,
                                       Piece, spawn_array)
from ganlab.tetris.interactive_metrics import judge, legal_next_boards, legal_transition
from ganlab.tetris.interactive_recordings import (is_interactive, load_interactive,
                                                  record_interactive, record_transitions)
from ganlab.tetris.players import make_player, placements, play_game
from ganlab.tetris.recordings import COMPACT_NAME, RecordingError

T, S, Z, J, L, I, O = range(1, 8)
HORIZONTAL_I = np.array([[I, I, I, I]], np.int8)


def engine(locked=None, piece=None, top=0, left=0):
    """An engine on a hand-made locked board with ``piece`` (an array) falling at (top, left)."""
    e = InteractiveEngine(rng=np.random.default_rng(0),
                          locked=None if locked is None else np.array(locked, np.int8))
    if piece is not None:
        e.piece = Piece(np.array(piece, np.int8), top, left)
    return e


def cells(board, colour=None):
    b = np.asarray(board)
    return {tuple(map(int, rc)) for rc in np.argwhere(b > 0 if colour is None else b == colour)}


def locked_with(*coords, colour=J):
    b = np.zeros((22, 10), np.int8)
    for r, c in coords:
        b[r, c] = colour
    return b


# ---------------------------------------------------------------- moves

def test_left_and_right_move_one_column_when_the_piece_fits():
    e = engine(piece=spawn_array(T), top=5, left=3)
    e.step(LEFT)
    assert (e.piece.top, e.piece.left) == (5, 2)
    e.step(RIGHT)
    e.step(RIGHT)
    assert (e.piece.top, e.piece.left) == (5, 4)
    assert cells(e.board()) == {(5, 4), (5, 5), (5, 6), (6, 5)}


def test_a_wall_blocks_a_move():
    e = engine(piece=spawn_array(T), top=5, left=0)
    before = e.board()
    assert np.array_equal(e.step(LEFT), before) and e.piece.left == 0
    e = engine(piece=HORIZONTAL_I, top=5, left=6)  # cells in columns 6-9
    before = e.board()
    assert np.array_equal(e.step(RIGHT), before) and e.piece.left == 6


def test_the_stack_blocks_a_move():
    # T at columns 3-5 of rows 5-6; a locked cell at (5, 6) blocks RIGHT, one at (5, 2) LEFT
    e = engine(locked_with((5, 6), (5, 2)), spawn_array(T), top=5, left=3)
    before = e.board()
    assert np.array_equal(e.step(RIGHT), before)
    assert np.array_equal(e.step(LEFT), before)
    assert (e.piece.top, e.piece.left) == (5, 3)


def test_a_move_that_leaves_the_piece_resting_locks_it():
    # O over column 2-3 with a locked cell under column 1: moving left makes it rest
    e = engine(locked_with((8, 1)), spawn_array(O), top=6, left=2)
    e.step(LEFT)
    assert e.piece is None
    assert cells(e.locked, O) == {(6, 1), (6, 2), (7, 1), (7, 2)}
    board = e.board()
    assert np.array_equal(e.step(RIGHT), board)  # locked: later moves change nothing


def test_drop_moves_down_one_row_and_locks_on_the_floor():
    e = engine(piece=spawn_array(O), top=18, left=4)
    e.step(DROP)
    assert (e.piece.top, e.piece.left) == (19, 4)  # rows 19-20: row 21 is free, still falling
    e.step(DROP)
    assert e.piece is None and cells(e.locked) == {(20, 4), (20, 5), (21, 4), (21, 5)}


def test_instant_drop_moves_down_until_it_rests_and_locks():
    stack = locked_with((15, 4))
    e = engine(stack, spawn_array(T), top=2, left=3)  # the T's stem is over column 4
    e.step(INSTANT)
    assert e.piece is None
    assert cells(e.locked, T) == {(13, 3), (13, 4), (13, 5), (14, 4)}
    e = engine(piece=spawn_array(T), top=2, left=0)
    e.step(INSTANT)
    assert cells(e.locked, T) == {(20, 0), (20, 1), (20, 2), (21, 1)}


# ---------------------------------------------------------------- rotation

def test_rotation_turns_clockwise_keeping_the_top_left_corner():
    e = engine(piece=spawn_array(J), top=5, left=3)  # [[4,0,0],[4,4,4]]
    e.step(ROTATE)
    assert np.array_equal(e.piece.array, [[J, J], [J, 0], [J, 0]])
    assert (e.piece.top, e.piece.left) == (5, 3)
    assert cells(e.board()) == {(5, 3), (5, 4), (6, 3), (7, 3)}


@pytest.mark.parametrize("blocked, expected", [
    ([], (5, 3)),  # in place
    ([(8, 3)], (5, 2)),  # in place blocked: one column left (before right)
    ([(8, 3), (8, 2)], (5, 4)),  # and left blocked: one column right
    ([(8, 3), (8, 2), (8, 4)], (4, 3)),  # and right blocked: one row up
])
def test_the_four_rotation_tries_in_order(blocked, expected):
    # a horizontal I at row 5, columns 3-6 turns into a vertical I at its top-left corner
    e = engine(locked_with(*blocked), HORIZONTAL_I, top=5, left=3)
    e.step(ROTATE)
    board = e.board()
    top, left = expected
    assert cells(board, I) == {(top + k, left) for k in range(4)}
    if expected == (4, 3):  # the raised I rests on (8, 3): the rotation locked it
        assert e.piece is None
    else:
        assert e.piece is not None and e.piece.array.shape == (4, 1)


def test_a_rotation_that_fits_nowhere_changes_nothing():
    e = engine(locked_with((8, 3), (8, 2), (8, 4), (4, 3)), HORIZONTAL_I, top=5, left=3)
    before = e.board()
    assert np.array_equal(e.step(ROTATE), before)
    assert e.piece.array.shape == (1, 4) and e.piece is not None
    # at the right wall, a vertical I cannot turn: none of the four tries lies on the board
    e = engine(piece=np.array([[I]] * 4, np.int8), top=5, left=9)
    before = e.board()
    assert np.array_equal(e.step(ROTATE), before)


def test_a_rotation_that_leaves_the_piece_resting_locks_it():
    # a horizontal I at row 5 turns upright in place, onto a locked cell at (9, 3)
    e = engine(locked_with((9, 3)), HORIZONTAL_I, top=5, left=3)
    e.step(ROTATE)
    assert e.piece is None and cells(e.locked, I) == {(5 + k, 3) for k in range(4)}
    e = engine(locked_with((10, 3)), HORIZONTAL_I, top=5, left=3)
    e.step(ROTATE)  # one row higher, it still falls
    assert e.piece is not None and e.piece.array.shape == (4, 1)


# ---------------------------------------------------------------- spawns, clears, game over

def test_a_drop_with_no_piece_spawns_at_the_spawn_column():
    for colour, left in ((T, 3), (I, 3), (O, 4), (S, 3)):
        e = engine()
        board = e.step(DROP, colour)
        a = spawn_array(colour)
        assert (e.piece.top, e.piece.left) == (0, left)
        assert np.array_equal(board[:a.shape[0], left:left + a.shape[1]], a)
        assert cells(board) == cells(board, colour)


def test_a_spawn_that_rests_locks_at_once():
    e = engine(locked_with(*[(2, c) for c in range(9)]))
    e.step(DROP, T)
    assert e.piece is None and cells(e.locked, T) == {(0, 3), (0, 4), (0, 5), (1, 4)}


def test_spawned_pieces_are_uniform_over_the_seven():
    e, counts = InteractiveEngine(rng=np.random.default_rng(5)), collections.Counter()
    for _ in range(7000):
        e.locked[:], e.piece = 0, None
        e.step(DROP)
        counts[e.piece.colour] += 1
    assert set(counts) == set(range(1, 8))
    assert all(abs(n / 7000 - 1 / 7) < 0.02 for n in counts.values())


@pytest.mark.parametrize("full_rows", [[21], [20, 21], [17, 19, 21], [18, 19, 20, 21]])
def test_full_rows_clear_at_the_next_spawn(full_rows):
    locked = np.zeros((22, 10), np.int8)
    for r in range(14, 22):  # rows 14-21 hold one cell each in a different column...
        locked[r, r - 12] = L
    for r in full_rows:  # ...except the full rows
        locked[r] = Z
    e = engine(locked)
    e.step(DROP, O)
    assert e.cleared == len(full_rows) and e.lines == len(full_rows)
    kept = [r for r in range(14, 22) if r not in full_rows]
    expected = np.zeros((22, 10), np.int8)
    for new_row, r in zip(range(22 - len(kept), 22), kept):  # in order, pushed down
        expected[new_row, r - 12] = L
    assert np.array_equal(e.locked, expected)
    assert cells(e.board(), O) == {(0, 4), (0, 5), (1, 4), (1, 5)}


def test_a_full_row_stays_until_the_next_spawn():
    locked = locked_with(*[(21, c) for c in range(6)])
    e = engine(locked, HORIZONTAL_I, top=20, left=6)
    e.step(DROP)  # the I completes row 21 and locks; no clear yet
    assert e.piece is None and (e.locked[21] > 0).all() and e.cleared == 0
    assert (e.step(LEFT)[21] > 0).all()  # a move with no piece changes nothing
    e.step(DROP, T)
    assert e.cleared == 1 and not e.locked[21].any()


def test_game_over_when_the_spawn_does_not_fit():
    e = engine(locked_with((1, 4)))
    board = e.step(DROP, T)  # the T's stem would land on (1, 4)
    assert e.over and e.piece is None
    assert cells(board, T) == {(0, 3), (0, 4), (0, 5)}  # drawn only over empty cells
    assert board[1, 4] == J
    with pytest.raises(RuntimeError, match="game is over"):
        e.step(DROP)


def test_no_change_for_a_move_with_no_piece_falling():
    e = engine(locked_with((21, 0), (20, 0), (21, 5)))
    before = e.board()
    for event in (LEFT, RIGHT, ROTATE, INSTANT):
        assert np.array_equal(e.step(event), before)
        assert e.piece is None and e.spawns == 0


def test_bad_events_and_colours_are_named():
    with pytest.raises(ValueError, match="event must be 0-4"):
        engine().step(5)
    with pytest.raises(ValueError, match="colour must be 1-7"):
        engine().step(DROP, 9)


# ---------------------------------------------------------------- players

def test_the_human_player_plays_in_the_human_proportions():
    rng = np.random.default_rng(0)
    player = make_player("human", rng)
    events, clears, spawns, games, n = collections.Counter(), collections.Counter(), 0, 0, 0
    while n < 30_000:
        eng = InteractiveEngine(rng=rng)
        player.new_game()
        while not eng.over and n < 30_000:
            e = player(eng)
            eng.step(e)
            events[e] += 1
            clears[eng.cleared] += 1
            n += 1
        spawns += eng.spawns
        games += eng.over
    share = {k: v / n for k, v in events.items()}
    # the original's human play: 40% drop, 24% right, 15% left, 11% rotate, 10% instant drop
    for event, target in ((DROP, .40), (RIGHT, .24), (LEFT, .15), (ROTATE, .11), (INSTANT, .10)):
        assert abs(share[event] - target) < 0.06, (event, share)
    assert 0.06 < spawns / n < 0.14  # the original: about 9% of transitions are spawns
    # clears of one to three rows in every 30,000 events (four-row clears come about once in
    # 30,000: the placement test below shows the player takes them when the well is there)
    assert all(clears[k] > 0 for k in (1, 2, 3)), clears
    assert games >= 5  # and game overs


def test_the_human_player_targets_good_placements():
    # on a board with a one-column gap, the best placement of an I is upright into the gap
    locked = locked_with(*[(r, c) for r in range(18, 22) for c in range(10) if c != 7])
    best = placements(locked, np.array([[I] * 4], np.int8), 0)[0]
    assert best[1].shape == (4, 1) and best[2] == 7


def test_the_random_player_drops_at_least_every_third_event():
    rng = np.random.default_rng(2)
    _, events = play_game(make_player("random", rng), rng, max_events=5000)
    run = 0
    for e in events:
        run = 0 if e == DROP else run + 1
        assert run <= 2
    assert set(np.unique(events)) == {0, 1, 2, 3, 4}


def test_an_unknown_player_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown player 'robot'; valid: human, random"):
        make_player("robot", np.random.default_rng(0))


# ---------------------------------------------------------------- the legality judge

@pytest.mark.parametrize("name", ["human", "random"])
def test_every_transition_of_the_engine_is_legal_and_a_changed_cell_is_not(name):
    rng = np.random.default_rng(3)
    boards, events = play_game(make_player(name, rng), rng, max_events=600)
    spawns = 0
    for x, e, y in zip(boards[:-1], events, boards[1:]):
        verdict = judge(x, e, y)
        assert verdict["legal"]
        spawns += verdict["spawn"]
        wrong = y.copy()
        wrong[21, 9] = 0 if wrong[21, 9] else 3
        assert not legal_transition(x, e, wrong)
    assert spawns >= 5


def test_the_lenient_reading_allows_either_reading_of_a_floating_piece():
    # a T floating in mid-air may be falling (a drop moves it) or left floating by a clear
    # (a drop spawns): both next boards are legal, a T moved two rows is not
    board = np.zeros((22, 10), np.int8)
    board[10, 3:6], board[11, 4] = T, T
    nexts = legal_next_boards(board, DROP)
    assert len(nexts["spawn"]) == 7 and len(nexts["move"]) == 1
    moved = np.roll(board, 1, axis=0)
    v = judge(board, DROP, moved)
    assert v["legal"] and not v["spawn"] and v["colour"] == 0
    spawned = board.copy()
    spawned[0, 4:6], spawned[1, 4:6] = O, O
    v = judge(board, DROP, spawned)
    assert v["legal"] and v["spawn"] and v["colour"] == 7 and not v["over"]  # an O
    assert not legal_transition(board, DROP, np.roll(board, 2, axis=0))
    # a piece of the wrong colour for its shape is no piece: it cannot move
    wrong = np.where(board > 0, S, 0).astype(np.int8)
    assert not legal_transition(wrong, LEFT, np.roll(wrong, -1, axis=1))


# ---------------------------------------------------------------- recordings

def test_record_writes_the_later_layout_and_a_compact_file(tmp_path):
    out = tmp_path / "rec"
    data = record_interactive(out, 300, 100, seed=4, player="human")
    assert (out / "train" / "0" / "boards.npy").is_file()
    b0 = np.load(out / "train" / "0" / "boards.npy")
    e0 = np.load(out / "train" / "0" / "events.npy")
    assert b0.dtype == np.int32 and b0.shape == (2, 22, 10) and e0.shape == (1,)
    assert e0.dtype == np.int32
    assert not (out / "train" / "300").exists() and (out / "test" / "99").is_dir()
    assert is_interactive(out)
    compact = load_interactive(out)
    (out / COMPACT_NAME).unlink()
    folders = load_interactive(out)
    for split in ("train", "test"):
        assert np.array_equal(compact[split][0], folders[split][0])
        assert np.array_equal(compact[split][1], folders[split][1])
        assert np.array_equal(folders[split][0], data[split][0])
    boards, events = folders["train"]
    assert all(legal_transition(x, e, y) for (x, y), e in zip(boards[:100], events[:100]))
    # train and test come from different games
    assert not np.array_equal(folders["train"][0][:100], folders["test"][0][:100])


def test_recording_is_seeded():
    a = record_transitions(200, np.random.default_rng(1), "random")
    b = record_transitions(200, np.random.default_rng(1), "random")
    c = record_transitions(200, np.random.default_rng(2), "random")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.fixture
def recording(tmp_path):
    out = tmp_path / "rec"
    record_interactive(out, 5, 3, seed=0, compact=False)
    return out


def test_a_missing_events_file_is_named(recording):
    (recording / "train" / "2" / "events.npy").unlink()
    with pytest.raises(RecordingError, match=r"train/2/events\.npy: missing"):
        load_interactive(recording)


def test_an_event_outside_0_4_is_named(recording):
    np.save(recording / "test" / "1" / "events.npy", np.array([7], np.int32))
    with pytest.raises(RecordingError, match=r"test/1: events must be 0-4.*found \[7\]"):
        load_interactive(recording)


def test_cells_outside_0_7_are_named(recording):
    b = np.load(recording / "train" / "0" / "boards.npy")
    b[1, 3, 3] = 8
    np.save(recording / "train" / "0" / "boards.npy", b)
    with pytest.raises(RecordingError, match=r"train/0: cells must be 0-7, found \[8\]"):
        load_interactive(recording)


def test_a_gap_in_the_numbering_is_named(recording):
    import shutil
    shutil.rmtree(recording / "train" / "3")
    with pytest.raises(RecordingError, match=r"train: holds 4 pair.*recording.json says .* 5"):
        load_interactive(recording)  # a recording of ganlab's own checks its manifest first
    (recording / "recording.json").unlink()  # a folder from elsewhere has none
    with pytest.raises(RecordingError, match=r"train/3: missing .*numbered 0\.\.4 without gaps"):
        load_interactive(recording)


def test_a_wrongly_shaped_board_file_is_named(recording):
    np.save(recording / "train" / "1" / "boards.npy", np.zeros((2, 20, 10), np.int32))
    with pytest.raises(RecordingError, match=r"train/1/boards\.npy: expected shape \(2, 22, 10\)"):
        load_interactive(recording)


def test_record_cli_interactive(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "r"
    r = subprocess.run([sys.executable, "-m", "ganlab", "tetris", "record", str(out),
                        "--ruleset", "interactive", "--player", "random", "--train", "60",
                        "--test", "20", "--seed", "5"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "train: 60 transitions" in r.stdout and "events: drop" in r.stdout
    assert (out / "test" / "19" / "events.npy").is_file() and (out / COMPACT_NAME).is_file()
    boards, events = load_interactive(out)["train"]
    assert boards.shape == (60, 2, 22, 10) and events.shape == (60,)
    r = subprocess.run([sys.executable, "-m", "ganlab", "tetris", "record", str(tmp_path / "c"),
                        "--player", "human"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--player: only the interactive ruleset" in r.stderr
    r = subprocess.run([sys.executable, "-m", "ganlab", "tetris", "record", str(tmp_path / "c"),
                        "--ruleset", "interactive", "--player", "robot"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "invalid choice: 'robot'" in r.stderr and "human" in r.stderr
