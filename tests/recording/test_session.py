"""SessionFiles on a real directory: segments and manifests that `age -d` opens, and nothing in the clear."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from consentbox.admin.export import export_session, read_manifest
from consentbox.core.policy import Policy, SampleFormat
from consentbox.core.reasons import EndReason
from consentbox.hw.errors import CardFull, CardLost, CardWriteError
from consentbox.recording import session as session_module
from consentbox.recording.manifest import Manifest, extract_name
from consentbox.recording.session import SessionFiles, SessionFilesError, card_error
from consentbox.recording.wav import HEADER_SIZE, streaming_header
from consentbox.storage.file_system_sync import sync_file_system
from consentbox.storage.file_times import FIXED_TIME
from consentbox.storage.ids import new_session_id
from tests.support.buffers import held_buffers, holding_anything
from tests.support.cards import small_card
from tests.support.replaced import replace_target

CHUNK = 64 * 1024
SMALL = Policy(segment_bytes=1 << 20)
PERIOD = 1024  # frames per write, as ALSA hands them over


def _start(card: Path, identity, started, journal, policy: Policy = SMALL, **kwargs) -> SessionFiles:
    return SessionFiles.create(card, new_session_id(), [identity.recipient], policy, headcount=2,
                               consents=[(1, 4.0), (2, 6.5)], started=started, journal=journal, **kwargs)


def _feed(files: SessionFiles, audio: bytes, policy: Policy = SMALL) -> None:
    step = PERIOD * policy.frame_bytes
    for at in range(0, len(audio), step):
        files.write(audio[at:at + step])


def _age_d(age_cli: str, key_file: Path, path: Path) -> bytes:
    done = subprocess.run([age_cli, "-d", "-i", str(key_file), str(path)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _card_manifest(files: SessionFiles, identity) -> Manifest:
    return read_manifest(files.card / f"{files.session}.manifest.age", [identity])


def _segments(card: Path) -> list[Path]:
    return sorted(card.glob("*.wav.age"))


def test_create_writes_only_a_manifest_named_by_a_random_id(journal, card, identity, started, age_cli, key_file):
    files = _start(card, identity, started, journal)
    other = _start(card, identity, started, journal)
    assert files.session != other.session and len(files.session) == 16 and int(files.session, 16) >= 0
    assert sorted(p.name for p in card.iterdir()) == sorted(
        [f"{files.session}.manifest.age", f"{other.session}.manifest.age"])
    manifest = Manifest.from_json(_age_d(age_cli, key_file, card / f"{files.session}.manifest.age"))
    assert manifest == files.manifest()
    assert (manifest.headcount, manifest.segments, manifest.intervals, manifest.end_reason) == (2, (), (), None)
    assert [(c.seat, c.offset) for c in manifest.consents] == [(1, 4.0), (2, 6.5)]
    assert manifest.expires.isoformat() == "2026-04-03" and manifest.started == started


def test_intervals_each_get_segments_that_age_decrypts_to_a_wav_stream(journal, card, identity, started, pcm, age_cli,
                                                                       key_file):
    files = _start(card, identity, started, journal)
    first, second = pcm(SMALL, 48_000 * 3), pcm(SMALL, 48_000 * 2, 48_000 * 3)
    files.start_interval(10.0)
    _feed(files, first)
    files.stop_interval(13.0, 48_000 * 3)
    files.start_interval(20.0)
    _feed(files, second)
    files.finalise(EndReason.ENDED, 22.5, withdrawn=False)

    manifest = _card_manifest(files, identity)
    assert [(i.start, i.end, i.frames) for i in manifest.intervals] == [
        (10.0, 13.0, 144_000), (20.0, 22.5, 96_000)]
    assert [s.interval for s in manifest.segments] == [0, 1]
    assert (manifest.end_reason, manifest.ended, manifest.withdrawn) == (EndReason.ENDED, 22.5, False)
    for path, segment, audio in zip(_segments(card), manifest.segments, [first, second], strict=True):
        plaintext = _age_d(age_cli, key_file, path)
        assert plaintext == streaming_header(SMALL) + audio
        assert len(plaintext) == segment.plaintext_bytes
        assert hashlib.sha256(plaintext).hexdigest() == segment.sha256


@pytest.mark.parametrize("policy", [SMALL, Policy(segment_bytes=1 << 20, channels=3,
                                                   sample_format=SampleFormat.S32_LE)],
                         ids=["S16 mono", "S32 three channels"])
def test_segments_rotate_before_exceeding_segment_bytes(journal, card, identity, started, pcm, age_cli, key_file,
                                                        policy):
    audio = pcm(policy, 600_000)  # 1.2 MB or 7.2 MB of audio: one rotation, or several
    files = _start(card, identity, started, journal, policy)
    files.start_interval(0.0)
    _feed(files, audio, policy)
    files.stop_interval(12.5, 600_000)

    sizes = [path.stat().st_size for path in _segments(card)]
    assert len(sizes) == len(files.manifest().segments) >= 2
    assert max(sizes) <= policy.segment_bytes
    # Full segments use the budget up to the last whole frame that fits.
    assert all(policy.segment_bytes - size < policy.frame_bytes + 16 for size in sizes[:-1])
    joined = b""
    for path in _segments(card):
        plaintext = _age_d(age_cli, key_file, path)
        assert plaintext[:HEADER_SIZE] == streaming_header(policy)
        assert (len(plaintext) - HEADER_SIZE) % policy.frame_bytes == 0
        joined += plaintext[HEADER_SIZE:]
    assert joined == audio


def test_the_manifest_on_the_card_is_always_whole_and_current_at_each_change(journal, card, identity, started, pcm):
    files = _start(card, identity, started, journal)
    assert _card_manifest(files, identity) == files.manifest()
    files.start_interval(1.0)
    assert _card_manifest(files, identity) == files.manifest()
    listed = 1
    for at in range(0, 48_000 * 20, PERIOD):
        files.write(pcm(SMALL, PERIOD, at))
        segments = len(files.manifest().segments)
        if segments != listed:  # a rotation just happened, and the card knows
            assert _card_manifest(files, identity) == files.manifest()
            listed = segments
    assert listed >= 2
    files.note_overruns(2)
    files.stop_interval(21.0, 48_000 * 20)
    assert _card_manifest(files, identity) == files.manifest()
    files.finalise(EndReason.MAX_SESSION, 21.0, withdrawn=False)
    assert _card_manifest(files, identity) == files.manifest()
    assert files.manifest().overruns == 2
    assert not list(card.glob(".*")), "a temporary manifest was left behind"


def test_a_manifest_that_cannot_be_replaced_leaves_the_old_one_whole(journal, card, identity, started, monkeypatch):
    files = _start(card, identity, started, journal)
    before = (card / f"{files.session}.manifest.age").read_bytes()

    real_replace = os.replace

    def failing_replace(source, target, **directories):
        if replace_target(target, **directories).parent.resolve() == card.resolve():  # the card fails, not the box
            raise OSError(errno.EIO, "Input/output error")
        real_replace(source, target, **directories)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(CardWriteError, match="writing the manifest"):
        files.start_interval(1.0)
    assert (card / f"{files.session}.manifest.age").read_bytes() == before
    assert _card_manifest(files, identity).intervals == ()
    assert not list(card.glob(".*")), "the temporary manifest was left behind"


def test_every_sealed_chunk_is_synced_as_soon_as_it_is_written(journal, card, identity, started, pcm, monkeypatch):
    synced = []
    real_fdatasync = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(os.fstat(fd).st_size), real_fdatasync(fd)))
    files = _start(card, identity, started, journal)
    files.start_interval(0.0)
    header_only = synced[-1]
    audio = pcm(SMALL, 5 * CHUNK // 2)  # the stream (header + audio) fills 5 chunks and 44 bytes
    _feed(files, audio)
    assert synced == [header_only + n * (CHUNK + 16) for n in range(6)]
    segment = _segments(card)[0]
    assert segment.stat().st_size == synced[-1]  # only the unsealed tail waits in memory
    files.stop_interval(6.0, 5 * CHUNK // 2)
    assert synced[-1] == header_only + 5 * (CHUNK + 16) + HEADER_SIZE + 16 == segment.stat().st_size


def test_a_new_segment_s_name_is_written_out_with_its_whole_file_system_before_any_audio(
        journal, card, identity, started, pcm, monkeypatch):
    # On FAT32 a new name's first directory sector stayed unwritten after the file's and the directory's
    # fsync; a power cut then lost the name (the VM test). syncfs writes it.
    names_at_syncfs = []
    real_syncfs = session_module.sync_file_system
    monkeypatch.setattr(session_module, "sync_file_system",
                        lambda fd: (names_at_syncfs.append([(p.name, p.stat().st_size) for p in _segments(card)]),
                                    real_syncfs(fd)))
    files = _start(card, identity, started, journal)
    files.start_interval(0.0)
    [[(name, size)]] = names_at_syncfs
    assert name.endswith(".000.wav.age") and size == 0  # before its age header, before any audio
    files.stop_interval(1.0, 0)
    files.start_interval(2.0)
    assert [len(names) for names in names_at_syncfs] == [1, 2]


def test_sync_file_system_writes_out_the_file_system_or_says_why_not(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        sync_file_system(fd)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as error:
        sync_file_system(fd)  # closed: EBADF
    assert error.value.errno == errno.EBADF


def _pcm_blocks(audio: bytes, size: int = 4096) -> list[bytes]:
    """The audio's aligned 4 KiB blocks: any stretch of 8 KiB of it, wherever it starts, holds one."""
    return [audio[at:at + size] for at in range(0, len(audio) - size + 1, size)]


def test_no_audio_in_the_clear_anywhere(journal, card, identity, started, pcm, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    audio = pcm(SMALL, 48_000 * 15)
    files = _start(card, identity, started, journal)
    files.start_interval(0.0)
    _feed(files, audio[: len(audio) // 2])
    files.stop_interval(7.5, 48_000 * 15 // 2)
    files.start_interval(8.0)
    _feed(files, audio[len(audio) // 2:])  # left open: a segment mid-write is checked too

    blocks = _pcm_blocks(audio)
    stored = [path for path in [*card.iterdir(), *scratch.rglob("*"), *journal.directory.iterdir()]
              if path.is_file()]
    assert len(stored) >= 3
    for path in stored:
        content = path.read_bytes()
        assert not any(block in content for block in blocks), f"{path.name} holds audio in the clear"


def test_destroy_leaves_nothing_of_the_session(journal, card, identity, started, pcm):
    keep = _start(card, identity, started, journal)
    files = _start(card, identity, started, journal)
    files.start_interval(0.0)
    _feed(files, pcm(SMALL, 48_000 * 8))
    files.stop_interval(8.0, 48_000 * 8)
    files.start_interval(9.0)
    _feed(files, pcm(SMALL, 4096))  # capture still open: a withdrawal stops it and destroys
    (card / extract_name(files.session)).write_bytes(b"its ledger extract")  # the record, not the recording
    files.destroy()
    assert sorted(p.name for p in card.iterdir()) == sorted([f"{keep.session}.manifest.age",
                                                             extract_name(files.session)])
    with pytest.raises(SessionFilesError):
        files.write(pcm(SMALL, 1))


def test_a_finalised_session_can_still_be_destroyed_and_its_journal_marks_it_until_done(journal, card, identity,
                                                                                        started, pcm, monkeypatch):
    # A withdrawal after the session's end (issue 17): the files let go of the card's directory when finalised.
    files = _start(card, identity, started, journal)
    files.start_interval(0.0)
    _feed(files, pcm(SMALL, 48_000 * 12))  # on past a rotation: two segments
    files.finalise(EndReason.ENDED, 13.0, withdrawn=False)
    assert journal.pending() == [] and len(_segments(card)) == 2
    (card / extract_name(files.session)).write_bytes(b"its ledger extract")

    def power_cut(directory: int, session: str) -> None:
        assert [entry.destroy for entry in journal.pending()] == [True], "marked before the first unlink"
        raise OSError(errno.EIO, "a power cut")
    monkeypatch.setattr(session_module, "remove_session_files", power_cut)
    with pytest.raises(CardWriteError):
        files.destroy()
    assert [entry.destroy for entry in journal.pending()] == [True], "left for start-up recovery to finish"
    monkeypatch.undo()

    files.destroy()
    assert sorted(p.name for p in card.iterdir()) == [extract_name(files.session)]
    assert journal.pending() == []


def test_a_finalised_session_kept_after_a_withdrawal_has_its_manifest_marked_and_sealed(journal, card, identity,
                                                                                          started, pcm):
    seals = []
    files = _start(card, identity, started, journal, on_seal=seals.append)
    files.start_interval(0.0)
    _feed(files, pcm(SMALL, 48_000))
    with pytest.raises(SessionFilesError, match="not finalised"):
        files.mark_withdrawn()
    files.finalise(EndReason.ENDED, 2.0, withdrawn=False)
    assert not _card_manifest(files, identity).withdrawn
    files.mark_withdrawn()
    marked = _card_manifest(files, identity)
    assert marked.withdrawn and marked.end_reason is EndReason.ENDED and marked == files.manifest()
    manifest_file = (card / f"{files.session}.manifest.age").read_bytes()
    assert (seals[-1].segment, seals[-1].bytes) == (None, len(manifest_file))
    assert seals[-1].sha256 == hashlib.sha256(manifest_file).hexdigest()
    assert journal.pending() == []


def test_every_file_the_session_writes_on_the_card_and_the_card_carry_the_fixed_time(journal, card, identity,
                                                                                      started, pcm):
    # A file's times would otherwise date the session: its first write its start, its last its end.
    files = _start(card, identity, started, journal)
    files.start_interval(0.0)
    _feed(files, pcm(SMALL, 48_000 * 3))
    fixed = int(FIXED_TIME.timestamp())

    def dated() -> list[str]:
        # Listing a directory sets its access time here (the box mounts its card noatime): only its
        # modification time is looked at.
        names = [p.name for p in card.iterdir()]
        return [name for name in names if ((card / name).stat().st_mtime, (card / name).stat().st_atime)
                != (fixed, fixed)] + (["the card"] if card.stat().st_mtime != fixed else [])

    assert dated() == []  # the open segment too, after each chunk
    files.stop_interval(3.0, 48_000 * 3)
    files.finalise(EndReason.ENDED, 4.0, withdrawn=False)
    assert sorted(p.name for p in card.iterdir()) == [f"{files.session}.000.wav.age", f"{files.session}.manifest.age"]
    assert dated() == []


def test_a_crash_mid_recording_still_exports_what_was_sealed(journal, card, identity, started, pcm):
    audio = pcm(SMALL, 48_000 * 8)
    files = _start(card, identity, started, journal)
    files.start_interval(0.0)
    _feed(files, audio)
    del files  # the power goes: no stop, no finalise

    manifest = read_manifest(next(card.glob("*.manifest.age")), [identity])
    out = io.BytesIO()
    report = export_session(card, manifest, [identity], out)
    assert report.truncated and manifest.end_reason is None
    exported = out.getvalue()[HEADER_SIZE:]
    assert audio.startswith(exported) and len(audio) - len(exported) <= CHUNK
    assert report.frames * SMALL.frame_bytes == len(exported)


def test_a_segment_cut_mid_chunk_exports_the_chunks_before_the_cut(journal, card, identity, started, pcm):
    audio = pcm(SMALL, 48_000 * 4)
    files = _start(card, identity, started, journal)
    files.start_interval(0.0)
    _feed(files, audio)
    files.finalise(EndReason.ENDED, 4.0, withdrawn=False)
    segment = _segments(card)[0]
    with open(segment, "r+b") as damaged:
        damaged.truncate(segment.stat().st_size - 30_000)

    out = io.BytesIO()
    report = export_session(card, _card_manifest(files, identity), [identity], out)
    assert report.truncated and not report.segments[0].complete
    assert "cut short" in report.segments[0].damage
    exported = out.getvalue()[HEADER_SIZE:]
    assert exported == audio[: (len(audio) + HEADER_SIZE) // CHUNK * CHUNK - HEADER_SIZE]


def test_calls_out_of_order_are_refused(journal, card, identity, started, pcm):
    files = _start(card, identity, started, journal)
    with pytest.raises(SessionFilesError, match="not open"):
        files.write(pcm(SMALL, 10))
    files.start_interval(1.0)
    with pytest.raises(SessionFilesError, match="already open"):
        files.start_interval(2.0)
    with pytest.raises(ValueError, match="whole number"):
        files.write(b"\x00")
    with pytest.raises(ValueError, match="before it started"):
        files.stop_interval(0.5, 0)
    files.finalise(EndReason.SHUTDOWN, 3.0, withdrawn=False)
    assert files.manifest().intervals[0].end == 3.0
    with pytest.raises(SessionFilesError, match="already finalised"):
        files.finalise(EndReason.ENDED, 4.0, withdrawn=False)


@pytest.mark.parametrize(("number", "kind"), [
    (errno.ENOSPC, CardFull), (errno.EDQUOT, CardFull),
    (errno.EROFS, CardLost), (errno.ENOENT, CardLost), (errno.ENODEV, CardLost), (errno.ENXIO, CardLost),
    (errno.ESTALE, CardLost), (errno.ENOTDIR, CardLost),
    (errno.EIO, CardWriteError), (errno.EPERM, CardWriteError),
])
def test_card_errors_by_errno(card, number, kind):
    error = card_error(OSError(number, os.strerror(number)), card, "writing audio")
    assert type(error) is kind
    assert str(card) in str(error) and "\n" not in str(error)


def test_an_io_error_on_a_card_whose_directory_vanished_is_a_lost_card(tmp_path):
    assert type(card_error(OSError(errno.EIO, "I/O error"), tmp_path / "gone", "writing audio")) is CardLost


def test_an_io_error_on_a_card_whose_device_left_the_system_is_a_lost_card(card, monkeypatch):
    # A USB card pulled out: the path is still a directory (the mount lingers, or it is the bare mount point
    # once detached), and the device the session opened is gone (a stand-in for sysfs here; tests/vm pulls a
    # real one).
    opened = os.stat(card).st_dev
    monkeypatch.setattr(session_module, "device_gone", lambda device, settle: device == opened)
    assert type(card_error(OSError(errno.EIO, "I/O error"), card, "writing audio", opened)) is CardLost
    assert type(card_error(OSError(errno.EIO, "I/O error"), card, "writing audio", opened + 1)) is CardWriteError


@pytest.fixture
def small(tmp_path: Path):
    """A 3 MiB card that really fills up."""
    try:
        with small_card(tmp_path / "small", 3 << 20) as path:
            yield path
    except OSError as error:
        pytest.fail(str(error))


def test_a_full_card_stops_the_recording_and_keeps_what_was_written(journal, small, identity, started, pcm):
    files = _start(small, identity, started, journal)
    files.start_interval(0.0)
    audio = pcm(SMALL, 48_000 * 60)  # 5.8 MB: more than the card holds
    with pytest.raises(CardFull, match=str(small)) as raised:
        _feed(files, audio)
    assert files.fault is raised.value
    with pytest.raises(CardFull) as again:
        files.write(pcm(SMALL, PERIOD))
    assert again.value is raised.value
    files.stop_interval(60.0, 48_000 * 60)  # best effort: no second raise for the same fault
    files.finalise(EndReason.CARD_FULL, 60.0, withdrawn=False)

    manifest = read_manifest(small / f"{files.session}.manifest.age", [identity])
    assert manifest.end_reason is EndReason.CARD_FULL  # the cut-off chunk made room for the last manifest
    out = io.BytesIO()
    report = export_session(small, manifest, [identity], out)
    assert [s.digest for s in report.segments] == ["verified", "verified", "unverified"]
    assert "ends after payload chunk" in report.segments[-1].damage  # cut at a chunk boundary
    exported = out.getvalue()[HEADER_SIZE:]
    assert len(exported) > 2_500_000 and audio.startswith(exported) and report.truncated


def test_files_follow_the_card_directory_they_opened_not_its_path(journal, card, identity, started, pcm, tmp_path):
    # What a card unmounted under the box (umount -l) looks like from here: its path now leads
    # elsewhere. The session's files must keep going to the card, and nothing to the old path.
    files = _start(card, identity, started, journal)
    files.start_interval(0.0)
    _feed(files, pcm(SMALL, 48_000 * 3))
    moved = tmp_path / "moved"
    card.rename(moved)
    card.mkdir()  # the empty mount point left behind
    _feed(files, pcm(SMALL, 48_000 * 10))  # rotates: the new segment must reach the card too
    files.finalise(EndReason.CARD_LOST, 13.0, withdrawn=False)

    assert list(card.iterdir()) == []
    manifest = read_manifest(moved / f"{files.session}.manifest.age", [identity])
    assert manifest.end_reason is EndReason.CARD_LOST and len(manifest.segments) == 2
    report = export_session(moved, manifest, [identity], io.BytesIO())
    assert report.frames == 48_000 * 13 and not any(not s.complete for s in report.segments)


def test_a_lagging_manifest_still_exports_every_segment(journal, card, identity, started, pcm):
    audio = pcm(SMALL, 48_000 * 15)
    files = _start(card, identity, started, journal)
    files.start_interval(0.0)
    _feed(files, audio[: 48_000 * 2 * 4])
    early = (card / f"{files.session}.manifest.age").read_bytes()  # lists one open segment
    _feed(files, audio[48_000 * 2 * 4:])
    files.finalise(EndReason.ENDED, 15.0, withdrawn=False)
    (card / f"{files.session}.manifest.age").write_bytes(early)  # as if the box stopped before the update

    out = io.BytesIO()
    report = export_session(card, read_manifest(card / f"{files.session}.manifest.age", [identity]),
                            [identity], out)
    assert out.getvalue()[HEADER_SIZE:] == audio
    assert [s.listed for s in report.segments] == [True] + [False] * (len(report.segments) - 1)
    assert {s.digest for s in report.segments} == {"unverified"}
    assert any("not yet in the manifest" in note for note in report.notes())
    # Every segment is whole, but the session was never ended: the export cannot know what came after.
    assert report.truncated and any("never finalised" in note for note in report.notes())


def test_the_journal_holds_the_open_session_until_it_is_finalised_or_destroyed(journal, card, identity, started,
                                                                               pcm):
    kept, withdrawn = _start(card, identity, started, journal), _start(card, identity, started, journal)
    for files in (kept, withdrawn):
        files.start_interval(1.0)
        _feed(files, pcm(SMALL, 48_000 * 12))  # on past a rotation
    assert {entry.manifest for entry in journal.pending()} == {kept.manifest(), withdrawn.manifest()}
    assert all(_card_manifest(files, identity) == files.manifest() for files in (kept, withdrawn))
    kept.finalise(EndReason.ENDED, 14.0, withdrawn=False)
    withdrawn.destroy()
    assert journal.pending() == [] and list(journal.directory.iterdir()) == []
    assert stat.S_IMODE(journal.directory.stat().st_mode) == 0o700


@pytest.mark.parametrize("ending", ["ended", "paused", "withdrawn", "card full"])
def test_the_audio_the_session_held_in_memory_is_zeroed_when_capture_ends(ending, journal, tmp_path, identity,
                                                                          started, pcm):
    card = tmp_path / "card"
    with small_card(card, 3 << 20):  # real enough to fill up
        files = _start(card, identity, started, journal)
        files.start_interval(0.0)
        _feed(files, pcm(SMALL, 48_000 * 2 + 100))  # sealed chunks, and an unsealed tail held
        buffers = held_buffers(files)
        assert holding_anything(buffers), "the session holds its unsealed audio in no buffer found"
        if ending == "card full":
            filler = card / "filler"  # leaves less room than the rest of this segment needs
            status = os.statvfs(card)
            filler.write_bytes(bytes(status.f_bavail * status.f_frsize - (64 << 10)))
            with pytest.raises(CardFull):
                _feed(files, pcm(SMALL, 48_000 * 4))
            assert holding_anything(buffers), "the write that failed left nothing unsealed to zero"
        if ending == "withdrawn":
            files.destroy()  # capture still open, as when a CONSENT hold withdraws
        else:
            files.stop_interval(10.0, 48_000 * 2)
            if ending != "paused":
                files.finalise(EndReason.CARD_FULL if ending == "card full" else EndReason.ENDED, 10.0,
                               withdrawn=False)
        assert holding_anything(buffers) == []
        if ending == "paused":
            files.finalise(EndReason.ENDED, 10.0, withdrawn=False)  # lets go of the card
