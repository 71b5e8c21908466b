"""`consentbox-admin verify-ledger` and `consent-report` as IT and supervisors run them: the installed command."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from consentbox.admin.boxes import TrustedBox, trust_box
from consentbox.core.policy import SampleFormat
from consentbox.core.reasons import EndReason
from consentbox.crypto import X25519Identity, encrypt
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import Kind, verify
from consentbox.ledger.extract import build_extract, decrypt_extract, encrypt_extract
from consentbox.recording.manifest import Consent, Interval, Manifest, extract_name, manifest_name
from consentbox.recording.seal import Seal, manifest_seal
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
def box_ledger(tmp_path: Path, card: Path, device_key, identity) -> Path:
    """The box's ledger after a morning of sessions (one start); on `card`, each session's extract, written
    while its files were there (none are left: a test puts back the manifest it needs)."""
    path = tmp_path / "box-ledger.jsonl"
    placeholders = [card / manifest_name(session) for session in (RECORDED, WITHDRAWN, ABANDONED)]
    for placeholder in placeholders:
        placeholder.write_bytes(b"age ciphertext")
    sample_ledger(path, card, device_key, runs=1, readers=[identity.recipient])
    for placeholder in placeholders:
        placeholder.unlink()
    return path


def rewrite_extract(card: Path, session: str, identity: X25519Identity, change) -> None:
    """Decrypt the session's extract, `change` its plaintext, and encrypt it again, as anyone with the
    supervisor's key can (only the device key can sign)."""
    path = card / extract_name(session)
    with open(path, "rb") as src:
        plaintext = decrypt_extract(src, [identity], str(path))
    path.write_bytes(encrypt_extract(change(plaintext), [identity.recipient]))


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


def put_manifest(card: Path, manifest: Manifest, identity: X25519Identity) -> Seal:
    """Write `manifest` to the card, encrypted as the box encrypts it; its seal."""
    out = io.BytesIO()
    encrypt(io.BytesIO(manifest.to_json()), out, [identity.recipient])
    (card / manifest_name(manifest.session)).write_bytes(out.getvalue())
    return manifest_seal(out.getvalue())


def put_sealed_manifest(box_ledger: Path, card: Path, device_key: DeviceSigningKey, manifest: Manifest,
                        identity: X25519Identity) -> None:
    """Write `manifest` to the card as the box does: then its seal into the box's ledger (and so into the
    session's extract)."""
    seal = put_manifest(card, manifest, identity)
    with open_ledger(box_ledger, card, device_key, SteppingClocks(), readers=[identity.recipient]) as ledger:
        ledger.append(Kind.SEAL, manifest.session, **dataclasses.asdict(seal))


@pytest.fixture
def trusted(tmp_path: Path, device_key: DeviceSigningKey) -> Path:
    """The supervisor's trusted boxes file, with the box of `device_key` in it."""
    path = tmp_path / "boxes"
    trust_box(path, TrustedBox(device_key.public_key, "Room 2"))
    return path


# -- verify-ledger ------------------------------------------------------------------------------------


def test_verify_ledger_prints_a_summary_of_an_intact_ledger(box_ledger: Path, card: Path, device_key):
    for ledger in (box_ledger,):
        done = admin("verify-ledger", str(ledger))
        assert done.returncode == 0 and done.stderr == ""
        lines = done.stdout.splitlines()
        assert lines[0] == f"ledger       {ledger}"
        assert lines[1].startswith(f"device key   {device_key.public_key} (named by the ledger itself")
        assert lines[2] == "entries      32 (seq 0–31), 3 sessions, 1 boot, 0 gaps recorded"
        assert lines[3] == "first        2026-05-06 14:00:00+02:00 (seq 0, boot)"
        assert lines[4] == "last         2026-05-06 14:05:16+02:00 (seq 31, shutdown)"
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
    assert "result       intact up to seq 30; tail truncated" in done.stdout
    assert done.stderr == (f"consentbox-admin: warning: {box_ledger}: tail truncated: "
                           f"{len(data.splitlines()[-1]) + 1 - 30} bytes of a partial entry after seq 30\n")


def test_verify_ledger_reads_a_session_s_extract_with_a_key(box_ledger: Path, card: Path, key_file: Path,
                                                            device_key):
    extract = card / extract_name(RECORDED)
    done = admin("verify-ledger", "-i", str(key_file), str(extract))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [f"extract      {extract}", f"session      {RECORDED}",
                         f"device key   {device_key.public_key} (named by the extract itself: compare it with the "
                         "key recorded when the box was provisioned, or pass --device-key)"]
    assert lines[3] == "boot         2026-05-06 14:00:00+02:00 (seq 0)"
    assert lines[4] == "entries      12 of this session (seq 4–15)"
    assert lines[-1] == "result       intact"
    given = admin("verify-ledger", "-i", str(key_file), "--device-key", device_key.public_key.to_string(),
                  str(extract))
    assert given.returncode == 0 and f"device key   {device_key.public_key}\n" in given.stdout


def test_verify_ledger_refuses_an_extract_it_cannot_read_or_that_is_not_intact(box_ledger: Path, card: Path,
                                                                                identity, key_file: Path,
                                                                                other_identity, tmp_path: Path):
    extract = card / extract_name(RECORDED)
    done = admin("verify-ledger", str(extract))
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "give -i IDENTITY" in done.stderr
    stranger = tmp_path / "stranger.key"
    stranger.write_text(other_identity.to_string() + "\n")
    done = admin("verify-ledger", "-i", str(stranger), str(extract))
    assert done.returncode == 1 and "none of the identities given can decrypt it" in done.stderr
    other = DeviceSigningKey.generate(secret=bytes(range(1, 33))).public_key.to_string()
    done = admin("verify-ledger", "-i", str(key_file), "--device-key", other, str(extract))
    assert done.returncode == 1 and "does not verify with device key" in done.stderr
    renamed = card / extract_name(WITHDRAWN)
    renamed.write_bytes(extract.read_bytes())
    done = admin("verify-ledger", "-i", str(key_file), str(renamed))
    assert done.returncode == 1 and "renamed or swapped" in done.stderr
    rewrite_extract(card, RECORDED, identity, lambda plain: plain.replace(b'"seat":2', b'"seat":3', 1))
    done = admin("verify-ledger", "-i", str(key_file), str(extract))
    assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1
    assert "the lines do not match the trailer's SHA-256" in done.stderr


def test_verify_ledger_errors_are_one_line(tmp_path: Path):
    done = admin("verify-ledger", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "No such file" in done.stderr
    done = admin("verify-ledger", "--device-key", "age1notakey", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 2 and "neither a device key" in done.stderr


# -- consent-report -----------------------------------------------------------------------------------


def test_consent_report_prints_the_timeline_beside_the_manifest_and_they_agree(
    box_ledger: Path, card: Path, identity, key_file: Path, device_key, trusted,
):
    put_sealed_manifest(box_ledger, card, device_key, recorded_manifest(), identity)
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), RECORDED)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    out = done.stdout
    assert out.startswith("ConsentBox consent record\n")
    assert f"Session      {RECORDED}\n" in out and f"Device key   {device_key.public_key} (Room 2)\n" in out
    # The manifest's seal, appended after the morning's entries (seq 32 is the box's next boot).
    assert f"Ledger       {RECORDED}.ledger.age: intact, signed as a whole; 13 entries, seq 4–33, head " in out
    assert "Files        1 checked against the box's seals: each as the box left it\n" in out
    assert f"  {RECORDED}.manifest.age  whole\n" in out
    for row in ("     4  2026-05-06 14:00:12+02:00      0.000  set up for 2 parties",
                "     5  2026-05-06 14:00:13+02:00      1.000  headcount set to 3",
                "     6  2026-05-06 14:00:14+02:00      2.000  consent given at seat 1",
                "     8  2026-05-06 14:00:15+02:00      3.000  refused: consent has begun: the headcount is fixed",
                "    10  2026-05-06 14:00:18+02:00      6.000  recording started",
                "    11  2026-05-06 14:00:58+02:00     46.000  fault: microphone silent (STATUS code 11)",
                "    12  2026-05-06 14:01:03+02:00     51.000  silence over after 25 s: sound came back",
                "    13  2026-05-06 14:01:18+02:00     66.000  recording paused",
                "    15  2026-05-06 14:02:33+02:00    141.000  session ended normally: what was recorded is kept"):
        assert row in out
    assert "DISAGREE" not in out
    assert out.endswith("Result: the ledger and the manifest AGREE.\n")


def test_consent_report_lists_every_disagreement(box_ledger: Path, card: Path, identity, key_file: Path,
                                                 device_key, trusted):
    # A manifest the box sealed, telling another story than the ledger.
    manifest = dataclasses.replace(
        recorded_manifest(), headcount=2, consents=(Consent(1, 2.0), Consent(3, 3.0)),
        intervals=(Interval(6.0, 66.0, 1), Interval(96.0, 120.0, 1)), end_reason=EndReason.MAX_SESSION,
        ended=120.0,
    )
    put_sealed_manifest(box_ledger, card, device_key, manifest, identity)
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), RECORDED)
    assert done.returncode == 1
    disagreeing = [line.split()[0:2] for line in done.stdout.splitlines() if line.endswith("DISAGREE")]
    assert disagreeing == [["headcount", "ledger:"], ["consent", "2"], ["consent", "3"], ["interval", "2"],
                           ["end", "ledger:"]]
    assert ("Result: the ledger and the manifest DISAGREE on 5 points: headcount, consent 2, consent 3, "
            "interval 2, end.") in done.stdout
    assert done.stderr == (f"consentbox-admin: session {RECORDED}: the ledger and the manifest disagree on: "
                           "headcount, consent 2, consent 3, interval 2, end\n")


def test_an_older_extract_put_back_shows_against_the_manifest(box_ledger: Path, card: Path, identity,
                                                               key_file: Path, device_key, trusted):
    put_sealed_manifest(box_ledger, card, device_key, recorded_manifest(), identity)
    # An extract without the session's end, signed by the box, so it verifies alone.
    entries = [entry for entry in verify(box_ledger, session=RECORDED).selected if entry.kind is not Kind.END]
    older = build_extract(device_key, verify(box_ledger).first, entries)
    (card / extract_name(RECORDED)).write_bytes(encrypt_extract(older, [identity.recipient]))
    assert admin("verify-ledger", "-i", str(key_file), str(card / extract_name(RECORDED))).returncode == 0
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), RECORDED)
    assert done.returncode == 1 and "disagree on: interval 2, end" in done.stderr
    assert "(no end entry: the box stopped while the session was open" in done.stdout


def test_a_manifest_the_box_did_not_seal_is_refused_and_not_read(box_ledger: Path, card: Path, identity,
                                                                 key_file: Path, device_key, trusted):
    put_sealed_manifest(box_ledger, card, device_key, recorded_manifest(), identity)
    # One that tells the ledger's story word for word, written by anyone with the supervisor's public key.
    put_manifest(card, recorded_manifest(), identity)
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), RECORDED)
    assert done.returncode == 1
    assert done.stderr == (f"consentbox-admin: session {RECORDED}: refused: {RECORDED}.manifest.age: the manifest "
                           "is not the one the box last wrote: it was replaced or edited\n")
    assert f"Manifest     {RECORDED}.manifest.age is not the box's: not read\n" in done.stdout
    assert done.stdout.endswith(f"Result: the card's files are NOT as the box sealed them: {RECORDED}.manifest.age: "
                                "the manifest is not the one the box last wrote: it was replaced or edited.\n")
    # A segment spliced in beside it is named too.
    (card / f"{RECORDED}.000.wav.age").write_bytes(b"age-encryption.org/v1 spliced")
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), RECORDED)
    assert done.returncode == 1 and done.stderr.startswith(
        f"consentbox-admin: session {RECORDED}: refused: {RECORDED}.000.wav.age: no seal of the box names segment 0")


def test_a_destroyed_session_agrees_when_its_files_are_gone(box_ledger: Path, card: Path, key_file: Path,
                                                            trusted):
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), WITHDRAWN)
    assert done.returncode == 0, done.stdout
    assert "consent withdrawn" in done.stdout and "2 files destroyed (withdrawn; due 2026-06-05)" in done.stdout
    assert "expires on 2026-06-05 (recorded)" in done.stdout
    assert "files        ledger: destroyed" in done.stdout
    (card / f"{WITHDRAWN}.000.wav.age").write_bytes(b"left behind")
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), WITHDRAWN)
    assert done.returncode == 1 and "1 file left" in done.stdout
    assert f"refused: {WITHDRAWN}.000.wav.age: the session was destroyed (its ledger records it" in done.stderr


def test_a_set_up_that_never_recorded_needs_no_files(box_ledger: Path, card: Path, key_file: Path, trusted):
    # (Its extract is on the card only because the test put a file of it there while the box wrote the
    # ledger: a set-up that never reaches the card leaves nothing there, not even its extract.)
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), ABANDONED)
    assert done.returncode == 0, done.stdout
    assert "session ended (consent timeout)" in done.stdout and "nothing recorded" in done.stdout


def test_a_recorded_session_without_its_manifest_disagrees(box_ledger: Path, card: Path, key_file: Path, trusted):
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), RECORDED)
    assert done.returncode == 1 and "NO MANIFEST" in done.stdout


def test_consent_report_refuses_an_extract_that_is_not_intact(box_ledger: Path, card: Path, identity,
                                                               key_file: Path, device_key, trusted):
    put_sealed_manifest(box_ledger, card, device_key, recorded_manifest(), identity)
    rewrite_extract(card, RECORDED, identity, lambda plain: plain.replace(b'"headcount":3', b'"headcount":2', 1))
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), RECORDED)
    assert done.returncode == 1 and done.stdout == ""
    assert "the lines do not match the trailer's SHA-256" in done.stderr and done.stderr.count("\n") == 1
    # The withdrawal erased: its lines cut from the extract.
    rewrite_extract(card, WITHDRAWN, identity,
                    lambda plain: b"".join(line for line in plain.splitlines(keepends=True)
                                           if b'"withdrawal"' not in line))
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), WITHDRAWN)
    assert done.returncode == 1 and "a line was removed or added" in done.stderr


def test_consent_report_checks_the_extract_with_the_device_key_given(box_ledger: Path, card: Path, identity,
                                                                     key_file: Path, device_key, tmp_path):
    put_sealed_manifest(box_ledger, card, device_key, recorded_manifest(), identity)
    other = DeviceSigningKey.generate(secret=bytes(range(1, 33))).public_key.to_string()
    done = admin("consent-report", "-i", str(key_file), "--device-key", other, str(card), RECORDED)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"consentbox-admin: card from another box: device key {device_key.public_key} is not the "
                           f"key given with --device-key ({other})\n")
    done = admin("consent-report", "-i", str(key_file), "--device-key", device_key.public_key.to_string(), str(card),
                 RECORDED)
    assert done.returncode == 0, done.stderr
    # Without --device-key, only the trusted boxes: none here.
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(tmp_path / "no-boxes"), str(card), RECORDED)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"consentbox-admin: card from an unknown box: device key {device_key.public_key} "
                                  f"is not in {tmp_path / 'no-boxes'}; check it with IT, then `consentbox-admin "
                                  f"trust-box {device_key.public_key} LABEL --boxes {tmp_path / 'no-boxes'}`")


@pytest.mark.parametrize(("session", "message"), [
    ("1111111111111111", "no ledger extract of session 1111111111111111 on the card"),
    ("Alice", "'Alice' is not a session id"),
])
def test_consent_report_for_an_unknown_session(box_ledger: Path, card: Path, key_file: Path, session, message,
                                               trusted):
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), session)
    assert done.returncode == 1 and message in done.stderr and done.stderr.count("\n") == 1


def test_consent_report_without_the_session_s_extract_on_the_card(card: Path, key_file: Path, trusted):
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), RECORDED)
    assert done.returncode == 1 and f"no ledger extract of session {RECORDED} on the card" in done.stderr


def test_a_session_interrupted_by_a_power_cut(tmp_path: Path, card: Path, identity, key_file: Path, device_key,
                                              trusted):
    # The box lost power while recording; at its next start it marked the session interrupted (the card's
    # recovery estimated the last interval's end from the audio on the card).
    box = tmp_path / "box-ledger.jsonl"
    clocks = SteppingClocks()
    put_manifest(card, recorded_manifest(), identity)  # the session's files are on the card (rewritten below)
    ledger = open_ledger(box, card, device_key, clocks, readers=[identity.recipient])
    clocks.advance(12)
    ledger.append(Kind.SETUP, RECORDED, headcount=1, policy_sha256=POLICY_SHA256)
    clocks.advance(2)
    ledger.append(Kind.CONSENT, RECORDED, seat=1)
    clocks.advance(4)
    ledger.append(Kind.START, RECORDED)
    ledger.close(shutdown=False)  # the power cut
    # The next start: recovery writes the final manifest, seals it, and records the end.
    manifest = dataclasses.replace(
        recorded_manifest(), headcount=1, consents=(Consent(1, 2.0),), intervals=(Interval(6.0, 50.25, 1),),
        end_reason=EndReason.INTERRUPTED, ended=50.25)
    seal = put_manifest(card, manifest, identity)
    restarted = SteppingClocks(epoch=EPOCH + timedelta(minutes=30))
    with open_ledger(box, card, device_key, restarted, readers=[identity.recipient]) as ledger:
        ledger.append(Kind.SEAL, RECORDED, **dataclasses.asdict(seal))
        ledger.append(Kind.END, RECORDED, reason=EndReason.INTERRUPTED, kept=True)
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(trusted), str(card), RECORDED)
    assert done.returncode == 0, done.stdout
    assert "after a restart  session ended (interrupted): what was recorded is kept" in done.stdout
    report = {line.split()[0]: line for line in done.stdout.splitlines() if line.endswith("agree")}
    assert "6.000–open s" in report["interval"] and "interrupted (after a restart)" in report["end"]


def test_help_lists_the_ledger_commands():
    done = admin("--help")
    assert "verify-ledger" in done.stdout and "consent-report" in done.stdout
    for command in ("verify-ledger", "consent-report"):
        assert admin(command, "--help").returncode == 0
