"""One session's files on the card: its audio as encrypted WAV segments, and its encrypted manifest.

Audio goes from memory straight into an age writer; plaintext never reaches a file. Every sealed
64 KiB chunk is synced to the card as soon as it is written, so a power cut loses at most the
unsealed tail; when a segment is done (sealed, cut short by a fault, or destroyed) the audio its
writer held is zeroed. The manifest is replaced atomically whenever the session changes shape
(start, each capture interval opening or closing, each new segment, the end), so the card always
holds a complete manifest. Each version goes to the box's journal first, so that after a crash the box
knows what the card holds without reading it (`consentbox.recording.recovery`). docs/formats.md
describes the files.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from consentbox.core.errors import ConsentBoxError
from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason
from consentbox.crypto import AgeWriter, Recipient
from consentbox.crypto.stream import CHUNK_SIZE, SEALED_CHUNK_SIZE, TAG_SIZE
from consentbox.hw.errors import CardFull, CardLost, CardWriteError, HardwareError
from consentbox.recording.journal import Journal
from consentbox.recording.manifest import (
    MAX_SEGMENTS,
    Consent,
    Interval,
    LedgerRange,
    Manifest,
    ManifestError,
    Segment,
    extract_name,
    manifest_name,
    policy_digest,
    segment_name,
)
from consentbox.recording.seal import CHECKPOINT_CHUNKS, Seal, chunk_frames, manifest_seal
from consentbox.recording.wav import HEADER_SIZE, AudioFormat, streaming_header
from consentbox.storage.atomic import replace_file_at, temporary_name
from consentbox.storage.block_device import SETTLE_SECONDS, device_gone
from consentbox.storage.card_files import (
    ForeignEntry,
    card_directory,
    create_file,
    listed_names,
    open_directory,
    remove_file,
)
from consentbox.storage.durable import sync_open_directory
from consentbox.storage.file_system_sync import sync_file_system
from consentbox.storage.file_times import hide_times

_FILE_MODE = 0o644  # ciphertext only; readable by the supervisor's account on an ext4 card
_LOST = frozenset({errno.EROFS, errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.ESTALE, errno.ENOTDIR})
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class SessionFilesError(ConsentBoxError, RuntimeError):
    """A SessionFiles method was called out of order (for example `write` while paused)."""


def card_error(error: OSError, card: Path, doing: str, device: int | None = None) -> HardwareError:
    """The hardware error that `error`, met while `doing` something on `card`, stands for; `device` is the
    st_dev of the card's directory as it was opened, if it was."""
    if isinstance(error, HardwareError):
        return error  # raised here already, saying what it is
    if isinstance(error, ForeignEntry):
        return CardWriteError(f"card {card}: {error}")
    reason = error.strerror or str(error)
    if error.errno in _FULL:
        return CardFull(f"card {card} is full ({doing}): give it to the supervisor to export, or replace it")
    # An I/O error is the card's removal when its directory or its device has gone too; otherwise a bad block.
    if error.errno in _LOST or (error.errno == errno.EIO and _card_gone(card, device)):
        return CardLost(f"card {card} was removed or turned read-only ({doing}: {reason}): reinsert it")
    return CardWriteError(f"card {card} failed ({doing}: {reason}): replace the card")


def _card_gone(card: Path, device: int | None) -> bool:
    # The device opened, not the path's: a pulled card's busy mount is detached at once (the package's
    # LazyUnmount=yes), and the path is then the bare mount point on the box's own disk.
    try:
        return device_gone(os.stat(card).st_dev if device is None else device, settle=SETTLE_SECONDS)
    except OSError:
        return True


def _plaintext_capacity(ciphertext_budget: int) -> int:
    """The most plaintext whose sealed chunks (64 KiB + a 16-byte tag each) fit `ciphertext_budget`."""
    chunks, rest = divmod(ciphertext_budget, SEALED_CHUNK_SIZE)
    return chunks * CHUNK_SIZE + max(0, rest - TAG_SIZE)


def write_manifest(
    card: Path | int,
    manifest: Manifest,
    recipients: Sequence[Recipient],
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> Seal:
    """Encrypt `manifest` to `recipients` and make it the card's manifest of its session, atomically, in the
    card's directory (a path, or a descriptor open on it); returns the seal of what was written."""
    sealed = io.BytesIO()
    with AgeWriter(sealed, recipients, random_bytes=random_bytes) as writer:
        writer.write(manifest.to_json())
    ciphertext = sealed.getvalue()
    with card_directory(card) as directory:
        replace_file_at(directory, manifest_name(manifest.session), ciphertext, _FILE_MODE, hidden_times=True)
    return manifest_seal(ciphertext)


def session_files(card: Path | int, session: str) -> list[str]:
    """The name of every file of `session`'s recording in the card's directory (a path, or a descriptor
    open on it), a half-written manifest included, but not its ledger extract (`extract_name`), which
    outlives the recording; OSError if the card cannot be listed."""
    pattern = re.compile(rf"\.?{re.escape(session)}\..+")
    extract = extract_name(session)
    with card_directory(card) as directory:
        return listed_names(directory, lambda name: pattern.fullmatch(name) is not None
                            and name not in (extract, temporary_name(extract)))


def remove_session_files(card: int, session: str) -> list[ForeignEntry]:
    """Unlink every file of `session` from the card's directory open as `card`, the manifest last, and sync
    the directory; OSError if that fails. What the box did not write there (a link, a FIFO, a directory…)
    is left as it is: returned, for the caller to report."""
    manifest = manifest_name(session)
    left = []
    for name in sorted(session_files(card, session), key=lambda name: (name == manifest, name)):
        try:
            remove_file(card, name)
        except ForeignEntry as error:
            left.append(error)
    sync_open_directory(card)
    return left


class _SyncedFile:
    """A file whose every write is on the card when `write` returns, and the SHA-256 of what it holds.

    AgeWriter writes its header (with the payload nonce) with one call and then each sealed chunk with
    one call, so syncing per write is syncing per chunk, and every write after the first is a chunk.
    fdatasync skips the timestamp update that fsync would also force out. The digest runs over each
    write once it is synced (the card is never read back). Every CHECKPOINT_CHUNKS chunks, the
    file's (chunks, size, SHA-256) so far waits in `checkpoints` for its owner to take: one write of
    plaintext to the AgeWriter may seal several chunks.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.size = 0
        self.digest = hashlib.sha256()  # of the `size` bytes written
        self._writes = 0
        self.checkpoints: list[tuple[int, int, str]] = []

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write all of `data` and sync it; returns its length."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
            hide_times(self._fd)  # each write dates the file again
            os.fdatasync(self._fd)
        except OSError:
            # A partly written chunk can never authenticate; cutting it off frees its blocks, which
            # on a full card is what lets the final manifest still be written.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            raise
        self.size += len(data)
        self.digest.update(data)
        self._writes += 1
        if self.chunks and self.chunks % CHECKPOINT_CHUNKS == 0:
            self.checkpoints.append((self.chunks, self.size, self.digest.hexdigest()))
        return len(data)

    @property
    def chunks(self) -> int:
        """Sealed chunks written (the first write is the age header)."""
        return max(0, self._writes - 1)

    def seal(self, segment: int, frames: int, *, final: bool) -> Seal:
        """The seal of everything written so far, as segment number `segment` holding `frames` frames."""
        return Seal(segment, self.size, self.digest.hexdigest(), frames, final)

    def close(self) -> None:
        """Close the file descriptor."""
        os.close(self._fd)


class _OpenSegment:
    """The segment being written: its number, its writer, its running digests, and how much audio still fits."""

    def __init__(self, number: int, file: _SyncedFile, writer: AgeWriter, room: int, frame_bytes: int) -> None:
        self.number = number
        self.file = file
        self.writer = writer
        self.room = room
        self._frame_bytes = frame_bytes
        self.digest = hashlib.sha256()  # of the plaintext, for the manifest (the file keeps the ciphertext's)
        self.plaintext_bytes = 0
        # Set when a write failed: the file was cut back to its last whole chunk (as far as the card
        # allowed) and is never touched again, so it reads as cut short, never as garbled.
        self.broken = False
        self.closed = False

    def add(self, plaintext: memoryview | bytes) -> None:
        """Encrypt and append `plaintext` (the WAV header, or audio that fits `room`)."""
        self.digest.update(plaintext)
        self.room -= len(plaintext)
        self.plaintext_bytes += len(plaintext)
        try:
            self.writer.write(plaintext)
        except OSError:
            self.broken = True
            raise

    def close(self) -> bool:
        """Seal the final chunk and close the file; False if a failed write had broken it."""
        try:
            if self.broken:
                return False
            try:
                self.writer.close()
            except OSError:
                self.broken = True
                raise
            self.closed = True
            return True
        finally:
            self.drop()

    def drop(self) -> None:
        """Zero the audio its writer still holds and close the file: sealed or not, the segment is done."""
        self.writer.wipe()
        self.file.close()

    def take_checkpoints(self) -> list[Seal]:
        """The checkpoint seals its chunks have passed since the last call."""
        passed, self.file.checkpoints = self.file.checkpoints, []
        return [Seal(self.number, size, sha256, chunk_frames(chunks, self._frame_bytes), final=False)
                for chunks, size, sha256 in passed]

    def seal(self) -> Seal:
        """What the card holds of it: the whole file once closed; its header and the whole chunks written
        before a failure otherwise (the failed write was cut off again)."""
        if self.closed:
            return self.file.seal(self.number, (self.plaintext_bytes - HEADER_SIZE) // self._frame_bytes,
                                  final=True)
        return self.file.seal(self.number, chunk_frames(self.file.chunks, self._frame_bytes), final=False)


class SessionFiles:
    """The files of one session in the card directory: `<id>.manifest.age` and `<id>.NNN.wav.age`.

    Card failures raise CardFull, CardLost or CardWriteError, and the first one becomes the
    session's fault: after it `write` and `start_interval` raise it again, while `stop_interval`,
    `finalise` and `note_overruns` do what the card still allows without raising it a second time.

    Each file's ciphertext is sealed (`consentbox.recording.seal`) as it reaches the card, and each
    seal goes to `on_seal`: a segment when it is closed (or, cut short by a failed write, as far as it
    got), every CHECKPOINT_CHUNKS chunks while it is written, and every manifest version written.
    """

    def __init__(
        self,
        card: Path,
        session: str,
        recipients: Sequence[Recipient],
        policy: Policy,
        *,
        headcount: int,
        consents: Sequence[tuple[int, float]],
        started: datetime,
        journal: Journal,
        random_bytes: Callable[[int], bytes],
        ledger_range: Callable[[], LedgerRange | None],
        on_seal: Callable[[Seal], None],
    ) -> None:
        """Use `SessionFiles.create`, which also picks the id and writes the first manifest."""
        self.card = card
        # Every name is looked up through a handle on the card's directory, never by its path: a card
        # unmounted under the box (umount -l) still gets its session's files, nothing lands in the
        # empty mount point on the box's own disk, and no link on the card is followed (card_files).
        self._card_fd = open_directory(card)
        self._card_device = os.fstat(self._card_fd).st_dev
        self.session = session
        self._journal = journal
        self._ledger_range = ledger_range
        self._on_seal = on_seal
        self._recipients = tuple(recipients)
        self._random_bytes = random_bytes
        self._segment_bytes = policy.segment_bytes
        self._audio = AudioFormat.of(policy)
        self._frame_bytes = self._audio.frame_bytes
        self._policy_sha256 = policy_digest(policy)
        self._headcount = headcount
        self._consents = tuple(Consent(seat, float(offset)) for seat, offset in consents)
        self._started = started
        self._expires = started.date() + timedelta(days=policy.retention_days)
        self._intervals: list[Interval] = []
        self._segments: list[Segment] = []
        self._overruns = 0
        self._end_reason: EndReason | None = None
        self._ended: float | None = None
        self._withdrawn = False
        self._open: _OpenSegment | None = None
        self._interval_frames = 0
        self._fault: HardwareError | None = None
        self._finished = False

    @classmethod
    def create(
        cls,
        card: Path,
        session: str,
        recipients: Sequence[Recipient],
        policy: Policy,
        *,
        headcount: int,
        consents: Sequence[tuple[int, float]],
        started: datetime,
        journal: Journal,
        random_bytes: Callable[[int], bytes] = os.urandom,
        ledger_range: Callable[[], LedgerRange | None] = lambda: None,
        on_seal: Callable[[Seal], None] = lambda seal: None,
    ) -> SessionFiles:
        """Start the files of `session` (see `new_session_id`) with its first manifest.

        `started` must carry a UTC offset. `journal` is the box's journal (see `Journal`), which
        keeps each manifest version until the session is finalised or destroyed. `ledger_range` says
        where the session's consent-ledger entries are, for each manifest version to carry. `on_seal`
        is told of each seal as it is made (the first manifest's before this returns); it must not raise.
        """
        try:
            taken = session_files(card, session)
        except OSError as error:
            raise card_error(error, card, "opening the card's directory") from error
        if taken:  # a new id drawn at random: only a card made to meet this box has it already
            raise CardWriteError(f"card {card} already holds {ascii(taken[0])}, named for the new session "
                                 f"{session}, which the box did not put there: remove it from the card")
        try:
            files = cls(card, session, recipients, policy, headcount=headcount, consents=consents,
                        started=started, journal=journal, random_bytes=random_bytes, ledger_range=ledger_range,
                        on_seal=on_seal)
        except OSError as error:
            raise card_error(error, card, "opening the card's directory") from error
        try:
            files.manifest()  # a bad argument fails here, before anything is on the card
            files._save_manifest()
        except OSError as error:
            files._release()
            journal.remove(session)  # nothing of it reached the card: nothing to recover
            raise card_error(error, card, "writing the first manifest") from error
        except ManifestError:
            files._release()
            raise
        return files

    @property
    def segment_count(self) -> int:
        """How many segment files the session has begun (cheap enough to ask every period)."""
        return len(self._segments)

    @property
    def room_before_seal(self) -> int:
        """How many more bytes of audio `write` takes before it seals a chunk and syncs it to the card (0
        without an open segment: any write then fails at once)."""
        return self._open.writer.room_before_seal if self._open is not None else 0

    @property
    def fault(self) -> HardwareError | None:
        """The first card failure this session met, if any."""
        return self._fault

    def manifest(self) -> Manifest:
        """The manifest as it stands now (the card has it as of the last change)."""
        return Manifest(
            session=self.session, policy_sha256=self._policy_sha256, headcount=self._headcount,
            consents=self._consents, intervals=tuple(self._intervals), audio=self._audio,
            segments=tuple(self._segments), overruns=self._overruns, end_reason=self._end_reason,
            ended=self._ended, withdrawn=self._withdrawn, expires=self._expires, started=self._started,
            ledger=self._ledger_range(),
        )

    @property
    def _capturing(self) -> bool:
        return bool(self._intervals) and self._intervals[-1].end is None

    def _require(self, *, capturing: bool) -> None:
        if self._finished:
            raise SessionFilesError(f"session {self.session} is already finalised or destroyed")
        if self._capturing != capturing:
            state = "not" if capturing else "already"
            raise SessionFilesError(f"session {self.session}: capture is {state} open")

    def _record_fault(self, error: OSError, doing: str) -> HardwareError:
        fault = card_error(error, self.card, doing, self._card_device)
        if self._fault is None:
            self._fault = fault
        return fault

    def _attempt(self, doing: str, step: Callable[[], None]) -> None:
        """Run one step on the card; a failure is recorded as the fault instead of escaping."""
        try:
            step()
        except OSError as error:
            self._record_fault(error, doing)

    def _raise_new_fault(self, had_fault: bool) -> None:
        if self._fault is not None and not had_fault:
            raise self._fault

    def add_party(self, seat: int, offset: float) -> None:
        """A late arrival joined while paused: one more party, with their consent given at `offset`; the
        manifest says so from the next interval on."""
        self._require(capturing=False)
        self._headcount += 1
        self._consents += (Consent(seat, float(offset)),)

    def start_interval(self, offset: float) -> None:
        """Capture opens at `offset` seconds after set-up: a new segment starts with a WAV header."""
        self._require(capturing=False)
        if self._fault is not None:
            raise self._fault
        self._intervals.append(Interval(float(offset)))
        self._interval_frames = 0
        # The journal learns of the interval before its segment file exists, so that recovery can
        # give any segment file it finds beyond the ones it knows to the journal's last interval.
        self._journal.save(self.manifest())
        self._attempt("opening a segment", self._open_segment)
        self._attempt("writing the manifest", self._save_manifest)
        self._raise_new_fault(had_fault=False)

    def write(self, pcm: bytes | bytearray | memoryview) -> None:
        """Encrypt and append whole frames of audio, starting a new segment when one is full."""
        self._require(capturing=True)
        if self._fault is not None:
            raise self._fault
        view = memoryview(pcm).cast("B")
        if len(view) % self._frame_bytes:
            raise ValueError(f"{len(view)} bytes of audio is not a whole number of "
                             f"{self._frame_bytes}-byte frames")
        try:
            while True:
                segment = self._open
                assert segment is not None  # a capture interval without a segment has a fault
                take = min(len(view), segment.room)
                segment.add(view[:take])
                for seal in segment.take_checkpoints():
                    self._on_seal(seal)
                self._interval_frames += take // self._frame_bytes
                view = view[take:]
                if not view:
                    return
                self._rotate()
        except OSError as error:
            raise self._record_fault(error, "writing audio or starting its next segment") from error

    def stop_interval(self, offset: float, frames: int) -> None:
        """Capture closed at `offset` after `frames` frames: the segment is sealed and recorded."""
        self._require(capturing=True)
        start = self._intervals[-1].start
        if offset < start:
            raise ValueError(f"capture cannot stop at {offset} s, before it started at {start} s")
        had_fault = self._fault is not None
        self._close_interval(offset, frames)
        self._attempt("writing the manifest", self._save_manifest)
        self._raise_new_fault(had_fault)

    def note_overruns(self, count: int) -> None:
        """Count capture overruns (frames lost before they reached us); saved with the next change."""
        if count < 0:
            raise ValueError(f"an overrun count cannot be negative ({count})")
        self._overruns += count

    def finalise(self, reason: EndReason, offset: float, withdrawn: bool) -> None:
        """End the session at `offset`: seal what is open and write the final manifest."""
        if self._finished:
            raise SessionFilesError(f"session {self.session} is already finalised or destroyed")
        had_fault = self._fault is not None
        if self._capturing:
            # Capture that is still open (a fault, a shutdown) keeps the frames that reached the card.
            self._close_interval(max(offset, self._intervals[-1].start), self._interval_frames)
        self._end_reason, self._ended, self._withdrawn = reason, float(offset), withdrawn
        self._finished = True
        try:
            self._save_manifest()
        except OSError as error:
            # The journal keeps the final manifest, so a later start puts it on the card if it can.
            self._record_fault(error, "writing the final manifest")
        else:
            self._journal.remove(self.session)
        finally:
            self._release()
        self._raise_new_fault(had_fault)

    def mark_withdrawn(self) -> None:
        """Once finalised, mark the session withdrawn (a withdrawal after its end, its recording kept): its
        manifest is written again, saying so. CardFull, CardLost or CardWriteError if the card refuses."""
        if self._end_reason is None:
            raise SessionFilesError(f"session {self.session} is not finalised: a withdrawal during it ends it")
        self._withdrawn = True
        try:
            with card_directory(self.card) as directory:  # finalised, the session let go of its handle on it
                self._on_seal(write_manifest(directory, self.manifest(), self._recipients, self._random_bytes))
        except OSError as error:
            raise card_error(error, self.card, "marking the session's manifest withdrawn", self._card_device) from error

    def destroy(self) -> None:
        """Remove every file of this session, the manifest last, and sync the directory; during the session
        or once it is finalised (a withdrawal after its end).

        Unlike the other methods this raises even after an earlier fault: a withdrawal must never
        be reported as done while its audio is still on the card.
        """
        self._finished = True
        if self._open is not None:
            segment, self._open = self._open, None
            with contextlib.suppress(OSError):  # the file is about to be removed
                segment.drop()
        # Should the box stop half-way, recovery finishes the destruction; without that mark it must
        # not find the session at all, or it would keep what is left of a withdrawn recording.
        if not self._journal.save(self.manifest(), destroy=True):
            self._journal.remove(self.session)
        try:
            # Finalised, the session let go of the card's directory: it is opened again for as long as this takes.
            with card_directory(self.card if self._card_fd < 0 else self._card_fd) as directory:
                remove_session_files(directory, self.session)
        except OSError as error:
            raise card_error(error, self.card, "removing the session's files", self._card_device) from error
        finally:
            self._release()
        self._journal.remove(self.session)

    def _release(self) -> None:
        """Let go of the card's directory: the session is over."""
        if self._card_fd >= 0:
            os.close(self._card_fd)
            self._card_fd = -1

    def _close_interval(self, offset: float, frames: int) -> None:
        self._intervals[-1] = replace(self._intervals[-1], end=float(offset), frames=frames)
        if self._open is not None:
            self._attempt("sealing a segment", self._close_segment)

    def _open_segment(self) -> None:
        number = len(self._segments)
        if number == MAX_SEGMENTS:  # segment names have three digits (recording/manifest.py)
            raise CardFull(f"session {self.session} has used all {MAX_SEGMENTS} of its segment names on card "
                           f"{self.card}: raise the policy's segment_bytes for longer sessions")
        name = segment_name(self.session, number)
        fd = create_file(self._card_fd, name, _FILE_MODE)  # ForeignEntry if anything has the name
        # Listed from the moment the file exists, so that destroy() and the manifest know of it.
        self._segments.append(Segment(name, len(self._intervals) - 1))
        file = _SyncedFile(fd)
        try:
            hide_times(self._card_fd)  # the new name dated the directory (each write dates the file)
            # The name on the card before any audio: syncing the file and the directory was seen not to
            # write all of a FAT directory's new entries (storage/file_system_sync.py).
            sync_file_system(self._card_fd)
            writer = AgeWriter(file, self._recipients, random_bytes=self._random_bytes)
        except OSError:
            # Its header was cut off again: the manifest lists an empty file, sealed as the box's own.
            self._on_seal(file.seal(number, 0, final=False))
            file.close()
            raise
        # Its age header, bound at once: a segment swapped before its first checkpoint (a power cut in
        # its first 22 s, never recovered) has another header, so it matches no seal.
        self._on_seal(file.seal(number, 0, final=False))
        plaintext = _plaintext_capacity(self._segment_bytes - file.size)
        audio_room = (plaintext - HEADER_SIZE) // self._frame_bytes * self._frame_bytes
        self._open = _OpenSegment(number, file, writer, room=HEADER_SIZE + audio_room,
                                  frame_bytes=self._frame_bytes)
        self._open.add(streaming_header(self._audio))

    def _close_segment(self) -> None:
        segment, self._open = self._open, None
        assert segment is not None
        try:
            if segment.close():
                self._segments[-1] = replace(self._segments[-1], plaintext_bytes=segment.plaintext_bytes,
                                             sha256=segment.digest.hexdigest())
        finally:
            # Cut short by a card failure, it is sealed as far as it got, now: once the final manifest
            # is on the card, start-up recovery never sees the session.
            self._on_seal(segment.seal())

    def _rotate(self) -> None:
        self._close_segment()
        self._open_segment()
        self._save_manifest()

    def _save_manifest(self) -> None:
        # Journal first: it is never behind the card, so recovery never writes an older version.
        manifest = self.manifest()
        self._journal.save(manifest)
        self._on_seal(write_manifest(self._card_fd, manifest, self._recipients, self._random_bytes))
