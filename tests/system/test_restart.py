"""A box killed mid-session and started again (issue 5, item 6), through the real commands.

`consentbox simulate --state DIR` records until a second segment appears on the card and is then killed
with SIGKILL, as a power cut would stop it. The next `consentbox simulate` (or `consentbox run`) with the
same state directory finishes that session before the box is ready and reports it; the supervisor's
export then says the session was interrupted and truncated, and holds the input from its start.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from consentbox.admin.extracts import load_extract
from consentbox.core.policy import Policy
from consentbox.crypto import parse_identity_file
from consentbox.ledger import Kind, verify
from consentbox.recording.manifest import extract_name
from consentbox.testing.signal import position_pcm, spans, write_wav
from tests.support.notify_socket import NotifySocket

from .conftest import BIN, SimulatedBox, Timeline, pcm

POLICY = Policy(segment_bytes=1 << 20)
INPUT_SECONDS = 40
CONFIG = "[policy]\nsegment_bytes = 1048576\n"
RECORD_LONG = "0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.5\n900 hold record 2.5\n"


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, position_pcm(0, INPUT_SECONDS * POLICY.rate, POLICY), POLICY)
    return path


class Box(SimulatedBox):
    """`consentbox simulate` runs on one card and one state directory, with temp files of their own."""

    def __init__(self, tmp_path: Path, microphone: Path, supervisor: tuple[Path, str]) -> None:
        super().__init__(tmp_path, supervisor[1], key_file=supervisor[0], microphone=microphone, config=CONFIG)
        self.scratch = tmp_path / "tmp"
        self.scratch.mkdir()

    def run(self, script: str, *, state: bool = True) -> Timeline:
        """`consentbox simulate` with (or without) the box's state directory, its TMPDIR `scratch`."""
        return self.simulate(script, state=state, env={"TMPDIR": str(self.scratch)})

    def killed_while_recording(self) -> str:
        """Run a long recording and SIGKILL it once its second segment is on the card; its session id."""
        box = self.start(RECORD_LONG)
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
    return Box(tmp_path, microphone, supervisor)


def export(box: Box, out: Path) -> tuple[int, dict, bytes]:
    """The supervisor's export of the box's one session: the exit status, its report and its audio."""
    exported = box.export(out, statuses=None)
    [report] = exported.reports.values()
    return exported.status, report, pcm(next(iter(exported.wavs.values())))


def test_a_box_killed_mid_session_ends_it_as_interrupted_when_it_starts_again(box, tmp_path):
    session = box.killed_while_recording()
    status, before, audio = export(box, tmp_path / "before")
    assert status == 3 and before["end_reason"] is None
    identity = parse_identity_file(box.key_file.read_text(), str(box.key_file))
    extract = box.card / extract_name(session)
    assert Kind.END not in [entry.kind for entry in load_extract(extract, identity, session=session).entries]

    timeline = box.run("1 end\n")
    segments = len(list(box.card.glob(f"{session}.*.wav.age")))
    assert timeline[0] == {"t": 0.0, "event": "settings", "bundle_version": 0, "recipients": 1}
    assert timeline[1] == {"t": 0.0, "event": "recovered", "id": session, "segments": segments,
                           "end": "interrupted", "destroyed": False}
    assert timeline[2] == {"t": 0.0, "event": "state", "state": "IDLE"}  # recovery came before all else

    status, after, recovered_audio = export(box, tmp_path / "after")
    assert status == 3 and after["end_reason"] == "interrupted" and after["export"]["truncated"]
    assert any("marked it interrupted" in note for note in after["export"]["notes"])
    # Before, the export held what the box had sealed (segment 0, and segment 1 up to its last checkpoint);
    # recovery sealed segment 1's whole chunks too.
    assert recovered_audio.startswith(audio)
    [recorded] = spans(audio, POLICY)  # the input from its start, past the first segment
    assert recorded.start == 0 and len(recorded) > 10 * POLICY.rate
    interval = after["intervals"][0]
    assert interval["frames"] == len(recorded)  # counted from the card's sealed chunks, without decrypting

    # Its extract on the card was rewritten with the end recovery recorded, in a later run of the box.
    rewritten = load_extract(extract, identity, session=session)
    assert rewritten.entries == verify(box.state / "ledger.jsonl", session=session).selected
    [end] = [entry for entry in rewritten.entries if entry.kind is Kind.END]
    assert end.fields["reason"] == "interrupted" and rewritten.run_of[end.seq] == 1
    report = subprocess.run([BIN / "consentbox-admin", "consent-report", "-i", box.key_file, "--boxes",
                             box.trusted_boxes(), box.card, session], capture_output=True, text=True)
    assert report.returncode == 0 and "after a restart" in report.stdout, report.stdout + report.stderr

    again = box.run("1 end\n")
    assert not [entry for entry in again if entry["event"] == "recovered"]


def test_without_state_a_private_temporary_state_is_used_and_removed(box):
    timeline = box.run("0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.5\n6 end\n", state=False)
    assert [entry["end"] for entry in timeline if entry["event"] == "session"] == ["shutdown"]
    assert list(box.scratch.iterdir()) == []  # the temporary state directory is gone


def test_a_box_killed_mid_session_is_ready_for_systemd_again_with_the_session_recovered(box, tmp_path):
    # Self-healing (issue 9, item 3): the unit restarts a dead box (Restart=always, checked in
    # tests/system/test_units.py); the restarted box recovers the session before it tells systemd READY=1.
    session = box.killed_while_recording()
    with NotifySocket(tmp_path / "notify.sock") as notify:
        process = box.serve(env={"NOTIFY_SOCKET": str(notify.path)})  # its CONFIG, card, recipient, state
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
