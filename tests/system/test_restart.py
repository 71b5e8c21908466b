"""A box killed mid-session and started again (issue 5, item 6), through the real commands.

`consentbox simulate --state DIR` records until a second segment appears on the card and is then killed
with SIGKILL, as a power cut would stop it. The next `consentbox simulate` (or `consentbox run`) with the
same state directory finishes that session before the box is ready and reports it; the supervisor's
export then says the session was interrupted and truncated, and holds the input from its start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from tests.support.notify_socket import NotifySocket
from consentbox.testing.signal import position_pcm, spans, write_wav

BIN = Path(sys.executable).parent
POLICY = Policy(segment_bytes=1 << 20)
INPUT_SECONDS = 40
CONFIG = "[policy]\nsegment_bytes = 1048576\n"
RECORD_LONG = "0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.5\n900 hold record 2.5\n"


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, position_pcm(0, INPUT_SECONDS * POLICY.rate, POLICY), POLICY)
    return path


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory) -> tuple[Path, str]:
    key = tmp_path_factory.mktemp("keys") / "supervisor.key"
    made = subprocess.run([BIN / "consentbox-admin", "keygen", "-o", key], capture_output=True, check=True)
    return key, made.stderr.decode().split()[-1]


class Box:
    """`consentbox simulate` runs on one card and one state directory."""

    def __init__(self, tmp_path: Path, microphone: Path, recipient: str) -> None:
        self.tmp_path = tmp_path
        self.card, self.state, self.scratch = tmp_path / "card", tmp_path / "state", tmp_path / "tmp"
        for directory in (self.card, self.scratch):
            directory.mkdir()
        (tmp_path / "config.toml").write_text(CONFIG)
        self.microphone, self.recipient = microphone, recipient

    def command(self, script: str, *state: str) -> list[str | Path]:
        path = self.tmp_path / "script.txt"
        path.write_text(script)
        return [BIN / "consentbox", "simulate", "--script", path, "--audio", self.microphone, "--card", self.card,
                "--recipient", self.recipient, "--config", self.tmp_path / "config.toml", *state]

    def run(self, script: str, *state: str) -> list[dict]:
        done = subprocess.run(self.command(script, *state), capture_output=True, text=True,
                              env={**os.environ, "TMPDIR": str(self.scratch)})
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    def killed_while_recording(self) -> str:
        """Run a long recording and SIGKILL it once its second segment is on the card; its session id."""
        box = subprocess.Popen(self.command(RECORD_LONG, "--state", str(self.state)), stdout=subprocess.PIPE,
                               text=True)
        assert box.stdout is not None
        for line in box.stdout:
            entry = json.loads(line)
            if entry["event"] == "file" and entry["path"].endswith(".001.wav.age"):
                box.send_signal(signal.SIGKILL)
                break
        box.wait()
        assert box.returncode == -signal.SIGKILL, "the box ended before its second segment"
        return entry["path"].split(".")[0]


@pytest.fixture
def box(tmp_path, microphone, supervisor) -> Box:
    return Box(tmp_path, microphone, supervisor[1])


def export(key: Path, card: Path, out: Path) -> tuple[int, dict, bytes]:
    done = subprocess.run([BIN / "consentbox-admin", "export", "-i", key, "--out", out, card], capture_output=True,
                          text=True)
    [report] = [json.loads(path.read_text()) for path in out.glob("*.json")]
    with wave.open(str(next(out.glob("*.wav")))) as wav:
        return done.returncode, report, wav.readframes(wav.getnframes())


def test_a_box_killed_mid_session_ends_it_as_interrupted_when_it_starts_again(box, supervisor, tmp_path):
    session = box.killed_while_recording()
    status, before, audio = export(supervisor[0], box.card, tmp_path / "before")
    assert status == 3 and before["end_reason"] is None

    timeline = box.run("1 end\n", "--state", str(box.state))
    segments = len(list(box.card.glob(f"{session}.*.wav.age")))
    assert timeline[0] == {"t": 0.0, "event": "settings", "bundle_version": 0, "recipients": 1}
    assert timeline[1] == {"t": 0.0, "event": "recovered", "id": session, "segments": segments,
                           "end": "interrupted", "destroyed": False}
    assert timeline[2] == {"t": 0.0, "event": "state", "state": "IDLE"}  # recovery came before all else

    status, after, recovered_audio = export(supervisor[0], box.card, tmp_path / "after")
    assert status == 3 and after["end_reason"] == "interrupted" and after["export"]["truncated"]
    assert any("marked it interrupted" in note for note in after["export"]["notes"])
    assert recovered_audio == audio
    [recorded] = spans(audio, POLICY)  # the input from its start, past the first segment
    assert recorded.start == 0 and len(recorded) > 10 * POLICY.rate
    interval = after["intervals"][0]
    assert interval["frames"] == len(recorded)  # counted from the card's sealed chunks, without decrypting

    again = box.run("1 end\n", "--state", str(box.state))
    assert not [entry for entry in again if entry["event"] == "recovered"]


def test_without_state_a_private_temporary_state_is_used_and_removed(box):
    timeline = box.run("0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.5\n6 end\n")
    assert [entry["end"] for entry in timeline if entry["event"] == "session"] == ["shutdown"]
    assert list(box.scratch.iterdir()) == []  # the temporary state directory is gone


def test_a_box_killed_mid_session_is_ready_for_systemd_again_with_the_session_recovered(box, supervisor,
                                                                                       tmp_path):
    # Self-healing (issue 9, item 3): the unit restarts a dead box (Restart=always, checked in
    # tests/system/test_units.py); the restarted box recovers the session before it tells systemd READY=1.
    session = box.killed_while_recording()
    (tmp_path / "run.toml").write_text(f'{CONFIG}[panel]\npin_factory = "mock"\n[card]\npath = "{box.card}"\n'
                                       f'require_mount = false\n[keys]\nrecipients = ["{supervisor[1]}"]\n'
                                       f'[box]\nstate_dir = "{box.state}"\n')
    with NotifySocket(tmp_path / "notify.sock") as notify:
        process = subprocess.Popen([BIN / "consentbox", "run", "--config", tmp_path / "run.toml"],
                                   stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "NOTIFY_SOCKET": str(notify.path)})
        assert process.stderr is not None
        recovered = next(json.loads(line) for line in process.stderr if '"recovered"' in line)
        ready = notify.receive()
        assert notify.receive() == "WATCHDOG=1"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        assert notify.receive() == "STOPPING=1\nSTATUS=stopping"
    assert recovered["id"] == session and recovered["end"] == "interrupted"
    # Ready for systemd; whether it can record depends on this machine's microphone ("default").
    assert ready.startswith("READY=1\nSTATUS=IDLE: ")
    assert process.returncode == 0
