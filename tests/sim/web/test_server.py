"""The page's server: loopback only, no other Host (DNS rebinding), no button press from another origin.

Requests are made by hand (http.client) so that their headers are exactly what a hostile page or a
rebound name would send.
"""

from __future__ import annotations

import http.client
import json
import time

import pytest

from consentbox.sim.web.simulator import PanelSimulator

from .conftest import start_simulator


def request(simulator: PanelSimulator, method: str, path: str, *, host: str | None, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Send one request with exactly `host` as its Host header (None: no Host header at all)."""
    connection = http.client.HTTPConnection("127.0.0.1", simulator.server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, answer.read() if path != "/events" or answer.status != 200 else b""
    finally:
        connection.close()


def press(simulator: PanelSimulator, button: str, pressed: bool, *, origin: str | None = "page",
          kind: str = "application/json") -> int:
    host = f"127.0.0.1:{simulator.server.port}"
    headers = {"Content-Type": kind}
    if origin is not None:
        headers["Origin"] = f"http://{host}" if origin == "page" else origin
    status, _ = request(simulator, "POST", "/button", host=host, headers=headers,
                        body=json.dumps({"button": button, "pressed": pressed}).encode())
    return status


def record_pin(simulator: PanelSimulator) -> bool:
    """Whether the RECORD pin is high (released, with the panel's pull-up)."""
    return bool(simulator.feed.panel.buttons[next(iter(simulator.feed.panel.buttons))].pin.state)


def test_it_listens_on_loopback_only(untouched):
    assert untouched.server.server_address[0] == "127.0.0.1"
    assert untouched.url == f"http://127.0.0.1:{untouched.server.port}/"


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
@pytest.mark.parametrize("path", ["/", "/panel.js", "/panel.css", "/layout"])
def test_the_page_is_served_to_its_own_addresses(untouched, host, path):
    status, body = request(untouched, "GET", path, host=host.format(port=untouched.server.port))
    assert status == 200 and body


@pytest.mark.parametrize("host", [
    "attacker.example:{port}",  # a name rebound to 127.0.0.1 (DNS rebinding)
    "attacker.example",
    "127.0.0.1.attacker.example:{port}",
    "127.0.0.1:{other}",
    "127.0.0.1",
    "localhost",
    "[::1]:{port}",
    "",
    None,  # no Host header
])
@pytest.mark.parametrize(("method", "path"),
                         [("GET", "/"), ("GET", "/events"), ("GET", "/layout"), ("POST", "/button")])
def test_any_other_host_is_refused(untouched, host, method, path):
    port = untouched.server.port
    wanted = None if host is None else host.format(port=port, other=port + 1)
    origin = {"Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/json"}
    body = json.dumps({"button": "record", "pressed": True}).encode() if method == "POST" else None
    status, answer = request(untouched, method, path, host=wanted, body=body, headers=origin)
    assert status == 403
    assert b"is not served here" in answer
    assert record_pin(untouched), "a refused request pressed RECORD"


@pytest.mark.parametrize("origin", [None, "http://attacker.example", "http://127.0.0.1:1", "null"])
def test_a_press_from_another_origin_is_refused(untouched, origin):
    assert press(untouched, "record", True, origin=origin) == 403
    assert record_pin(untouched)
    time.sleep(0.3)
    assert "COLLECTING" not in " ".join(untouched.timeline.since(0)[0])


def test_a_press_must_be_json(untouched):
    # A cross-site HTML form can send text/plain or a form encoding, never application/json.
    assert press(untouched, "record", True, kind="text/plain") == 415
    assert record_pin(untouched)


def test_a_press_drives_the_pin_down_and_up(simulator):
    assert press(simulator, "record", True) == 204
    assert not record_pin(simulator)  # pressed: pulled low
    assert press(simulator, "record", False) == 204
    assert record_pin(simulator)
    deadline = time.monotonic() + 5
    while not any("set up for 2 parties" in line for line in simulator.timeline.since(0)[0]):
        assert time.monotonic() < deadline, "a tap on RECORD did not set a session up"
        time.sleep(0.02)


@pytest.mark.parametrize(("body", "status"), [
    (b'{"button": "consent-9", "pressed": true}', 404),
    (b'{"button": "record"}', 400),
    (b'{"button": "record", "pressed": 1}', 400),
    (b"not json", 400),
])
def test_a_bad_press_is_refused_and_changes_nothing(untouched, body, status):
    host = f"127.0.0.1:{untouched.server.port}"
    answer, _ = request(untouched, "POST", "/button", host=host, body=body,
                        headers={"Origin": f"http://{host}", "Content-Type": "application/json"})
    assert answer == status
    assert record_pin(untouched)


def test_the_page_may_not_be_framed_or_load_anything_foreign(untouched):
    connection = http.client.HTTPConnection("127.0.0.1", untouched.server.port, timeout=10)
    connection.request("GET", "/", headers={"Host": f"localhost:{untouched.server.port}"})
    answer = connection.getresponse()
    policy = answer.getheader("Content-Security-Policy")
    connection.close()
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert answer.getheader("X-Frame-Options") == "DENY"


def test_the_event_stream_starts_with_the_pins_as_they_are(untouched):
    connection = http.client.HTTPConnection("127.0.0.1", untouched.server.port, timeout=10)
    connection.request("GET", "/events", headers={"Host": f"127.0.0.1:{untouched.server.port}"})
    answer = connection.getresponse()
    assert answer.getheader("Content-Type") == "text/event-stream"
    events = {}
    while "lights" not in events:
        line = answer.fp.readline().decode()
        if line.startswith("event: "):
            name = line.split()[1]
            events[name] = json.loads(answer.fp.readline().decode().removeprefix("data: "))
    connection.close()
    lights = events["lights"]
    assert lights["rec"] is False and lights["buttons"] == {"record": False, "consent-1": False,
                                                            "consent-2": False, "consent-3": False}
    assert lights["status"]["colour"] in ("green", "off")


def test_a_shared_consent_panel_has_one_consent_button(tmp_path, identity):
    with start_simulator(tmp_path, identity, seats=None, shared_consent=True) as simulator:
        status, body = request(simulator, "GET", "/layout", host=f"127.0.0.1:{simulator.server.port}")
    assert status == 200
    assert [(b["id"], b["label"]) for b in json.loads(body)["buttons"]] == [("record", "RECORD"),
                                                                            ("consent-1", "CONSENT")]


def test_a_taken_port_is_a_one_line_error(untouched, tmp_path, identity):
    import dataclasses

    from consentbox.sim.web.server import PanelUnavailable

    config = dataclasses.replace(untouched.config, web_port=untouched.server.port, state_dir=tmp_path / "other")
    with pytest.raises(PanelUnavailable, match=rf"cannot serve the panel on 127.0.0.1:{untouched.server.port}: "
                       "Address already in use; choose another port"):
        PanelSimulator(config, microphone="tone")
    assert not (tmp_path / "other").exists(), "the box started before its page could be served"
