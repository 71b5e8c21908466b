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

Limits, because anything on this machine can connect to 127.0.0.1 (docs/cli.md, `consentbox panel`):
- at most MAX_CONNECTIONS connections at once; one more is closed as soon as it is accepted;
- a connection that sends or takes nothing for IDLE_SECONDS is closed, and a request must arrive whole
  (body included) within REQUEST_SECONDS, so a trickle of bytes cannot hold a connection either;
- the event stream is the one connection that lasts (a page keeps it open as long as it is shown):
  at most MAX_EVENT_STREAMS at once, the next one is answered 503, and a stream whose page stops
  reading is closed when a write stalls for IDLE_SECONDS;
- a press's body is at most MAX_BODY bytes, its length checked before a byte is read, and read by the
  project's strict JSON reader: anything else gets 400 and one line saying why.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any

from consentbox.core.errors import ConsentBoxError
from consentbox.sim.web.buttons import PanelButtons, UnknownButton
from consentbox.sim.web.feed import PanelFeed
from consentbox.storage import strict_json
from consentbox.storage.strict_json import StrictJsonError

LOOPBACK = "127.0.0.1"
#: A page's event stream gets a comment this often when nothing changes, so a dead one is noticed.
KEEPALIVE_SECONDS = 15.0
#: The largest request body taken (a button press is about 40 bytes).
MAX_BODY = 1024
#: Connections served at once: pages, their event streams and presses (a page uses two or three).
MAX_CONNECTIONS = 64
#: Event streams at once: one per open page.
MAX_EVENT_STREAMS = 8
#: A read or write that stalls this long closes its connection.
IDLE_SECONDS = 5.0
#: A request (line, headers and body) must arrive whole within this long, however it trickles in.
REQUEST_SECONDS = 10.0
_PRESS_FORM = 'expected {"button": NAME, "pressed": true|false}'

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
    request_queue_size = MAX_CONNECTIONS  # a burst waits to be accepted (and counted), not to connect

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
        self._lock = threading.Lock()
        # Each open connection and the instant its request must have arrived by (never, for an event stream).
        self._deadlines: dict[socket.socket, float] = {}
        self._streams = 0

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

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Take a connection only while fewer than MAX_CONNECTIONS are open (socketserver closes the rest)."""
        with self._lock:
            if len(self._deadlines) >= MAX_CONNECTIONS:
                return False
            self._deadlines[request] = time.monotonic() + REQUEST_SECONDS
            return True

    def shutdown_request(self, request: Any) -> None:
        """Close a connection, served or refused, and stop counting it."""
        with self._lock:
            self._deadlines.pop(request, None)
        super().shutdown_request(request)

    def service_actions(self) -> None:
        """Cut off each connection whose request is late (the server's loop calls this every 50 ms)."""
        now = time.monotonic()
        with self._lock:
            late = [connection for connection, deadline in self._deadlines.items() if deadline < now]
            for connection in late:
                self._deadlines[connection] = math.inf  # cut once
        for connection in late:
            # Its handler's read returns at once with nothing, and the handler ends.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    @contextlib.contextmanager
    def event_stream(self, connection: socket.socket) -> Iterator[bool]:
        """Whether `connection` may stream events (False beyond MAX_EVENT_STREAMS); while it does, no
        request deadline cuts it."""
        with self._lock:
            allowed = self._streams < MAX_EVENT_STREAMS
            if allowed:
                self._streams += 1
                self._deadlines[connection] = math.inf
        try:
            yield allowed
        finally:
            if allowed:
                with self._lock:
                    self._streams -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A page that went away or stalled is no fault of the box: only other errors are printed."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: PanelServer
    timeout = IDLE_SECONDS  # on every read and write of the connection (StreamRequestHandler sets it)

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
        length = self.headers.get("Content-Length", "")
        # Checked before any of the body is read: a few digits only (int() would take "+1_0" or " 10 ",
        # and raise on thousands of digits).
        if not (length.isascii() and length.isdigit() and len(length) <= len(str(MAX_BODY))
                and 0 < int(length) <= MAX_BODY):
            self._bad(f"a press is a body of 1 to {MAX_BODY} bytes, with its Content-Length: {_PRESS_FORM}")
            return
        try:
            press = strict_json.loads(self.rfile.read(int(length)))
        except StrictJsonError as error:
            self._bad(f"the body {error}: {_PRESS_FORM}")
            return
        if not (isinstance(press, dict) and press.keys() == {"button", "pressed"}
                and isinstance(press["button"], str) and isinstance(press["pressed"], bool)):
            self._bad(_PRESS_FORM)
            return
        try:
            assert self.server.buttons is not None
            self.server.buttons.drive(press["button"], press["pressed"])
        except UnknownButton as error:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", f"{error.args[0]}\n".encode())
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self.end_headers()

    def _events(self) -> None:
        with self.server.event_stream(self.connection) as allowed:
            if allowed:
                self._stream_events()
            else:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                           f"{MAX_EVENT_STREAMS} pages are open already: close one\n".encode())

    def _stream_events(self) -> None:
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
        except (ConnectionError, TimeoutError):
            return  # the page went away, or stopped reading

    def end_headers(self) -> None:
        for name, value in _HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def _bad(self, why: str) -> None:
        self._send(HTTPStatus.BAD_REQUEST, "text/plain; charset=utf-8", f"{why}\n".encode())

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
