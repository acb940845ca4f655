"""Playing interactive Tetris: the session both front ends share, the web page in a real
browser (headless Chromium with real key presses, the board read back from the page) and the
terminal game under a pseudo-terminal."""
import os
import pty
import select
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from ganlab.errors import ConfigError
from ganlab.tetris.interactive import DROP, INSTANT, LEFT, RIGHT, ROTATE, InteractiveEngine
from ganlab.tetris.interactive_recordings import load_interactive
from ganlab.tetris.play_session import POINTS, PlaySession
from ganlab.tetris.serve import make_server

SEED = 11


def two_full_rows(session):
    session.rules.locked[20:] = 4  # two full rows: they clear at the next spawn
    session.board = session.rules.board()


def replay(events, full_rows=True):
    """The rule engine alone, from the same seed, for the same events."""
    e = InteractiveEngine(rng=np.random.default_rng(SEED))
    if full_rows:
        e.locked[20:] = 4
    for ev in events:
        e.step(ev)
    return e.board()


def test_the_session_counts_lines_and_score_and_records(tmp_path):
    s = PlaySession("rule", seed=SEED, record=tmp_path / "rec")
    two_full_rows(s)
    s.step(DROP)
    assert s.lines == 2 and s.score == POINTS[2] and not s.rules.locked[20:].any()
    for ev in (LEFT, ROTATE, INSTANT):
        s.step(ev)
    assert np.array_equal(s.board, replay([DROP, LEFT, ROTATE, INSTANT]))
    done = s.save_recording()
    assert list(done) == [0, 1, 2, 3]
    boards, events = load_interactive(tmp_path / "rec")["train"]
    assert events.tolist() == [DROP, LEFT, ROTATE, INSTANT]
    assert np.array_equal(boards[3, 1], s.board)
    s.step(DROP)
    assert list(s.save_recording()) == [4]  # a later session appends


def test_bad_engine_and_mode_are_named():
    with pytest.raises(ConfigError, match="unknown engine 'neural'; valid: rule, model"):
        PlaySession("neural")
    with pytest.raises(ConfigError, match="unknown mode 'fast'; valid: normal, prob"):
        PlaySession("rule", mode="fast")
    with pytest.raises(ConfigError, match="needs a trained interactive emulator"):
        PlaySession("model")


@pytest.fixture
def server():
    started = []

    def start(timer_ms=0):
        session = PlaySession("rule", seed=SEED)
        two_full_rows(session)
        srv = make_server(session, port=0, timer_ms=timer_ms)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return session, f"http://127.0.0.1:{srv.server_port}/"

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


def page_board(page):
    cells = page.eval_on_selector_all("#board .cell", "els => els.map(e => +e.dataset.v)")
    return np.array(cells, np.int8).reshape(22, 10)


def test_the_web_game_in_a_real_browser(browser, server):
    session, url = server(timer_ms=0)  # no timer: every board is made by a key press
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.ganlab.board !== null")
    assert (page_board(page)[20:] == 4).all()  # the two full rows, on screen
    keys = [("ArrowDown", DROP), ("ArrowLeft", LEFT), ("ArrowLeft", LEFT), ("ArrowUp", ROTATE),
            ("ArrowRight", RIGHT), ("Space", INSTANT), ("ArrowDown", DROP)]
    for i, (key, _) in enumerate(keys, 1):
        page.keyboard.press(key)
        page.wait_for_function("n => window.ganlab.steps >= n", arg=i)
        shown = page_board(page)
        assert np.array_equal(shown, session.board)  # what the page shows is the game's board
        assert np.array_equal(shown, replay([ev for _, ev in keys[:i]]))  # and the rules'
        if i == 1:  # the spawn cleared both rows and the lines count says so
            assert not shown[20:].any() and shown[:2].any()
            assert page.inner_text("#lines") == "2" and page.inner_text("#score") == "100"
    after_instant = replay([ev for _, ev in keys[:6]])
    assert after_instant[20:].any()  # instant drop put the piece on the floor
    # pause: keys do nothing until p again
    page.keyboard.press("p")
    assert "paused" in page.inner_text("#status")
    before = page.evaluate("window.ganlab.steps")
    page.keyboard.press("ArrowLeft")
    time.sleep(0.3)
    assert page.evaluate("window.ganlab.steps") == before
    page.keyboard.press("p")
    page.keyboard.press("n")  # a new game clears the board
    page.wait_for_function("n => window.ganlab.steps > n", arg=before)
    assert not page_board(page).any()
    assert errors == []


def test_the_web_games_timer_drops_the_piece(browser, server):
    session, url = server(timer_ms=80)
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function("window.ganlab.steps >= 6", timeout=15_000)
    shown = page_board(page)
    assert shown[:20].any() and not shown[20:].any()  # the timer spawned (rows cleared) ...
    assert session.events >= 6  # ... and kept dropping


def run_in_pty(args, keys, timeout=60):
    """Run ``ganlab`` under a pseudo-terminal, type ``keys`` (one string per step) after the
    first screen, and return (exit code, everything printed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.environ.update(TERM="xterm", LINES="30", COLUMNS="80")
        os.execv(sys.executable, [sys.executable, "-m", "ganlab", *args])
    out, deadline, sent = b"", time.time() + timeout, False
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not sent and b"lines 0" in out:
            for k in keys:
                os.write(fd, k.encode())
                time.sleep(0.3)
            sent = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_the_terminal_game_takes_keys_and_quits(tmp_path):
    code, out = run_in_pty(["tetris", "play", "--engine", "rule", "--timer-ms", "600000",
                            "--record", str(tmp_path / "rec")],
                           ["\x1bOB", "\x1bOD", " ", "q"])  # keypad mode: ESC O B, ESC O D
    assert code == 0, out
    assert "3 events" in out  # down (a spawn), left, space (instant drop)
    boards, events = load_interactive(tmp_path / "rec")["train"]
    assert events.tolist() == [DROP, LEFT, INSTANT]
    assert boards[2, 1][20:].any()  # the instant drop landed the piece on the floor


def test_play_without_a_run_cannot_use_the_model():
    r = subprocess.run([sys.executable, "-m", "ganlab", "tetris", "play", "--engine", "model"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--engine model: give the RUN" in r.stderr
