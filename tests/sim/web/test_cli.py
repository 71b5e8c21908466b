"""`consentbox panel`, as `make run` starts it: prints the page's address, serves it, stops on Ctrl+C."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from consentbox.box.config import load_config
from consentbox.core.errors import PolicyError
from consentbox.crypto.signing import DeviceSigningKey

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(home: Path, *args: str) -> tuple[subprocess.Popen[str], list[str], int]:
    """`consentbox panel` under `home`; its output up to the end of what it prints at start, and the port."""
    process = subprocess.Popen([BIN / "consentbox", "panel", "--home", str(home), "--microphone", "tone", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    port = None
    while line := process.stdout.readline():
        lines.append(line.rstrip("\n"))
        if line.startswith("ConsentBox front panel: "):
            port = int(line.rsplit(":", 1)[1].strip("/\n"))
        elif port is not None and line == "\n":  # the blank line that ends the banner
            return process, lines, port
    process.wait()
    pytest.fail(f"consentbox panel ended without serving its page: {process.stderr.read()}")


def get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def stop(process: subprocess.Popen[str], how: signal.Signals) -> tuple[int, str]:
    process.send_signal(how)
    try:
        out, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"consentbox panel did not stop on {how.name}")
    return process.returncode, out


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_it_prints_its_address_serves_the_page_and_stops_cleanly(tmp_path, how):
    home = tmp_path / "demo"
    process, lines, port = start(home, "--port", "0")
    status, page = get(port, "/")
    assert status == 200 and "<title>ConsentBox: simulated front panel</title>" in page
    banner = "\n".join(lines)
    assert f"ConsentBox front panel: http://127.0.0.1:{port}/\n" in banner
    assert f"card:       {home / 'card'}/" in banner and "microphone: a generated test signal" in banner
    device_key = DeviceSigningKey.load(home / "state" / "device.key").public_key  # the export pins this box
    export = (f"consentbox-admin export -i {home / 'supervisor.key'} --device-key {device_key} "
              f"--out {home / 'export'} {home / 'card'}")
    assert export in banner and "Ctrl+C stops the box" in banner
    code, out = stop(process, how)
    assert code == 0
    assert f"ConsentBox stopped. Export the card with: {export}" in out
    assert (home / "supervisor.key").stat().st_mode & 0o777 == 0o600
    assert (home / "card").is_dir() and (home / "state" / "ledger.jsonl").is_file()


def test_the_port_comes_from_the_configuration(tmp_path):
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f"[web]\nport = {port}\n")
    process, lines, served = start(tmp_path / "demo", "--config", str(config))
    assert served == port
    assert get(port, "/layout")[0] == 200
    assert stop(process, signal.SIGINT)[0] == 0


def test_a_taken_port_is_a_one_line_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([BIN / "consentbox", "panel", "--home", str(tmp_path), "--port", str(port),
                               "--microphone", "tone"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr == (f"consentbox: cannot serve the panel on 127.0.0.1:{port}: Address already in use; "
                           "choose another port with --port or [web] port\n")


def test_the_default_port_is_8470():
    assert load_config().web_port == 8470


@pytest.mark.parametrize("value", ['"8470"', "-1", "65536", "true", "1.5"])
def test_a_bad_port_names_the_key(tmp_path, value):
    config = tmp_path / "config.toml"
    config.write_text(f"[web]\nport = {value}\n")
    with pytest.raises(PolicyError, match="key web.port: expected a TCP port, 0 to 65535"):
        load_config(config)


def test_an_unknown_web_key_is_refused(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[web]\naddress = \"0.0.0.0\"\n")
    with pytest.raises(PolicyError, match="unknown key web.address"):
        load_config(config)
