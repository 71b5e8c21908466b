"""`consentbox-admin verify-ledger` and `consent-report` as IT and supervisors run them: the installed command."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from consentbox.core.policy import SampleFormat
from consentbox.core.reasons import EndReason
from consentbox.crypto import X25519Identity, encrypt
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import LEDGER_NAME, Kind
from consentbox.recording.manifest import Consent, Interval, Manifest, manifest_name
from consentbox.recording.wav import AudioFormat
from tests.support.ledgers import (
    ABANDONED,
    EPOCH,
    POLICY_SHA256,
    RECORDED,
    WITHDRAWN,
    SteppingClocks,
    open_ledger,
    sample_ledger,
)

ADMIN = str(Path(sys.executable).parent / "consentbox-admin")
RATE = 48_000


def admin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ADMIN, *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def device_key() -> DeviceSigningKey:
    return DeviceSigningKey.generate(secret=bytes(range(32)))


@pytest.fixture
def box_ledger(tmp_path: Path, card: Path, device_key) -> Path:
    """The box's ledger after a morning of sessions (one start), mirrored to `card`."""
    path = tmp_path / "box-ledger.jsonl"
    sample_ledger(path, card, device_key, runs=1)
    return path


def recorded_manifest() -> Manifest:
    """The manifest the box wrote for RECORDED, as `write_every_kind` tells its story.

    Set-up at 12 s on the box's clock; consents at 14, 15, 16; capture 18–78 and 108–153; ended at 153.
    """
    return Manifest(
        session=RECORDED, policy_sha256=POLICY_SHA256, headcount=3,
        consents=(Consent(1, 2.0), Consent(2, 3.0), Consent(3, 4.0)),
        intervals=(Interval(6.0, 66.0, 60 * RATE), Interval(96.0, 141.0, 45 * RATE)),
        audio=AudioFormat(RATE, 1, SampleFormat.S16_LE), segments=(), overruns=0,
        end_reason=EndReason.ENDED, ended=141.0, withdrawn=False, expires=date(2026, 6, 5),
        started=EPOCH + timedelta(seconds=18),
    )


def put_manifest(card: Path, manifest: Manifest, identity: X25519Identity) -> None:
    out = io.BytesIO()
    encrypt(io.BytesIO(manifest.to_json()), out, [identity.recipient])
    (card / manifest_name(manifest.session)).write_bytes(out.getvalue())


# -- verify-ledger ------------------------------------------------------------------------------------


def test_verify_ledger_prints_a_summary_of_an_intact_ledger(box_ledger: Path, card: Path, device_key):
    for ledger in (box_ledger, card / LEDGER_NAME):
        done = admin("verify-ledger", str(ledger))
        assert done.returncode == 0 and done.stderr == ""
        lines = done.stdout.splitlines()
        assert lines[0] == f"ledger       {ledger}"
        assert lines[1].startswith(f"device key   {device_key.public_key} (named by the ledger itself")
        assert lines[2] == "entries      28 (seq 0–27), 3 sessions, 1 boot, 0 gaps recorded"
        assert lines[3] == "first        2026-05-06 14:00:00+02:00 (seq 0, boot)"
        assert lines[4] == "last         2026-05-06 14:05:16+02:00 (seq 27, shutdown)"
        assert lines[5].startswith("tail         complete")
        assert lines[6] == "result       intact"


def test_verify_ledger_with_the_device_key_as_text_or_file(box_ledger: Path, tmp_path: Path, device_key):
    key_file = tmp_path / "device.pub"
    key_file.write_text(f"# the box in room 2\n{device_key.public_key}\n")
    for given in (device_key.public_key.to_string(), str(key_file)):
        done = admin("verify-ledger", "--device-key", given, str(box_ledger))
        assert done.returncode == 0, done.stderr
        assert f"device key   {device_key.public_key}\n" in done.stdout


def test_verify_ledger_refuses_the_wrong_key_in_one_line(box_ledger: Path):
    other = DeviceSigningKey.generate(secret=bytes(range(1, 33))).public_key
    done = admin("verify-ledger", "--device-key", other.to_string(), str(box_ledger))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"consentbox-admin: {box_ledger} line 1 (seq 0): the ledger was written by "
                                  f"device key ")


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda lines: lines.pop(9), "line 10: sequence number 10 where 9 was expected: entry 9 is missing (deleted)"),
    (lambda lines: lines.insert(5, lines[2]), "line 6: sequence number 2 where 5 was expected: an entry was "
                                              "inserted, repeated or moved"),
    (lambda lines: lines.__setitem__(7, lines[7].replace(b'"seat":2', b'"seat":3')),
     "line 8 (seq 7): signature does not verify"),
])
def test_verify_ledger_names_the_first_bad_entry(box_ledger: Path, edit, reason: str):
    lines = box_ledger.read_bytes().splitlines()
    edit(lines)
    box_ledger.write_bytes(b"\n".join(lines) + b"\n")
    done = admin("verify-ledger", str(box_ledger))
    assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1
    assert reason in done.stderr


def test_verify_ledger_reports_a_torn_tail_as_truncation_with_exit_3(box_ledger: Path):
    data = box_ledger.read_bytes()
    box_ledger.write_bytes(data[:-30])
    done = admin("verify-ledger", str(box_ledger))
    assert done.returncode == 3
    assert "tail         TRUNCATED: " in done.stdout
    assert "result       intact up to seq 26; tail truncated" in done.stdout
    assert done.stderr == (f"consentbox-admin: warning: {box_ledger}: tail truncated: "
                           f"{len(data.splitlines()[-1]) + 1 - 30} bytes of a partial entry after seq 26\n")


def test_verify_ledger_errors_are_one_line(tmp_path: Path):
    done = admin("verify-ledger", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "No such file" in done.stderr
    done = admin("verify-ledger", "--device-key", "age1notakey", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 2 and "neither a device key" in done.stderr


# -- consent-report -----------------------------------------------------------------------------------


def test_consent_report_prints_the_timeline_beside_the_manifest_and_they_agree(
    box_ledger: Path, card: Path, identity, key_file: Path, device_key,
):
    put_manifest(card, recorded_manifest(), identity)
    done = admin("consent-report", "-i", str(key_file), str(card), RECORDED)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    out = done.stdout
    assert out.startswith("ConsentBox consent record\n")
    assert f"Session      {RECORDED}\n" in out and f"Device key   {device_key.public_key}\n" in out
    assert "this session: seq 4–13, head " in out
    for row in ("     4  2026-05-06 14:00:12+02:00      0.000  set up for 2 parties",
                "     5  2026-05-06 14:00:13+02:00      1.000  headcount set to 3",
                "     6  2026-05-06 14:00:14+02:00      2.000  consent given at seat 1",
                "     8  2026-05-06 14:00:15+02:00      3.000  refused: consent has begun: the headcount is fixed",
                "    10  2026-05-06 14:00:18+02:00      6.000  recording started",
                "    11  2026-05-06 14:01:18+02:00     66.000  recording paused",
                "    13  2026-05-06 14:02:33+02:00    141.000  session ended normally: what was recorded is kept"):
        assert row in out
    assert "DISAGREE" not in out
    assert out.endswith("Result: the ledger and the manifest AGREE.\n")


def test_consent_report_lists_every_disagreement(box_ledger: Path, card: Path, identity, key_file: Path):
    manifest = dataclasses.replace(
        recorded_manifest(), headcount=2, consents=(Consent(1, 2.0), Consent(3, 3.0)),
        intervals=(Interval(6.0, 66.0, 1), Interval(96.0, 120.0, 1)), end_reason=EndReason.MAX_SESSION,
        ended=120.0,
    )
    put_manifest(card, manifest, identity)
    done = admin("consent-report", "-i", str(key_file), str(card), RECORDED)
    assert done.returncode == 1
    disagreeing = [line.split()[0:2] for line in done.stdout.splitlines() if line.endswith("DISAGREE")]
    assert disagreeing == [["headcount", "ledger:"], ["consent", "2"], ["consent", "3"], ["interval", "2"],
                           ["end", "ledger:"]]
    assert ("Result: the ledger and the manifest DISAGREE on 5 points: headcount, consent 2, consent 3, "
            "interval 2, end.") in done.stdout
    assert done.stderr == (f"consentbox-admin: session {RECORDED}: the ledger and the manifest disagree on: "
                           "headcount, consent 2, consent 3, interval 2, end\n")


def test_a_clean_cut_of_the_ledger_shows_against_the_manifest(box_ledger: Path, card: Path, identity,
                                                                key_file: Path):
    put_manifest(card, recorded_manifest(), identity)
    lines = (card / LEDGER_NAME).read_bytes().splitlines(keepends=True)
    (card / LEDGER_NAME).write_bytes(b"".join(lines[:13]))  # the session's end entry is cut off
    assert admin("verify-ledger", str(card / LEDGER_NAME)).returncode == 0  # the file alone cannot tell
    done = admin("consent-report", "-i", str(key_file), str(card), RECORDED)
    assert done.returncode == 1 and "disagree on: interval 2, end" in done.stderr
    assert "(no end entry: the box stopped while the session was open" in done.stdout


def test_a_destroyed_session_agrees_when_its_files_are_gone(box_ledger: Path, card: Path, key_file: Path):
    done = admin("consent-report", "-i", str(key_file), str(card), WITHDRAWN)
    assert done.returncode == 0, done.stdout
    assert "consent withdrawn" in done.stdout and "2 files destroyed (withdrawal)" in done.stdout
    assert "files        ledger: destroyed" in done.stdout
    (card / f"{WITHDRAWN}.000.wav.age").write_bytes(b"left behind")
    done = admin("consent-report", "-i", str(key_file), str(card), WITHDRAWN)
    assert done.returncode == 1 and "1 file left" in done.stdout


def test_a_set_up_that_never_recorded_needs_no_files(box_ledger: Path, card: Path, key_file: Path):
    done = admin("consent-report", "-i", str(key_file), str(card), ABANDONED)
    assert done.returncode == 0, done.stdout
    assert "session ended (consent timeout)" in done.stdout and "nothing recorded" in done.stdout


def test_a_recorded_session_without_its_manifest_disagrees(box_ledger: Path, card: Path, key_file: Path):
    done = admin("consent-report", "-i", str(key_file), str(card), RECORDED)
    assert done.returncode == 1 and "NO MANIFEST" in done.stdout


def test_consent_report_refuses_a_ledger_that_is_not_intact(box_ledger: Path, card: Path, identity,
                                                             key_file: Path):
    put_manifest(card, recorded_manifest(), identity)
    copy = card / LEDGER_NAME
    copy.write_bytes(copy.read_bytes().replace(b'"headcount":3', b'"headcount":2', 1))
    done = admin("consent-report", "-i", str(key_file), str(card), RECORDED)
    assert done.returncode == 1 and done.stdout == ""
    assert "line 6 (seq 5): signature does not verify" in done.stderr


@pytest.mark.parametrize(("session", "message"), [
    ("1111111111111111", "has no entries for session 1111111111111111"),
    ("Alice", "'Alice' is not a session id"),
])
def test_consent_report_for_an_unknown_session(box_ledger: Path, card: Path, key_file: Path, session, message):
    done = admin("consent-report", "-i", str(key_file), str(card), session)
    assert done.returncode == 1 and message in done.stderr and done.stderr.count("\n") == 1


def test_consent_report_without_a_ledger_on_the_card(card: Path, key_file: Path):
    done = admin("consent-report", "-i", str(key_file), str(card), RECORDED)
    assert done.returncode == 1 and "no ledger on the card" in done.stderr


def test_a_session_interrupted_by_a_power_cut(tmp_path: Path, card: Path, identity, key_file: Path, device_key):
    # The box lost power while recording; at its next start it marked the session interrupted (the card's
    # recovery estimated the last interval's end from the audio on the card).
    box = tmp_path / "box-ledger.jsonl"
    clocks = SteppingClocks()
    ledger = open_ledger(box, card, device_key, clocks)
    clocks.advance(12)
    ledger.append(Kind.SETUP, RECORDED, headcount=1, policy_sha256=POLICY_SHA256)
    clocks.advance(2)
    ledger.append(Kind.CONSENT, RECORDED, seat=1)
    clocks.advance(4)
    ledger.append(Kind.START, RECORDED)
    ledger.close(shutdown=False)  # the power cut
    restarted = SteppingClocks(epoch=EPOCH + timedelta(minutes=30))
    with open_ledger(box, card, device_key, restarted) as ledger:
        ledger.append(Kind.END, RECORDED, reason=EndReason.INTERRUPTED, kept=True)
    manifest = dataclasses.replace(
        recorded_manifest(), headcount=1, consents=(Consent(1, 2.0),), intervals=(Interval(6.0, 50.25, 1),),
        end_reason=EndReason.INTERRUPTED, ended=50.25)
    put_manifest(card, manifest, identity)
    done = admin("consent-report", "-i", str(key_file), str(card), RECORDED)
    assert done.returncode == 0, done.stdout
    assert "after a restart  session ended (interrupted): what was recorded is kept" in done.stdout
    report = {line.split()[0]: line for line in done.stdout.splitlines() if line.endswith("agree")}
    assert "6.000–open s" in report["interval"] and "interrupted (after a restart)" in report["end"]


def test_help_lists_the_ledger_commands():
    done = admin("--help")
    assert "verify-ledger" in done.stdout and "consent-report" in done.stdout
    for command in ("verify-ledger", "consent-report"):
        assert admin(command, "--help").returncode == 0
