"""Every row of the front-panel table (docs/product.md, "Front panel"), through `consentbox simulate` as a user runs it.

Each test plays a script through the real wiring (gpiozero mock pins, libasound through ALSA's file
plugin, a directory card), then checks the printed timeline, the files on the card, and the audio the
supervisor exports with `consentbox-admin export`. The microphone plays a position signal, so the
exported audio says which input frames it holds: each REC-LED-on interval must be the start of the
input again (the device is opened afresh) and last as long as the LED was on, within one ALSA period.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity, parse_identity_file
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import Kind, verify
from consentbox.ledger.extract import build_extract, decrypt_extract, encrypt_extract
from consentbox.recording.card_id import CARD_ID_NAME
from consentbox.recording.manifest import extract_name
from consentbox.testing.signal import Silence, position_pcm, spans, write_wav
from tests.support.plaintext import files_holding, temp_directories

from .conftest import BIN, Export, SimulatedBox, Timeline, pcm

POLICY = Policy()
PERIOD = POLICY.period_frames
INPUT_SECONDS = 150


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> tuple[Path, bytes]:
    """The input WAV (a position signal) and its PCM."""
    pcm = position_pcm(0, INPUT_SECONDS * POLICY.rate, POLICY)
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, pcm, POLICY)
    return path, pcm


@dataclass
class Run:
    """One `consentbox simulate` run and the supervisor's export of its card."""

    timeline: Timeline
    card: Path
    exported: Export
    started: float  # time.time() when the run began
    boxes: Path  # the supervisor's trusted boxes file, with this box in it

    @property
    def export_status(self) -> int:
        return self.exported.status

    def states(self) -> list[str]:
        return self.timeline.states()

    def of(self, event: str, **match) -> list[dict]:
        return self.timeline.of(event, **match)

    def led_intervals(self) -> list[float]:
        times = [e["t"] for e in self.of("led", led="rec")]
        assert len(times) % 2 == 0, "the REC LED was left on"
        return [off - on for on, off in zip(times[::2], times[1::2], strict=True)]

    def card_files(self) -> list[str]:
        """The files of sessions on the card, their ledger extracts among them (the card's id aside)."""
        return sorted(p.name for p in self.card.iterdir() if p.name != CARD_ID_NAME)

    def manifests(self) -> list[dict]:
        return list(self.exported.reports.values())

    def audio(self) -> list[bytes]:
        return [pcm(wav) for wav in self.exported.wavs.values()]


@pytest.fixture
def simulate(tmp_path, microphone, supervisor):
    key, recipient = supervisor

    def run(script: str, *options: str, config: str | None = None) -> Run:
        box = SimulatedBox(tmp_path, recipient, key_file=key, microphone=microphone[0], config=config)
        started = time.time()
        # No --state: the command makes a private temporary state directory, as for any user.
        timeline = box.simulate(script, *options, state=False)
        return Run(timeline, box.card, box.export(tmp_path / "exported"), started, box.trusted_boxes())

    return run


def assert_audio_matches_led(run: Run, sessions: int = 1) -> None:
    """Each REC-LED-on interval is the input from its start, as long as the LED was on (± a period)."""
    audio = run.audio()
    assert len(audio) == sessions
    pieces = [piece for recording in audio for piece in spans(recording, POLICY)]
    intervals = run.led_intervals()
    assert len(pieces) == len(intervals), pieces
    for piece, seconds in zip(pieces, intervals, strict=True):
        assert isinstance(piece, range) and piece.start == 0, "each interval starts at the input's start"
        assert abs(len(piece) - seconds * POLICY.rate) <= PERIOD, (len(piece), seconds)


def assert_no_plaintext(run: Run, pcm: bytes) -> None:
    """No 4 KiB run of the input in any file on the card, or in any temp file written during the run.

    pytest's own temporary tree is left out of the second scan: it holds the input WAV and the
    supervisor's exports, plaintext by design, and the card, scanned first."""
    assert files_holding(pcm, [run.card]) == []
    pytest_tree = run.card.parent.parent
    assert files_holding(pcm, temp_directories(), changed_since=run.started, skip=[pytest_tree]) == []

SETUP = "0 tap record\n"
CONSENTED = SETUP + "2 tap consent 1\n3 tap consent 2\n"
RECORD_5S = CONSENTED + "5 hold record 1.5\n11 hold record 2.5\n"  # REC LED on 6.0 .. 13.0


def test_idle_tap_record_sets_up_a_session_and_writes_nothing(simulate):
    run = simulate(SETUP + "5 end\n")
    assert run.states()[:2] == ["IDLE", "COLLECTING"]
    assert run.of("setup")[0]["headcount"] == 2
    assert run.card_files() == []


def test_headcount_increments_and_every_party_must_consent(simulate):
    run = simulate(SETUP + "1 tap record\n2 tap consent 1\n3 tap consent 2\n5 hold record 1.5\n"
                   "7 tap consent 3\n9 hold record 1.2\n12 hold record 2.5\n")
    assert [e["headcount"] for e in run.of("headcount")] == [3]
    assert run.of("refused")[0]["reason"] == "not everyone has consented"
    assert [e["seat"] for e in run.of("consent")] == [1, 2, 3]
    assert run.manifests()[0]["headcount"] == 3
    assert_audio_matches_led(run)


def test_one_consent_per_seat(simulate):
    run = simulate(SETUP + "1 tap consent 1\n2 tap consent 1\n3 tap consent 1\n5 hold record 1.5\n9 end\n")
    assert [e["seat"] for e in run.of("consent")] == [1]
    assert "READY" not in run.states() and run.card_files() == []


def test_shared_button_counts_taps_a_second_apart(simulate):
    run = simulate(SETUP + "1 tap consent 1\n1.4 tap consent 1\n3 tap consent 1\n5 hold record 1.5\n"
                   "8 hold record 2.5\n", "--shared-consent")
    assert [e["seat"] for e in run.of("consent")] == [1, 2]
    assert "RECORDING" in run.states()
    assert_audio_matches_led(run)


def test_bouncing_contacts_count_once(simulate):
    bounce = "".join(f"{1 + i * 0.004:.3f} {'press' if i % 2 == 0 else 'release'} consent 1\n" for i in range(5))
    run = simulate(SETUP + bounce + "2 release consent 1\n9 end\n")
    assert [e["seat"] for e in run.of("consent")] == [1]


def test_ready_hold_record_lights_rec_led_before_capture_and_records_exactly_that(simulate, microphone):
    run = simulate(RECORD_5S)
    led_on = run.of("led", led="rec", on=True)[0]
    capture = run.of("capture", open=True)[0]
    assert led_on["t"] == capture["t"] == 6.0
    assert run.timeline.index(led_on) < run.timeline.index(capture)
    assert run.of("session")[0]["end"] == "ended"
    session = run.of("session")[0]["id"]
    names = run.card_files()
    assert names == [f"{session}.000.wav.age", extract_name(session), f"{session}.manifest.age"]
    assert {e["path"] for e in run.of("file")} == set(names) - {extract_name(session)}
    assert run.export_status == 0
    assert_audio_matches_led(run)
    assert_no_plaintext(run, microphone[1])


def test_age_decrypts_every_file_on_the_card(simulate, supervisor):
    run = simulate(RECORD_5S)
    for path in run.card.glob("*.age"):
        subprocess.run(["age", "-d", "-i", supervisor[0], "-o", "/dev/null", path], check=True)


def test_refused_hold_writes_nothing(simulate):
    run = simulate(SETUP + "1 tap consent 1\n2 hold record 3\n9 end\n")
    assert run.of("refused")[0]["reason"] == "not everyone has consented"
    assert run.of("capture") == [] and run.of("led", led="rec") == [] and run.card_files() == []


def test_pause_and_resume_reopen_the_device_from_the_start(simulate, microphone):
    run = simulate(CONSENTED + "5 hold record 1.5\n10 tap record\n20 tap record\n24 hold record 2.5\n")
    assert run.states()[-4:] == ["RECORDING", "PAUSED", "RECORDING", "IDLE"]
    close, led_off = run.of("capture", open=False)[0], run.of("led", led="rec", on=False)[0]
    assert run.timeline.index(close) < run.timeline.index(led_off)
    intervals = run.manifests()[0]["intervals"]
    assert len(intervals) == 2
    assert_audio_matches_led(run)
    assert_no_plaintext(run, microphone[1])


def test_withdrawal_destroys_the_session_by_default(simulate, microphone):
    run = simulate(CONSENTED + "5 hold record 1.5\n10 hold consent 2 2.5\n")
    assert "WITHDRAWN" in run.states()
    assert run.of("session")[0]["end"] == "withdrawn" and run.of("session")[0]["kept"] is False
    assert run.card_files() == [extract_name(run.of("session")[0]["id"])]  # its record stays; its audio is gone
    assert_no_plaintext(run, microphone[1])


def test_withdrawal_with_keep_keeps_the_session_marked(simulate):
    run = simulate(CONSENTED + "5 hold record 1.5\n10 hold consent 2 2.5\n",
                   config='[policy]\non_withdrawal = "keep"\n')
    manifest = run.manifests()[0]
    assert manifest["withdrawn"] is True and manifest["end_reason"] == "withdrawn"
    # Kept from the REC LED on (6.0) to the press that withdrew (10.0), not to the end of its hold (12.0).
    [[kept]] = [spans(audio, POLICY) for audio in run.audio()]
    assert isinstance(kept, range) and kept.start == 0
    assert abs(len(kept) - 4.0 * POLICY.rate) <= PERIOD, len(kept)


def test_withdrawal_before_recording_leaves_nothing(simulate):
    run = simulate(CONSENTED + "4 hold consent 1 2.5\n9 end\n")
    assert "WITHDRAWN" in run.states() and run.card_files() == []


def test_consent_timeout_cancels_the_setup(simulate):
    run = simulate(SETUP + "1 tap consent 1\n400 end\n")
    assert run.of("session")[0]["end"] == "consent timeout"
    assert run.of("session")[0]["t"] == pytest.approx(181.1)
    assert run.card_files() == []


def test_pause_timeout_ends_the_session(simulate):
    run = simulate(CONSENTED + "5 hold record 1.5\n10 tap record\n2000 end\n")
    assert run.of("session")[0]["end"] == "pause timeout"
    assert run.manifests()[0]["end_reason"] == "pause timeout"
    assert_audio_matches_led(run)


def test_max_session_stops_a_forgotten_recorder(simulate):
    run = simulate(CONSENTED + "5 hold record 1.5\n500 end\n", config="[policy]\nmax_session = 90\n")
    end = run.of("session")[0]
    assert end["end"] == "max session" and end["t"] == pytest.approx(96.0, abs=POLICY.period_seconds)
    assert_audio_matches_led(run)


def test_recording_past_the_input_records_silence(simulate):
    run = simulate(CONSENTED + f"5 hold record 1.5\n{INPUT_SECONDS + 20} hold record 2.5\n")
    pieces = spans(run.audio()[0], POLICY)
    assert pieces[0] == range(0, INPUT_SECONDS * POLICY.rate) and isinstance(pieces[1], Silence)


def test_the_card_carries_a_verifiable_ledger_that_agrees_with_the_manifest(simulate, supervisor):
    run = simulate(CONSENTED + "5 hold record 1.5\n10 tap record\n20 tap record\n24 hold record 2.5\n")
    session = run.of("session")[0]["id"]
    ledger = run.card / extract_name(session)
    verified = subprocess.run([BIN / "consentbox-admin", "verify-ledger", "-i", supervisor[0], ledger],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    report = subprocess.run([BIN / "consentbox-admin", "consent-report", "-i", supervisor[0], "--boxes", run.boxes,
                             run.card, session], capture_output=True, text=True)
    assert report.returncode == 0, report.stdout + report.stderr
    assert session in report.stdout


def identity_in(key: Path) -> X25519Identity:
    """The supervisor's identity, from the file `consentbox-admin keygen` wrote."""
    return parse_identity_file(key.read_text(), str(key))[0]


def test_an_older_extract_put_back_is_caught_by_the_manifest(tmp_path, microphone, supervisor):
    # An extract the box wrote before the session's end is signed by the box and verifies alone (only the
    # newest is the whole story); the final manifest names the session's last entry before it was written
    # and that entry's hash, so the consent report notices.
    key, recipient = supervisor
    box = SimulatedBox(tmp_path, recipient, key_file=key, microphone=microphone[0])
    session = box.simulate(RECORD_5S).of("session")[0]["id"]
    entries = verify(box.state / "ledger.jsonl", session=session).selected
    end = next(number for number, entry in enumerate(entries) if entry.kind is Kind.END)
    older = build_extract(DeviceSigningKey.load(box.state / "device.key"), verify(box.state / "ledger.jsonl").first,
                          entries[:end])
    ledger = box.card / extract_name(session)
    ledger.write_bytes(encrypt_extract(older, [identity_in(key).recipient]))
    verified = subprocess.run([BIN / "consentbox-admin", "verify-ledger", "-i", key, ledger], capture_output=True,
                              text=True)
    assert verified.returncode == 0, "an older extract is valid as far as it goes"
    report = subprocess.run([BIN / "consentbox-admin", "consent-report", "-i", key, "--boxes", box.trusted_boxes(),
                             box.card, session], capture_output=True, text=True)
    assert report.returncode == 1 and "ledger" in report.stdout.split("DISAGREE")[-1]


def test_a_withdrawal_erased_from_the_card_s_extract_is_refused(simulate, supervisor):
    # Issue 15: with on_withdrawal = keep, cutting the withdrawal from the card's ledger (and writing an
    # "interrupted" manifest) passed as a power cut. The extract is signed as a whole: any cut is refused.
    key = supervisor[0]
    run = simulate(CONSENTED + "5 hold record 1.5\n10 hold consent 2 2.5\n",
                   config='[policy]\non_withdrawal = "keep"\n')
    session = run.of("session")[0]["id"]
    ledger = run.card / extract_name(session)
    with open(ledger, "rb") as src:
        plaintext = decrypt_extract(src, [identity_in(key)], str(ledger))
    assert b'"kind":"withdrawal"' in plaintext
    cut = b"".join(line for line in plaintext.splitlines(keepends=True)
                   if b'"kind":"withdrawal"' not in line and b'"reason":"withdrawn"' not in line)
    ledger.write_bytes(encrypt_extract(cut, [identity_in(key).recipient]))
    for command in (["verify-ledger", "-i", key, ledger],
                    ["consent-report", "-i", key, "--boxes", run.boxes, run.card, session]):
        done = subprocess.run([BIN / "consentbox-admin", *command], capture_output=True, text=True)
        assert done.returncode == 1 and "a line was removed or added" in done.stderr, done.stderr
