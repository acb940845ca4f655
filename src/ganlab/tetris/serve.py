"""``ganlab tetris serve``: the interactive game as a local web page, played with the keyboard.

A small HTTP server (the standard library's) holds one :class:`~ganlab.tetris.play_session.
PlaySession`; the page (``web/play.html``) sends each key press and each timer tick as an event
to ``POST /step`` and draws the board it gets back. ``GET /state`` is the current state,
``POST /new`` starts a new game. Requests are served one at a time, in order.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from .play_session import TIMER_MS, PlaySession


def page() -> bytes:
    return resources.files("ganlab.tetris").joinpath("web/play.html").read_bytes()


def make_server(session: PlaySession, host: str = "127.0.0.1", port: int = 8765,
                timer_ms: int = TIMER_MS) -> ThreadingHTTPServer:
    lock = threading.Lock()
    html = page()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _state(self) -> bytes:
            return json.dumps({**session.state(), "timer_ms": timer_ms}).encode()

        def do_GET(self):  # noqa: N802 - the standard library's name
            if self.path in ("/", "/index.html"):
                return self._send(200, html, "text/html; charset=utf-8")
            if self.path == "/state":
                with lock:
                    return self._send(200, self._state())
            return self._send(404, b'{"error": "not found"}')

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                return self._send(400, b'{"error": "the body must be JSON"}')
            with lock:
                if self.path == "/step":
                    event = body.get("event")
                    if not isinstance(event, int) or not 0 <= event <= 4:
                        return self._send(400, json.dumps(
                            {"error": f"event must be an integer 0-4, got {event!r}"}).encode())
                    session.step(event)
                elif self.path == "/new":
                    session.save_recording()
                    session.new_game()
                else:
                    return self._send(404, b'{"error": "not found"}')
                return self._send(200, self._state())

        def log_message(self, *args):  # quiet: the game is the interface
            pass

    return ThreadingHTTPServer((host, port), Handler)


def serve(session: PlaySession, host: str = "127.0.0.1", port: int = 8765,
          timer_ms: int = TIMER_MS) -> None:
    server = make_server(session, host, port, timer_ms)
    print(f"ganlab: Tetris ({session.engine_name} engine) at http://{host}:{server.server_port}/ "
          f"- arrows, space, p, n; Ctrl-C to stop", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        done = session.save_recording()
        if done:
            print(f"ganlab: recorded transitions {done.start}..{done.stop - 1} to "
                  f"{session.record_to / 'train'}")
