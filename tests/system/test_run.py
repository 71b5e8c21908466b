"""`consentbox run`, the daemon: it starts, says whether it is ready, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.crypto import parse_recipient
from consentbox.recording.session import SessionFiles
from consentbox.storage.ids import new_session_id

from .conftest import BIN, SimulatedBox


def start(tmp_path: Path, card: Path, recipient: str, *, provisioned: bool = True) -> subprocess.Popen[str]:
    """`consentbox run` on mock pins with a microphone that hears noise, `card` and `tmp_path`/state,
    encrypting to `recipient` (to nobody, as a box never provisioned, unless `provisioned`)."""
    box = SimulatedBox(tmp_path, recipient, card=card)
    return box.serve(audio_device=NOISE, recipients=None if provisioned else [],
                     env={"ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{noise_config(tmp_path)}"})


#: An ALSA capture device that hears random noise: real libasound, its `file` plugin reading /dev/urandom.
#: The start-up self-test must hear something; ALSA's `null` device captures whatever the caller's buffer
#: held, which is not a signal to rely on.
NOISE = "consentbox_test_noise"


def noise_config(directory: Path) -> Path:
    config = directory / "asound.conf"
    config.write_text(f'pcm.{NOISE} {{\n  type file\n  slave.pcm "null"\n  file "/dev/null"\n'
                      '  infile "/dev/urandom"\n  format "raw"\n}\n')
    return config


def first_status(process: subprocess.Popen[str]) -> dict:
    assert process.stderr is not None
    for line in process.stderr:
        entry = json.loads(line)
        if entry["event"] == "status":
            return entry
    raise AssertionError("the daemon ended without showing a status")


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("consentbox run did not stop on SIGTERM")


def test_a_ready_box_shows_steady_green_and_stops_on_sigterm(tmp_path, recipient):
    card = tmp_path / "card"
    card.mkdir()
    process = start(tmp_path, card, recipient)
    assert first_status(process) == {"t": pytest.approx(0, abs=5), "event": "status", "colour": "green",
                                      "rhythm": "steady", "count": 0}
    assert stop(process) == 0


@pytest.mark.parametrize(("has_card", "keys", "code"), [(False, True, 1), (True, False, 6)],
                         ids=["no card", "not provisioned"])
def test_a_box_that_is_not_ready_blinks_its_code(tmp_path, recipient, has_card, keys, code):
    card = tmp_path / "card"
    if has_card:
        card.mkdir()
    process = start(tmp_path, card, recipient, provisioned=keys)
    status = first_status(process)
    assert (status["colour"], status["rhythm"], status["count"]) == ("red", "code", code)
    assert stop(process) == 0


def test_a_session_left_open_by_the_last_run_is_recovered_before_the_box_is_ready(tmp_path, recipient, journal):
    card = tmp_path / "card"
    card.mkdir()  # the `journal` fixture is in tmp_path/state, the daemon's state directory here
    files = SessionFiles.create(card, new_session_id(), [parse_recipient(recipient)], Policy(),
                                headcount=2, consents=[(1, 1.0), (2, 2.0)],
                                started=datetime.now(UTC), journal=journal)
    files.start_interval(3.0)
    files.write(bytes(Policy().frame_bytes * 48_000 * 2))  # two seconds, then the power goes
    process = start(tmp_path, card, recipient)
    assert process.stderr is not None
    assert json.loads(process.stderr.readline())["event"] == "settings"
    assert json.loads(process.stderr.readline()) == {
        "t": pytest.approx(0, abs=5), "event": "recovered", "id": files.session, "segments": 1,
        "end": "interrupted", "destroyed": False}
    assert first_status(process)["colour"] == "green"
    assert stop(process) == 0
    assert list(journal.directory.iterdir()) == []


def test_a_bad_config_is_one_line_and_exit_1(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[policy]\ndefault_parties = 0\n")
    done = subprocess.run([BIN / "consentbox", "run", "--config", config], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "key default_parties: 0 is out of range" in done.stderr
