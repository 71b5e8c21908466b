"""Start-up recovery: sessions a crash left open are ended as `interrupted`, from the journal alone.

Each test abandons a SessionFiles the way a power cut does (no stop, no finalise), then runs recovery
as the box does at start: with the card, the journal and the recipients, and no private key.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
from pathlib import Path

import pytest

from consentbox.admin.export import export_session, read_manifest
from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason, Problem
from consentbox.crypto import AgeReader
from consentbox.hw.card import CardDirectory
from consentbox.recording.journal import Journal, JournalError
from consentbox.recording.manifest import Manifest
from consentbox.recording.recovery import Recovered, recover_interrupted
from consentbox.recording.session import SessionFiles, session_files
from consentbox.recording.wav import HEADER_SIZE
from consentbox.storage.ids import new_session_id
from tests.support.replaced import replace_target, unlink_target

SMALL = Policy(segment_bytes=1 << 20)  # a new segment every ~10.9 s of audio
RATE = SMALL.rate
PERIOD = SMALL.period_frames
CHUNK_FRAMES = 64 * 1024 // SMALL.frame_bytes


def _record(card: Path, journal, identity, started, pcm, seconds: list[float]) -> tuple[SessionFiles, bytes]:
    """A session with one interval per entry of `seconds`, the last left open: the power goes then."""
    files = SessionFiles.create(card, new_session_id(), [identity.recipient], SMALL, headcount=2,
                                consents=[(1, 2.0), (2, 3.0)], started=started, journal=journal)
    offset, audio = 5.0, b""
    for number, length in enumerate(seconds):
        frames = round(length * RATE)
        interval = pcm(SMALL, frames, 0)
        files.start_interval(offset)
        for at in range(0, frames, PERIOD):
            files.write(interval[at * 2:(at + PERIOD) * 2])
        offset += length
        if number < len(seconds) - 1:
            files.stop_interval(offset, frames)
            offset += 4.0
        audio += interval
    return files, audio


def _recover(card: Path, journal, identity) -> list[Recovered]:
    return recover_interrupted(CardDirectory(card, SMALL), journal, [identity.recipient])


def _card_manifest(card: Path, files: SessionFiles, identity) -> Manifest:
    return read_manifest(card / f"{files.session}.manifest.age", [identity])


def _export(card: Path, files: SessionFiles, identity):
    out = io.BytesIO()
    report = export_session(card, _card_manifest(card, files, identity), [identity], out)
    return report, out.getvalue()[HEADER_SIZE:]


def test_an_interrupted_session_is_ended_as_interrupted_without_reading_the_card(
        card, journal, identity, started, pcm, monkeypatch):
    files, audio = _record(card, journal, identity, started, pcm, [4.0, 14.0])  # the second rotates
    before = _card_manifest(card, files, identity)
    opened = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(path, mode="r", *args, **kwargs):
        opened.append((Path(path).name, mode))
        return real_open(path, mode, *args, **kwargs)

    def spy_os_open(path, flags, *args, **kwargs):
        opened.append((Path(path).name, "w" if flags & (os.O_WRONLY | os.O_RDWR) else "r"))
        return real_os_open(path, flags, *args, **kwargs)

    def no_decrypting(*args, **kwargs):
        raise AssertionError("recovery decrypted a file")

    with monkeypatch.context() as patch:
        patch.setattr(builtins, "open", spy_open)
        patch.setattr(os, "open", spy_os_open)
        patch.setattr(AgeReader, "__init__", no_decrypting)
        recovered = _recover(card, journal, identity)

    assert recovered == [Recovered(files.session, 3, EndReason.INTERRUPTED, destroyed=False)]
    assert not [name for name, mode in opened if name.endswith(".manifest.age") and "r" in mode]
    # Read: the open segment's public header (to count its sealed chunks), directories, to sync them, and
    # the journal's key for the session (its entry is the box's own, decrypted with it).
    assert {name for name, mode in opened if "r" in mode} <= {f"{files.session}.002.wav.age", card.name,
                                                              journal.directory.name, f"{files.session}.key"}

    manifest = _card_manifest(card, files, identity)
    assert (manifest.end_reason, manifest.withdrawn) == (EndReason.INTERRUPTED, False)
    assert manifest.consents == before.consents and manifest.headcount == 2
    assert [s.name for s in manifest.segments] == sorted(p.name for p in card.glob("*.wav.age"))
    assert manifest.segments[:2] == before.segments[:2]  # the closed ones keep their digests
    first, last = manifest.intervals
    assert first == before.intervals[0] and manifest.ended == last.end
    report, exported = _export(card, files, identity)
    # The open interval is closed with the frames of its sealed chunks: exactly what the export recovers.
    assert last.frames == report.frames - first.frames
    assert last.end == pytest.approx(last.start + last.frames / RATE)
    assert 14 * RATE - CHUNK_FRAMES <= last.frames <= 14 * RATE
    assert report.truncated and any("marked it interrupted" in note for note in report.notes())
    assert audio.startswith(exported) and len(audio) - len(exported) <= 64 * 1024
    assert journal.pending() == []


def test_recovery_is_idempotent(card, journal, identity, started, pcm):
    _record(card, journal, identity, started, pcm, [3.0])
    assert len(_recover(card, journal, identity)) == 1
    after = {path.name: path.read_bytes() for path in card.iterdir()}
    assert _recover(card, journal, identity) == []
    assert {path.name: path.read_bytes() for path in card.iterdir()} == after


def test_a_segment_begun_just_before_the_crash_is_listed(card, journal, identity, started, pcm):
    files, audio = _record(card, journal, identity, started, pcm, [3.0])
    entry = journal.directory / f"{files.session}.json"
    knows_one_segment = entry.read_bytes()
    for at in range(3 * RATE, 14 * RATE, PERIOD):  # on past a rotation
        files.write(pcm(SMALL, PERIOD, at))
    entry.write_bytes(knows_one_segment)  # as if the box stopped as the second segment's file appeared

    assert _recover(card, journal, identity) == [Recovered(files.session, 2, EndReason.INTERRUPTED, False)]
    manifest = _card_manifest(card, files, identity)
    assert [(s.name[-11:], s.interval, s.closed) for s in manifest.segments] == [
        ("000.wav.age", 0, False), ("001.wav.age", 0, False)]
    report, exported = _export(card, files, identity)
    assert [s.listed for s in report.segments] == [True, True] and report.segments[0].complete
    # Sizes count whole chunks only: the first segment's short final chunk is not counted.
    assert report.frames - CHUNK_FRAMES <= manifest.intervals[0].frames <= report.frames
    assert report.truncated and pcm(SMALL, 14 * RATE, 0).startswith(exported)


def test_a_session_paused_when_the_box_stopped_ends_at_its_last_interval(card, journal, identity, started, pcm):
    files, _ = _record(card, journal, identity, started, pcm, [2.0, 1.0])
    files.stop_interval(12.0, RATE)  # paused, everything sealed: then the power goes
    _recover(card, journal, identity)
    manifest = _card_manifest(card, files, identity)
    assert manifest.intervals[-1].frames == RATE and manifest.ended == 12.0
    report, _ = _export(card, files, identity)
    assert all(s.complete and s.digest == "verified" for s in report.segments)
    assert report.truncated  # interrupted: the session itself was cut short


def test_a_session_stopped_before_capture_opened_ends_at_its_last_consent(card, journal, identity, started):
    files = SessionFiles.create(card, new_session_id(), [identity.recipient], SMALL, headcount=2,
                                consents=[(1, 2.0), (2, 3.5)], started=started, journal=journal)
    assert _recover(card, journal, identity) == [Recovered(files.session, 0, EndReason.INTERRUPTED, False)]
    manifest = _card_manifest(card, files, identity)
    assert (manifest.intervals, manifest.segments, manifest.ended) == ((), (), 3.5)


def test_without_a_card_entries_wait_and_with_another_card_they_are_dropped(card, journal, identity, started,
                                                                            pcm, tmp_path):
    files, _ = _record(card, journal, identity, started, pcm, [1.0])
    away = tmp_path / "in the supervisor's drawer"
    card.rename(away)
    assert _recover(card, journal, identity) == [] and len(journal.pending()) == 1

    card.mkdir()  # another card: nothing of the session is on it
    assert _recover(card, journal, identity) == [] and journal.pending() == []
    assert list(card.iterdir()) == []
    assert _card_manifest(away, files, identity).end_reason is None  # the first card is left as it was


class WrongFormatCard:
    """The card as the box sees one mounted with a file system it was not set up for (ext4, NTFS)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def problems(self) -> frozenset[Problem]:
        return frozenset({Problem.CARD_WRONG_FORMAT})


def test_with_a_card_of_the_wrong_format_entries_wait_and_the_card_is_untouched(card, journal, identity, started,
                                                                                pcm):
    files, _ = _record(card, journal, identity, started, pcm, [1.0])
    before = {path.name: path.read_bytes() for path in card.iterdir()}
    assert recover_interrupted(WrongFormatCard(card), journal, [identity.recipient]) == []
    assert len(journal.pending()) == 1 and {path.name: path.read_bytes() for path in card.iterdir()} == before
    [recovered] = _recover(card, journal, identity)  # the card taken as it is: the session is ended now
    assert recovered.session == files.session and journal.pending() == []


def test_a_destruction_cut_short_is_finished(card, journal, identity, started, pcm):
    keep, _ = _record(card, journal, identity, started, pcm, [1.0])
    keep.finalise(EndReason.ENDED, 7.0, withdrawn=False)
    kept = sorted(p.name for p in card.iterdir())
    files, _ = _record(card, journal, identity, started, pcm, [12.0])
    journal.save(files.manifest(), destroy=True)  # destroy() began: the power went after one unlink
    (card / f"{files.session}.000.wav.age").unlink()

    left = len(session_files(card, files.session))  # the manifest: the segment went before the power
    assert _recover(card, journal, identity) == [Recovered(files.session, 0, EndReason.WITHDRAWN, True,
                                                           destroyed_files=left, expires=files.manifest().expires)]
    assert sorted(p.name for p in card.iterdir()) == kept
    assert journal.pending() == []


def test_a_final_manifest_the_card_could_not_take_is_written_when_it_can(card, journal, identity, started, pcm,
                                                                         monkeypatch):
    files, audio = _record(card, journal, identity, started, pcm, [2.0])
    files.stop_interval(7.0, 2 * RATE)
    real_replace = os.replace

    def card_refuses(source, target, **directories):
        if replace_target(target, **directories).parent.resolve() == card.resolve():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        real_replace(source, target, **directories)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", card_refuses)
        with pytest.raises(OSError, match="read-only"):
            files.finalise(EndReason.ENDED, 8.0, withdrawn=False)
        assert _recover(card, journal, identity) == []  # still read-only: the entry waits
    assert _card_manifest(card, files, identity).end_reason is None

    assert _recover(card, journal, identity) == [Recovered(files.session, 1, EndReason.ENDED, False)]
    assert _card_manifest(card, files, identity) == files.manifest()  # the box's own final version
    report, exported = _export(card, files, identity)
    assert not report.truncated and exported == audio


def test_an_unprovisioned_box_keeps_its_entries(card, journal, identity, started, pcm):
    _record(card, journal, identity, started, pcm, [1.0])
    assert recover_interrupted(CardDirectory(card, SMALL), journal, []) == []
    assert len(journal.pending()) == 1


def test_a_crash_that_left_only_a_half_written_first_manifest_is_tidied(card, journal, identity, started, pcm):
    files, _ = _record(card, journal, identity, started, pcm, [1.0])
    manifest = card / f"{files.session}.manifest.age"
    shutil.move(manifest, card / f".{manifest.name}.tmp")
    for segment in card.glob("*.wav.age"):
        segment.unlink()  # as if the box stopped while writing the first manifest

    assert _recover(card, journal, identity)[0].end_reason is EndReason.INTERRUPTED
    assert sorted(p.name for p in card.iterdir()) == [manifest.name]


def test_a_destruction_the_journal_could_not_mark_is_never_recovered_as_interrupted(card, tmp_path, identity,
                                                                                   started, pcm, monkeypatch):
    failures: list[JournalError] = []
    journal = Journal(tmp_path / "state", on_failure=failures.append)
    files, _ = _record(card, journal, identity, started, pcm, [2.0])
    real_replace = os.replace

    def box_storage_full(source, target, **directories):
        if replace_target(target, **directories).parent.resolve() == journal.directory.resolve():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(source, target, **directories)

    real_unlink = os.unlink

    def power_cut_at_the_card(path, *args, **kwargs):
        if unlink_target(path, **kwargs).parent.resolve() == card.resolve():  # before the first file goes
            raise SystemExit("the power went")
        real_unlink(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", box_storage_full)
        patch.setattr(os, "unlink", power_cut_at_the_card)
        with pytest.raises(SystemExit):
            files.destroy()
    assert len(failures) == 1 and journal.pending() == []
    assert _recover(card, journal, identity) == []  # what is left is not passed off as a recording
