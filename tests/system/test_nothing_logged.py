"""Nothing from the audio or a key is ever logged (docs/cli.md, `consentbox run`).

After every system test, the `nothing_secret_logged` fixture (conftest.py) scans what each box that ran
printed or journaled, and its state directory, for the audio its microphone gave it, its device key and
the supervisor's identities (tests/support/leaks.py). Here a whole demo session gives the scan nothing to
find, and the scan finds a secret in each place a box logs to: a finished command's output, a running
box's stream, the journal records of a box in this process, a file of its state directory.
"""

from __future__ import annotations

import base64
import json
import signal
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.alsa import AlsaSource
from consentbox.hw.errors import AudioLost
from consentbox.sim.demo import DEMO_SCRIPT
from consentbox.state.files import DEVICE_KEY, JOURNAL, LEDGER
from consentbox.testing.signal import position_pcm, write_wav
from tests.support.leaks import device_key_bytes
from tests.support.notify_socket import NotifySocket
from tests.system.conftest import SimulatedBox, leaks_of_boxes_that_ran

POLICY = Policy()
#: A session for two that records from 2.5 s.
RECORDING = "0 tap record\n0.2 tap consent 1\n0.4 tap consent 2\n1 hold record 1.5\n8 end\n"


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    """The position signal, long enough for the demo script (its last press is at 80 s)."""
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, position_pcm(0, 90 * POLICY.rate, POLICY), POLICY)
    return path


@pytest.fixture
def box(tmp_path: Path, microphone: Path, supervisor: tuple[Path, str]) -> SimulatedBox:
    return SimulatedBox(tmp_path, supervisor[1], key_file=supervisor[0], microphone=microphone)


def device_key(box: SimulatedBox) -> bytes:
    """The box's device key, made as on its first start."""
    box.state.mkdir(mode=0o700)
    DeviceSigningKey.load_or_create(box.state / DEVICE_KEY)
    return device_key_bytes((box.state / DEVICE_KEY).read_text())


def test_a_demo_session_logs_nothing_of_its_audio_or_any_key(box: SimulatedBox):
    # Consents, a refused hold, recording, a pause, the end; a second session that a client withdraws from.
    timeline = box.simulate(DEMO_SCRIPT.read_text(), "--seats", "3")
    assert len(timeline.of("capture", open=True)) == 3 and timeline.of("file")  # a real session was logged
    assert [session["end"] for session in timeline.of("session")] == ["ended", "withdrawn"]
    assert leaks_of_boxes_that_ran() == []


def test_a_key_on_a_finished_box_s_stderr_is_found(box: SimulatedBox):
    # `consentbox simulate` quotes a script line it cannot read: here one holding the device key in hex.
    key = device_key(box)
    with pytest.raises(AssertionError, match="unknown step"):
        box.simulate(f"1 {key.hex()}\n")
    assert leaks_of_boxes_that_ran() == [
        "stderr of `consentbox simulate script1.txt` holds the box's device signing key, in hex"]


@pytest.mark.parametrize("read", [True, False], ids=["read-by-the-test", "left-unread"])
def test_a_key_on_a_running_box_s_stream_is_found(box: SimulatedBox, tmp_path: Path, read: bool):
    # The daemon's self-test names the audio device it cannot open, before READY=1: here a device named with
    # the device key in hex. Both what the test read of a running box's stream and what it left are scanned.
    key = device_key(box)
    with NotifySocket(tmp_path / "notify.sock", timeout=60) as notify:
        process = box.serve(audio_device=key.hex(), env={"NOTIFY_SOCKET": str(notify.path)})
        try:
            assert notify.receive().startswith("READY=1\n")
            if read:
                assert process.stderr is not None
                assert any(json.loads(line)["event"] == "selftest" for line in process.stderr if line[0] == "{")
        finally:
            process.kill()
            process.wait(timeout=30)
    assert leaks_of_boxes_that_ran() == ["stderr of `consentbox run` holds the box's device signing key, in hex"]


def test_audio_in_a_journal_record_is_found(box: SimulatedBox, monkeypatch: pytest.MonkeyPatch):
    # A fake audio device whose error quotes the last period it captured: the box logs the error's words.
    real_read, periods = AlsaSource.read, []

    def read(source: AlsaSource) -> bytes:
        periods.append(bytes(real_read(source)))
        if len(periods) == 20:
            raise AudioLost(f"capture failed after {periods[-1][:64].hex()}")
        return periods[-1]

    monkeypatch.setattr(AlsaSource, "read", read)
    timeline = box.simulate(RECORDING, in_process=True)
    assert timeline.of("fault", problem="audio lost")
    assert leaks_of_boxes_that_ran() == [
        "the journal (script1.txt played in this process) holds audio its microphone gave it, in hex"]


def test_an_identity_in_a_file_of_the_state_directory_is_found(box: SimulatedBox, supervisor: tuple[Path, str]):
    box.simulate(RECORDING)
    assert leaks_of_boxes_that_ran() == []
    ledger = box.state / LEDGER
    with ledger.open("a") as log:  # the box's log on its disk, written here as a box that leaked would
        log.write(supervisor[0].read_text().splitlines()[-1] + "\n")
    assert box.leaks() == [f"{ledger} holds an age secret key (AGE-SECRET-KEY-1…)",
                           f"{ledger} holds the key data of an age identity the test made"]


def test_a_journal_key_in_a_file_of_the_state_directory_is_found(box: SimulatedBox):
    # A box killed while recording leaves its session's journal key until its next start.
    with box.start(RECORDING.replace("8 end", "900 end")) as process:
        assert process.stdout is not None
        # The session's files, and with them its journal, are made as capture's first period is handed on.
        assert any(json.loads(line)["event"] == "file" for line in process.stdout)
        process.kill()
    assert process.returncode == -signal.SIGKILL, "the box ended its session before it was killed"
    [key] = (box.state / JOURNAL).glob("*.key")
    ledger = box.state / LEDGER
    with ledger.open("a") as log:
        log.write(base64.b64encode(key.read_bytes()).decode() + "\n")
    assert box.leaks() == [f"{ledger} holds the journal's key {key.name}, in base64"]
