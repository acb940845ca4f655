"""``ganlab tetris play``: the interactive game in the terminal (curses).

Arrow keys move (left / right), rotate (up) and drop (down); space is an instant drop; p pauses,
n starts a new game, q quits. The timer drops the piece every 0.8 s as in the original game.
The boards come from a :class:`~ganlab.tetris.play_session.PlaySession`; a status line says
when the model made a board the rules do not allow.
"""
from __future__ import annotations

import curses
import time

from .interactive import DROP, INSTANT, LEFT, RIGHT, ROTATE
from .play_session import TIMER_MS, PlaySession

KEYS = {curses.KEY_LEFT: LEFT, curses.KEY_RIGHT: RIGHT, curses.KEY_UP: ROTATE,
        curses.KEY_DOWN: DROP, ord(" "): INSTANT}


def draw(screen, session: PlaySession, paused: bool) -> None:
    screen.erase()
    board = session.board
    colours = curses.has_colors()
    for r, row in enumerate(board):
        screen.addstr(r, 0, "|")
        for c, v in enumerate(row):
            attr = curses.color_pair(int(v)) if colours and v else 0
            screen.addstr(r, 1 + 2 * c, "[]" if v else " .", attr)
        screen.addstr(r, 1 + 2 * len(row), "|")
    screen.addstr(len(board), 0, "+" + "--" * board.shape[1] + "+")
    x = 2 * board.shape[1] + 4
    screen.addstr(0, x, f"ganlab Tetris ({session.engine_name} engine"
                  + (f", {session.mode}" if session.engine_name == "model" else "") + ")")
    screen.addstr(2, x, f"lines {session.lines}   score {session.score}")
    screen.addstr(3, x, f"events {session.events}")
    screen.addstr(5, x, "arrows: move / rotate / drop")
    screen.addstr(6, x, "space: instant drop  p: pause")
    screen.addstr(7, x, "n: new game  q: quit")
    status = "paused" if paused else ""
    if session.over:
        status = "game over: n for a new game, q to quit"
    if session.illegal:
        status += (" / " if status else "") + (f"the model made a board the rules do not allow "
                                                f"({session.illegal_boards} so far)")
    screen.addstr(9, x, status)
    screen.refresh()


def run(screen, session: PlaySession, timer_ms: int = TIMER_MS) -> None:
    curses.curs_set(0)
    if curses.has_colors():
        curses.start_color()
        for i, c in enumerate((curses.COLOR_MAGENTA, curses.COLOR_GREEN, curses.COLOR_RED,
                               curses.COLOR_BLUE, curses.COLOR_WHITE, curses.COLOR_CYAN,
                               curses.COLOR_YELLOW), 1):
            curses.init_pair(i, c, -1 if curses.can_change_color() else curses.COLOR_BLACK)
    screen.timeout(50)
    paused, last = False, time.monotonic()
    draw(screen, session, paused)
    while True:
        key = screen.getch()
        if key in (ord("q"), ord("Q")):
            return
        if key == ord("p"):
            paused = not paused
        elif key == ord("n"):
            session.save_recording()
            session.new_game()
        elif key in KEYS and not paused:
            session.step(KEYS[key])
        now = time.monotonic()
        if not paused and not session.over and now - last >= timer_ms / 1000:
            session.step(DROP)
            last = now
        if key != -1 or now == last:
            draw(screen, session, paused)


def play(session: PlaySession, timer_ms: int = TIMER_MS) -> None:
    try:
        curses.wrapper(run, session, timer_ms)
    finally:
        done = session.save_recording()
        if done:
            print(f"ganlab: recorded transitions {done.start}..{done.stop - 1} to "
                  f"{session.record_to / 'train'}")
    print(f"lines {session.lines}, score {session.score}, {session.events} events")
