"""`consentbox-admin export`, run as a supervisor runs it: the installed command on a card the box wrote,
from a box this workstation trusts (the attacks on that trust are in tests/admin/test_evidence.py)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pty
import random
import struct
import subprocess
import sys
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentbox.admin.boxes import accepted_boxes
from consentbox.admin.evidence import verify_session
from consentbox.admin.export import ExportError, export_session
from consentbox.core.policy import Policy, SampleFormat
from consentbox.core.reasons import EndReason
from consentbox.crypto import X25519Identity, identity_file_text
from consentbox.crypto.format import read_header
from consentbox.ledger import Kind
from consentbox.recording import session as session_module
from consentbox.recording.journal import Journal
from consentbox.recording.manifest import policy_digest
from consentbox.recording.session import SessionFiles
from consentbox.recording.wav import ARECORD_DATA_SIZE, HEADER_SIZE, streaming_header
from consentbox.storage.ids import new_session_id
from tests.support.sealed import SealingBox

ADMIN = str(Path(sys.executable).parent / "consentbox-admin")
SMALL = Policy(segment_bytes=1 << 20)  # 48 kHz 16-bit mono: a new segment every ~11 s of audio
STARTED = datetime(2026, 5, 6, 14, 0, tzinfo=UTC)
PERIOD = 1024
CHUNK = 64 * 1024
SEALED = CHUNK + 16  # a chunk and its tag


def record(card: Path, identity: X25519Identity, journal: Journal, seconds: list[float], *, box: SealingBox,
           policy: Policy = SMALL, end: EndReason | None = EndReason.ENDED, seed: int = 1,
           ) -> tuple[SessionFiles, bytes]:
    """A session with one capture interval per entry of `seconds`, its events and seals signed into `box`'s
    ledger as the box signs them; returns its files and all its audio."""
    session = new_session_id()
    box.record(Kind.SETUP, session, headcount=2, policy_sha256=policy_digest(policy))
    box.record(Kind.CONSENT, session, seat=1)
    box.record(Kind.CONSENT, session, seat=2)
    files = SessionFiles.create(card, session, [identity.recipient], policy, headcount=2,
                                consents=[(1, 2.0), (2, 3.0)], started=STARTED, journal=journal,
                                on_seal=box.on_seal(session))
    source = random.Random(seed)
    audio = b""
    offset = 10.0
    for number, length in enumerate(seconds):
        frames = round(length * policy.rate)
        interval = source.randbytes(frames * policy.frame_bytes)
        box.record(Kind.RESUME if number else Kind.START, session)
        files.start_interval(offset)
        step = PERIOD * policy.frame_bytes
        for at in range(0, len(interval), step):
            files.write(interval[at:at + step])
        offset += length
        if end is not None:
            box.record(Kind.PAUSE, session)
            files.stop_interval(offset, frames)
        offset += 5.0
        audio += interval
    if end is not None:
        box.record(Kind.END, session, reason=end, kept=True)  # before the final manifest, as the box does
        files.finalise(end, offset, withdrawn=end is EndReason.WITHDRAWN)
    return files, audio


def line(files: SessionFiles, length: str, end: str = "ended") -> str:
    """The line export prints for a session it exported whole."""
    return f"{files.session}: recorded 2026-05-06T14:00+00:00, {length} exported, end: {end}"


def export(key_file: Path, out: Path, card: Path, *options: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ADMIN, "export", "-i", key_file, "--out", out, *options, card],
                          capture_output=True, text=True, check=False)


def exported_audio(out: Path, session: str, policy: Policy = SMALL) -> bytes:
    with wave.open(str(out / f"{session}.wav")) as opened:
        assert (opened.getframerate(), opened.getnchannels(), opened.getsampwidth()) == (
            policy.rate, policy.channels, policy.sample_format.bytes_per_sample)
        return opened.readframes(opened.getnframes())


def report_of(out: Path, session: str) -> dict:
    return json.loads((out / f"{session}.json").read_text())


def test_export_writes_one_wav_and_one_report_per_session(journal, card, identity, key_file, tmp_path, age_cli,
                                                          box_ledger, trusted_boxes):
    first, first_audio = record(card, identity, journal, [14.0, 3.5], box=box_ledger)
    second, second_audio = record(card, identity, journal, [2.0], policy=Policy(rate=16_000, channels=2,
                                  sample_format=SampleFormat.S32_LE), seed=2, box=box_ledger)
    out = tmp_path / "out"
    done = export(key_file, out, card, "--boxes", trusted_boxes)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert sorted(lines) == sorted([line(first, "0:00:18"), line(second, "0:00:02")])
    assert exported_audio(out, first.session) == first_audio
    assert exported_audio(out, second.session, Policy(rate=16_000, channels=2,
                                                      sample_format=SampleFormat.S32_LE)) == second_audio
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{s.session}.{ext}" for s in (first, second) for ext in ("wav", "json"))
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in out.iterdir())
    assert oct(out.stat().st_mode & 0o777) == "0o700"  # recordings in the clear: the supervisor's alone

    found = report_of(out, first.session)
    assert found["session"] == first.session and found["end_reason"] == "ended"
    assert [i["frames"] for i in found["intervals"]] == [14 * 48_000, 168_000]
    assert found["export"]["frames"] == len(first_audio) // 2 and not found["export"]["truncated"]
    assert found["export"]["verified"] and found["export"]["box"] == {"label": "Room 1",
                                                                      "device_key": str(box_ledger.key.public_key)}
    assert {s["digest"] for s in found["export"]["segments"]} == {"verified"}
    assert {s["seal"]["verdict"] for s in found["export"]["segments"]} == {"whole"}
    assert len(found["export"]["segments"]) == 3  # 14 s rotates once; the second interval has its own

    for segment in card.glob("*.wav.age"):  # and every file on the card opens with age itself
        plain = subprocess.run([age_cli, "-d", "-i", str(key_file), str(segment)], capture_output=True,
                               check=True).stdout
        assert plain.startswith(b"RIFF$\xf0\xff\x7fWAVE")  # sox's unknown length (docs/formats.md, "Segments")


def test_segments_of_older_firmware_with_arecord_s_header_export_alike(journal, card, identity, key_file, tmp_path,
                                                                       box_ledger, trusted_boxes, monkeypatch, age_cli):
    def arecord_header(pcm) -> bytes:  # what segments began with before issue 19
        header = bytearray(streaming_header(pcm))
        struct.pack_into("<I", header, 4, ARECORD_DATA_SIZE + 36)
        struct.pack_into("<I", header, 40, ARECORD_DATA_SIZE)
        return bytes(header)

    monkeypatch.setattr(session_module, "streaming_header", arecord_header)
    files, audio = record(card, identity, journal, [3.0], box=box_ledger)
    (segment,) = card.glob("*.wav.age")
    plain = subprocess.run([age_cli, "-d", "-i", str(key_file), str(segment)], capture_output=True, check=True).stdout
    assert plain.startswith(arecord_header(SMALL))
    out = tmp_path / "out"
    done = export(key_file, out, card, "--boxes", trusted_boxes)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [line(files, "0:00:03")]
    assert exported_audio(out, files.session) == audio


def test_a_crash_exports_what_was_sealed_and_says_truncated(journal, card, identity, key_file, tmp_path, box_ledger,
                                                           trusted_boxes):
    # The power went while recording.
    files, audio = record(card, identity, journal, [15.0], end=None, box=box_ledger)
    out = tmp_path / "out"
    done = export(key_file, out, card, "--boxes", trusted_boxes)
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith(f"{files.session}: recorded 2026-05-06T14:00+00:00, 0:00:1") \
        and "end: not recorded, TRUNCATED" in done.stderr
    assert done.stderr.count("\n") == 1
    # Segment 0 was sealed when it filled; segment 1, 4 s old, only as far as its header: not a frame of it.
    first = files.manifest().segments[0].plaintext_bytes - HEADER_SIZE
    assert exported_audio(out, files.session) == audio[:first]
    found = report_of(out, files.session)["export"]
    assert found["truncated"] and found["frames"] * 2 == first
    assert [s["seal"] for s in found["segments"]] == [
        {"verdict": "whole", "bytes": (card / f"{files.session}.000.wav.age").stat().st_size, "frames": first // 2},
        {"verdict": "prefix", "bytes": _payload_start(card / f"{files.session}.001.wav.age"), "frames": 0}]
    assert any("never finalised" in note and "put the card back in the box" in note for note in found["notes"])

    # Unverified, everything that authenticates, as before seals.
    unverified = export(key_file, tmp_path / "unverified", card, "--unverified")
    assert unverified.returncode == 3 and "UNVERIFIED" in unverified.stderr
    salvaged = exported_audio(tmp_path / "unverified", files.session)
    assert audio.startswith(salvaged) and len(audio) - len(salvaged) < 64 * 1024


def test_a_missing_segment_refuses_the_session_unless_unverified(journal, card, identity, key_file, tmp_path,
                                                                   box_ledger, trusted_boxes):
    files, audio = record(card, identity, journal, [25.0], box=box_ledger)
    middle = card / f"{files.session}.001.wav.age"
    middle.unlink()
    refused = export(key_file, tmp_path / "refused", card, "--boxes", trusted_boxes)
    assert (refused.returncode, refused.stderr) == (1, f"{files.session}: not exported: refused: {middle.name}: "
                                                       "segment 1 is missing from the card\n")
    assert list((tmp_path / "refused").iterdir()) == []
    out = tmp_path / "out"
    done = export(key_file, out, card, "--unverified")
    assert done.returncode == 3 and "missing" in done.stderr
    segments = report_of(out, files.session)["export"]["segments"]
    assert [s["digest"] for s in segments] == ["verified", "missing", "verified"]
    kept, lost = (segment.plaintext_bytes - 44 for segment in files.manifest().segments[:2])
    assert exported_audio(out, files.session) == audio[:kept] + audio[kept + lost:]


def test_a_replaced_segment_fails_that_session_only(journal, card, identity, key_file, tmp_path, box_ledger,
                                                    trusted_boxes):
    edited, _ = record(card, identity, journal, [25.0], box=box_ledger)
    intact, intact_audio = record(card, identity, journal, [1.0], seed=3, box=box_ledger)
    first, second = (card / f"{edited.session}.00{n}.wav.age" for n in (0, 1))
    first_bytes = first.read_bytes()
    first.write_bytes(second.read_bytes())  # complete and authentic, but not the segment recorded here
    second.write_bytes(first_bytes)
    out = tmp_path / "out"
    done = export(key_file, out, card, "--boxes", trusted_boxes)
    assert done.returncode == 1
    assert f"{edited.session}: not exported: refused: {edited.session}.000.wav.age: its first " in done.stderr
    assert "bytes are not what the box sealed as segment 0" in done.stderr
    # Unverified, the manifest's digests still catch a whole segment swapped within its session.
    unverified = export(key_file, tmp_path / "unverified", card, "--unverified")
    assert unverified.returncode == 1
    assert f"{edited.session}: not exported: segment {edited.session}.000.wav.age does not " \
           "match the size and SHA-256 in its manifest" in unverified.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{intact.session}.json", f"{intact.session}.wav"]
    assert exported_audio(out, intact.session) == intact_audio


def test_a_wrong_key_fails_in_one_line_per_session_and_writes_nothing(journal, card, identity, tmp_path,
                                                                        box_ledger, trusted_boxes):
    files, _ = record(card, identity, journal, [1.0], box=box_ledger)
    stranger = tmp_path / "stranger.key"
    stranger.write_text(identity_file_text(X25519Identity.generate(), STARTED))
    out = tmp_path / "out"
    done = export(stranger, out, card, "--boxes", trusted_boxes)
    assert done.returncode == 1
    assert done.stderr == (f"{files.session}: not exported: {card / files.session}.ledger.age: none of the "
                           "identities given can decrypt it: give a supervisor's or an auditor's key with -i\n")
    assert list(out.iterdir()) == []
    unverified = export(stranger, out, card, "--unverified")
    assert unverified.stderr.splitlines()[1:] == [
        f"{files.session}: not exported: none of the 1 given identities can decrypt this file: it was encrypted to "
        "other keys"]
    assert list(out.iterdir()) == []


def test_an_unreadable_card_is_one_line(key_file, tmp_path):
    done = export(key_file, tmp_path / "out", tmp_path / "no-card")
    assert done.returncode == 1
    assert done.stderr == (f"consentbox-admin: cannot read the card at {tmp_path / 'no-card'}: "
                           "No such file or directory\n")


def test_an_empty_card_exports_nothing(card, key_file, tmp_path):
    done = export(key_file, tmp_path / "out", card)
    assert done.returncode == 0 and "no sessions" in done.stderr


def test_progress_bar_only_on_a_terminal(journal, card, identity, key_file, tmp_path, box_ledger, trusted_boxes):
    files, _ = record(card, identity, journal, [12.0], box=box_ledger)
    assert "\r" not in export(key_file, tmp_path / "piped", card, "--boxes", trusted_boxes).stderr
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run([ADMIN, "export", "-i", key_file, "--out", tmp_path / "tty", "--boxes", trusted_boxes,
                               card], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal, check=False)
        os.close(terminal)
        shown = b""
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:  # the terminal's other end is closed: everything has been read
                break
            if not data:
                break
            shown += data
    finally:
        os.close(controller)
    assert done.returncode == 0
    assert b"100%" in shown and line(files, "0:00:12").encode() in shown


def test_help_names_the_exit_statuses():
    done = subprocess.run([ADMIN, "export", "--help"], capture_output=True, text=True, check=True)
    assert "usage: consentbox-admin export" in done.stdout
    assert "3 when any was truncated" in " ".join(done.stdout.split())


def _payload_start(path: Path) -> int:
    """Where the first chunk of an age file begins: after its header and its 16-byte nonce."""
    with open(path, "rb") as src:
        read_header(src)
        return src.tell() + 16


def test_a_torn_segment_exports_exactly_its_authenticated_prefix(journal, card, identity, key_file, tmp_path,
                                                                   box_ledger, trusted_boxes):
    files, audio = record(card, identity, journal, [25.0], box=box_ledger)  # three segments
    manifest = files.manifest()
    lengths = [segment.plaintext_bytes - HEADER_SIZE for segment in manifest.segments]
    starts = [sum(lengths[:index]) for index in range(len(lengths))]
    draw = random.Random(11)
    for index, segment in enumerate(manifest.segments):
        path = card / segment.name
        whole = path.read_bytes()
        payload = _payload_start(path)
        chunks = -(-(len(whole) - payload) // SEALED)
        # Every chunk boundary, a random place inside every chunk, and inside the header and the nonce.
        cuts = [payload + n * SEALED for n in range(chunks)]
        cuts += [payload + n * SEALED + draw.randrange(1, min(SEALED, len(whole) - payload - n * SEALED))
                 for n in range(chunks)]
        cuts += [draw.randrange(1, payload - 16), payload - 8]
        last_chunk = payload + (chunks - 1) * SEALED
        flips = [last_chunk, draw.randrange(last_chunk, len(whole)), len(whole) - 1]  # data and tag
        # Each damaged file, and how many whole chunks authenticate before the damage.
        damaged = [(whole[:cut], max(0, cut - payload) // SEALED) for cut in cuts]
        damaged += [(whole[:at] + bytes([whole[at] ^ 0x20]) + whole[at + 1:], chunks - 1) for at in flips]
        for data, authentic in damaged:
            path.write_bytes(data)
            out = io.BytesIO()
            report = export_session(card, manifest, [identity], out)
            kept = max(0, authentic * CHUNK - HEADER_SIZE)
            before, own = audio[:starts[index]], audio[starts[index]:starts[index] + lengths[index]]
            after = audio[starts[index] + lengths[index]:]
            assert out.getvalue()[HEADER_SIZE:] == before + own[:kept] + after, (index, len(data))
            assert report.truncated and not report.segments[index].complete
            assert [s.complete for s in report.segments].count(False) == 1
        path.write_bytes(whole)

    # The supervisor's command refuses the session: the box sealed the middle segment whole, and it is cut.
    middle = card / manifest.segments[1].name
    size = middle.stat().st_size
    middle.write_bytes(middle.read_bytes()[:_payload_start(middle) + 5 * SEALED + 1000])
    refused = export(key_file, tmp_path / "refused", card, "--boxes", trusted_boxes)
    assert refused.returncode == 1
    assert refused.stderr == (f"{files.session}: not exported: refused: {middle.name}: shorter than the box sealed "
                              f"it ({middle.stat().st_size} bytes, sealed {size}): it was cut\n")
    # Unverified, it says what it salvaged: the torn middle segment, and the session truncated.
    out = tmp_path / "out"
    done = export(key_file, out, card, "--unverified")
    assert done.returncode == 3 and "TRUNCATED" in done.stderr and "UNVERIFIED" in done.stderr
    found = report_of(out, files.session)["export"]
    assert found["truncated"] and [s["complete"] for s in found["segments"]] == [True, False, True]
    assert exported_audio(out, files.session) == audio[:lengths[0] + 5 * CHUNK - HEADER_SIZE] + audio[
        lengths[0] + lengths[1]:]


@pytest.mark.parametrize(("change", "words"), [(+1, "shorter than signed"), (-1, "longer than signed")])
def test_audio_of_other_length_than_the_sealed_frames_is_refused(journal, card, identity, box_ledger, trusted_boxes,
                                                                change, words):
    """The frames a seal counts are the box's word for the audio in its bytes: an export that would deliver
    one frame more or less than that (a box that counted wrong, a reader that decodes wrong) is refused."""
    files, _ = record(card, identity, journal, [3.0], box=box_ledger)
    evidence = verify_session(card, files.session, [identity], accepted_boxes(None, trusted_boxes))
    [segment] = [found for found in evidence.files if found.segment == 0]
    assert segment.seal is not None
    miscounted = dataclasses.replace(segment, seal=dataclasses.replace(segment.seal, frames=segment.frames + change))
    evidence = dataclasses.replace(evidence, files=tuple(miscounted if found is segment else found
                                                         for found in evidence.files))
    with pytest.raises(ExportError, match=f"^segment {segment.name} holds {segment.frames} frames of audio, the box "
                                          f"sealed {segment.frames + change}: {words}$"):
        export_session(card, files.manifest(), [identity], io.BytesIO(), evidence=evidence)
