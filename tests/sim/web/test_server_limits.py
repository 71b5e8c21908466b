"""The page's server under abuse from this machine: held, surplus and trickling connections, too many
event streams, and bodies that are too big, too deep or not a press. Real sockets to 127.0.0.1 only.

Every wait is bounded by a deadline that fails the test; nothing asserts how long anything took. The
server's limits are made larger or smaller for a test where that makes the outcome depend on the limit
alone, never on timing.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from consentbox.sim.web import server
from consentbox.sim.web.simulator import PanelSimulator

#: How long any one wait may last before the test fails: well past every limit of the server.
PATIENCE = 60.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def connect(simulator: PanelSimulator) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", simulator.server.port), timeout=PATIENCE)
    connection.setblocking(False)
    return connection


def closed(connection: socket.socket) -> bool:
    """Whether the server has closed `connection` (without waiting: the socket is non-blocking)."""
    try:
        return connection.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


@contextlib.contextmanager
def held(simulator: PanelSimulator, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections to the page's server that send nothing; closed at the end."""
    connections: list[socket.socket] = []
    try:
        for _ in range(count):
            connections.append(connect(simulator))
        yield connections
    finally:
        for connection in connections:
            connection.close()


def exchange(simulator: PanelSimulator, request: bytes) -> tuple[int, bytes]:
    """Send `request` as it is, then read the whole answer: its status and body."""
    with socket.create_connection(("127.0.0.1", simulator.server.port), timeout=PATIENCE) as connection:
        with contextlib.suppress(ConnectionError):  # the server may answer and close before it has read all
            connection.sendall(request)
        answer = b""
        with contextlib.suppress(ConnectionError):
            while chunk := connection.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), f"no HTTP answer: {answer[:200]!r}"
    return int(head.split()[1]), body


def get(simulator: PanelSimulator, path: str) -> int:
    host = f"127.0.0.1:{simulator.server.port}"
    return exchange(simulator, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())[0]


def post(simulator: PanelSimulator, body: bytes, *, length: str | None = None) -> tuple[int, bytes]:
    host = f"127.0.0.1:{simulator.server.port}"
    head = (f"POST /button HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n")
    return exchange(simulator, head.encode() + body)


def record_pressed_works(simulator: PanelSimulator) -> None:
    """The box still runs: a tap on RECORD (on its pin, not through the page) sets a session up."""
    assert simulator.server.buttons is not None
    simulator.server.buttons.drive("record", True)
    simulator.server.buttons.drive("record", False)
    wait_until(lambda: any("set up for 2 parties" in line for line in simulator.timeline.since(0)[0]),
               "a tap on RECORD to set a session up")


def test_connections_over_the_cap_are_closed_at_once_and_the_box_keeps_working(simulator, monkeypatch):
    # Held connections are never timed out here, so only the cap can close any of them.
    monkeypatch.setattr(server._Handler, "timeout", None)
    monkeypatch.setattr(server, "REQUEST_SECONDS", 10 * PATIENCE)
    with held(simulator, server.MAX_CONNECTIONS + 50) as connections:
        wait_until(lambda: sum(map(closed, connections)) >= 50, "the 50 connections over the cap to be closed")
        assert sum(map(closed, connections)) == 50, "more connections were closed than those over the cap"
        with held(simulator, 1) as (one_more,):
            wait_until(lambda: closed(one_more), "one more connection to be closed")
        record_pressed_works(simulator)
    # Once the held ones are gone, the page is served again.
    wait_until(lambda: get(simulator, "/layout") == 200, "the page to be served again")


def test_idle_connections_are_closed_and_the_page_is_served_again(simulator, monkeypatch):
    monkeypatch.setattr(server, "REQUEST_SECONDS", 10 * PATIENCE)  # so only the idle timeout can close them
    with held(simulator, server.MAX_CONNECTIONS + 50) as connections:
        wait_until(lambda: all(map(closed, connections)), "every idle connection to be closed")
        assert get(simulator, "/layout") == 200
        record_pressed_works(simulator)


def test_a_request_that_trickles_in_is_cut_off(simulator, monkeypatch):
    # Each byte comes well within the idle timeout, so only the deadline for the whole request can end it.
    monkeypatch.setattr(server._Handler, "timeout", PATIENCE)
    monkeypatch.setattr(server, "REQUEST_SECONDS", 1.0)
    request = f"GET /layout HTTP/1.1\r\nHost: 127.0.0.1:{simulator.server.port}\r\nX-Slow: ".encode()
    with held(simulator, 1) as (trickle,):
        trickle.setblocking(True)
        deadline = time.monotonic() + PATIENCE
        cut = False
        while not cut:
            assert time.monotonic() < deadline, "a trickling request was never cut off"
            try:
                trickle.sendall(request[:1] if request else b"x")
                request = request[1:]
            except ConnectionError:
                cut = True
            time.sleep(0.05)
            trickle.setblocking(False)
            cut = cut or closed(trickle)
            trickle.setblocking(True)
    assert get(simulator, "/layout") == 200


def test_event_streams_are_capped_and_a_closed_one_makes_room(simulator):
    host = f"127.0.0.1:{simulator.server.port}"

    def stream() -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", simulator.server.port, timeout=PATIENCE)
        connection.request("GET", "/events", headers={"Host": host})
        return connection.getresponse()  # it holds the connection open until it is closed

    streams = []
    try:
        for _ in range(server.MAX_EVENT_STREAMS):
            streams.append(stream())
            assert streams[-1].status == 200
        with contextlib.closing(stream()) as refused:
            assert refused.status == 503
            assert refused.read() == f"{server.MAX_EVENT_STREAMS} pages are open already: close one\n".encode()
        assert get(simulator, "/layout") == 200  # the rest of the page is still served
        streams.pop().close()

        def one_more_opens() -> bool:
            streams.append(stream())
            return streams[-1].status == 200

        wait_until(one_more_opens, "a stream to open after one closed")
    finally:
        for response in streams:
            response.close()


@pytest.mark.parametrize(("body", "length", "reason"), [
    (b"[" * 100_000, None, b"a press is a body of 1 to 1024 bytes"),
    (b"[" * 1_000, None, b"the body nests too deep"),
    (b'{"button": "record", "pressed": true, "pressed": false}', None, b"repeats the key"),
    (b'{"button": "record", "pressed": NaN}', None, b"holds NaN"),
    (b'{"button": "record", "pressed": true}\xff', None, b"is not UTF-8"),
    (b'["record", true]', None, b'expected {"button"'),
    (b'{"button": "record", "pressed": true, "held": 2}', None, b'expected {"button"'),
    (b'{"button": "record", "pressed": true}', "+37", b"with its Content-Length"),
    (b'{"button": "record", "pressed": true}', "3_7", b"with its Content-Length"),
    (b'{"button": "record", "pressed": true}', "9" * 5000, b"with its Content-Length"),
    (b"", "0", b"with its Content-Length"),
], ids=["huge-nested", "nested-within-the-size", "repeated-key", "nan", "not-utf8", "a-list", "unknown-field",
        "signed-length", "underscored-length", "length-of-5000-digits", "empty"])
def test_a_bad_body_gets_400_with_one_line_and_the_server_goes_on(untouched, body, length, reason):
    status, answer = post(untouched, body, length=length)
    assert status == 400
    assert reason in answer and answer.count(b"\n") == 1, answer
    assert get(untouched, "/layout") == 200
    assert untouched.feed.panel.buttons[next(iter(untouched.feed.panel.buttons))].pin.state, "RECORD was pressed"
