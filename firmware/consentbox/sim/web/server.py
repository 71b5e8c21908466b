"""The page's web server: the standard library's ThreadingHTTPServer, on 127.0.0.1 only.

Routes: GET / (the page), /panel.css, /panel.js, /layout (the panel's buttons and hold times, JSON),
/events (server-sent events: `lights`, `status`, `level`, `card`, `timeline`, and `stopped` when the
box has stopped); POST /button with {"button": "record" | "consent-N", "pressed": true | false}.

Guards, because a page on any web site can make the browser talk to 127.0.0.1:
- every request whose Host header is not 127.0.0.1:PORT or localhost:PORT is refused (403), so a
  site whose name is made to resolve to 127.0.0.1 (DNS rebinding) cannot read the page or press;
- a button press must come from the page itself: its Origin header must be http://127.0.0.1:PORT or
  http://localhost:PORT, and its body JSON (which a cross-site form cannot send);
- the page may not be framed (clickjacking) and loads nothing but its own files (Content-Security-Policy).
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any

from consentbox.core.errors import ConsentBoxError
from consentbox.sim.web.buttons import PanelButtons, UnknownButton
from consentbox.sim.web.feed import PanelFeed

LOOPBACK = "127.0.0.1"
#: A page's event stream gets a comment this often when nothing changes, so a dead one is noticed.
KEEPALIVE_SECONDS = 15.0
#: The largest request body taken (a button press is about 40 bytes).
MAX_BODY = 1024

_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/panel.css": ("panel.css", "text/css; charset=utf-8"),
           "/panel.js": ("panel.js", "text/javascript; charset=utf-8")}
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


class PanelUnavailable(ConsentBoxError, OSError):
    """The page cannot be served (its port is taken, for one); the message says what to do."""


class PanelServer(ThreadingHTTPServer):
    """Serves the simulated front panel on 127.0.0.1:`port` (0: a free port) once `serve` is called."""

    daemon_threads = True  # an open event stream never holds up the end of the program

    def __init__(self, port: int) -> None:
        try:
            super().__init__((LOOPBACK, port), _Handler)
        except OSError as error:
            raise PanelUnavailable(f"cannot serve the panel on {LOOPBACK}:{port}: {error.strerror}; choose "
                                   "another port with --port or [web] port") from None
        self.port: int = self.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}/"
        self.hosts = frozenset({f"{LOOPBACK}:{self.port}", f"localhost:{self.port}"}
                               | ({LOOPBACK, "localhost"} if self.port == 80 else set()))
        self.origins = frozenset(f"http://{host}" for host in self.hosts)
        self.feed: PanelFeed | None = None
        self.buttons: PanelButtons | None = None
        self.layout: dict[str, Any] = {}
        self._thread: threading.Thread | None = None

    def serve(self, feed: PanelFeed, buttons: PanelButtons, layout: dict[str, Any]) -> None:
        """Start answering, in a thread of its own: the page of `feed`, pressing `buttons`."""
        self.feed, self.buttons, self.layout = feed, buttons, layout
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="panel-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop answering and release the port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: PanelServer

    def version_string(self) -> str:
        return "ConsentBox-panel"

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.server.hosts:
            self._refuse(f"host {host or '(none)'} is not served here: open {self.server.url}")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path in _STATIC:
            name, kind = _STATIC[self.path]
            self._send(HTTPStatus.OK, kind, (files("consentbox.sim.web") / "static" / name).read_bytes())
        elif self.path == "/layout":
            self._send(HTTPStatus.OK, "application/json", json.dumps(self.server.layout).encode())
        elif self.path == "/events":
            self._events()
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/button":
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")
            return
        if self.headers.get("Origin") not in self.server.origins:
            self._refuse("button presses come only from the panel's own page")
            return
        if self.headers.get_content_type() != "application/json":
            self._send(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "text/plain; charset=utf-8", b"send JSON\n")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if not 0 < length <= MAX_BODY:
                raise ValueError("body size")
            press = json.loads(self.rfile.read(length))
            name, pressed = press["button"], press["pressed"]
            if not isinstance(name, str) or not isinstance(pressed, bool):
                raise ValueError("field types")
            assert self.server.buttons is not None
            self.server.buttons.drive(name, pressed)
        except UnknownButton as error:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", f"{error.args[0]}\n".encode())
            return
        except (ValueError, KeyError, TypeError):
            self._send(HTTPStatus.BAD_REQUEST, "text/plain; charset=utf-8",
                       b'expected {"button": NAME, "pressed": true|false}\n')
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self.end_headers()

    def _events(self) -> None:
        feed = self.server.feed
        assert feed is not None
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        sent: dict[str, Any] = {}
        version, lines_seen = -1, 0
        try:
            self.wfile.write(b"retry: 1000\n\n")
            while True:
                version, sections, stopped = feed.wait(version, KEEPALIVE_SECONDS)
                out = [_event(name, value) for name, value in sections.items() if sent.get(name) != value]
                sent.update(sections)
                lines, lines_seen = feed.timeline.since(lines_seen)
                if lines:
                    out.append(_event("timeline", lines))
                if stopped:
                    out.append(_event("stopped", {}))
                self.wfile.write(b"".join(out) or b": still here\n\n")
                self.wfile.flush()
                if stopped:
                    return
        except (BrokenPipeError, ConnectionResetError):
            return  # the page went away

    def end_headers(self) -> None:
        for name, value in _HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def _refuse(self, why: str) -> None:
        self._send(HTTPStatus.FORBIDDEN, "text/plain; charset=utf-8", f"{why}\n".encode())

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """Requests are not logged: the terminal shows the box's timeline."""


def _event(name: str, value: Any) -> bytes:
    """One server-sent event (JSON has no newlines unless indented, so one data line)."""
    return f"event: {name}\ndata: {json.dumps(value, separators=(',', ':'))}\n\n".encode()
