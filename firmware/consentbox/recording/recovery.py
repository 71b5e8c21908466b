"""Start-up recovery: finishing the sessions that a power cut or a crash left open.

The box cannot read the card's manifests (they are encrypted to the supervisors), so it works from its
journal (`consentbox.recording.journal`), which is never behind the card. For each unfinished session
whose files are on the card it writes one more manifest version: the open capture interval closed,
the segments the journal knows plus any later segment file on the card, and the end reason
`interrupted`. A session whose destruction (a withdrawal) was cut short is destroyed. Nothing is
decrypted; the only card files read are segments that were never closed: their public headers, and
their ciphertext up to the last whole chunk, to seal it (`consentbox.recording.seal`). Every name is
looked up in the card's directory without following a link (`consentbox.storage.card_files`); an
entry the box did not write where a segment should be (a link, a FIFO, a directory, a device, a hard
link, a file larger than any segment, one it may not read) is left there and reported, and recovery
goes on without it.
docs/reliability.md describes the rules, docs/formats.md ("Seals") the seals.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import BinaryIO

from consentbox.core.policy import MAX_SEGMENT_BYTES
from consentbox.core.reasons import EndReason, Problem
from consentbox.crypto import HeaderError, Recipient
from consentbox.crypto.format import read_header
from consentbox.crypto.stream import NONCE_SIZE, SEALED_CHUNK_SIZE
from consentbox.hw.ports import Card
from consentbox.recording.journal import Journal, JournalEntry
from consentbox.recording.manifest import MAX_SEGMENTS, Manifest, Segment, segment_name
from consentbox.recording.seal import Seal, chunk_frames
from consentbox.recording.session import remove_session_files, session_files, write_manifest
from consentbox.recording.wav import HEADER_SIZE
from consentbox.storage.card_files import ForeignEntry, open_directory, open_file, sort_out

#: A segment is hashed this much at a time: it may be 1 GiB, and the box's memory is small.
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class Recovered:
    """A session found unfinished at start-up, and how it was finished."""

    session: str
    segments: int  # segment files its new manifest lists (0 when destroyed)
    end_reason: EndReason  # the end reason written: `interrupted`, unless the box had already ended it
    destroyed: bool  # its files were being destroyed (a withdrawal) and now are
    destroyed_files: int = 0  # how many files of it recovery removed (when `destroyed`)
    expires: date | None = None  # its expiry as its last manifest gave it (when `destroyed`): the receipt's due


def recover_interrupted(
    card: Card,
    journal: Journal,
    recipients: Sequence[Recipient],
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
    on_seal: Callable[[str, Seal], None] = lambda session, seal: None,
    on_foreign: Callable[[ForeignEntry], None] = lambda error: None,
) -> list[Recovered]:
    """Finish every session the journal still lists, and forget it; returns what was done, by id.

    While there is no card (or one of the wrong format) nothing is done: the entries wait for a start
    with the card in. An entry whose session has no file of the box's on the card is dropped (another
    card is in, or nothing of the session ever reached this one). An entry the card cannot take now
    (read-only, failing, no recipients to encrypt to, something the box did not write in the way of
    its new manifest) stays for the next start. Running it again finds nothing left to do.

    For each session it finishes (not destroyed), `on_seal(session, seal)` is told, once its new
    manifest is on the card, of the seal of each segment the journal does not list as closed (as far
    as the card holds whole chunks of it), then of that manifest's; `on_foreign` of each entry it
    left because the box did not write it. Neither may raise.
    """
    if card.problems() & {Problem.NO_CARD, Problem.CARD_WRONG_FORMAT}:
        return []
    try:
        directory = open_directory(card.path)
    except OSError:
        return []
    recovered = []
    try:
        for entry in journal.pending():
            if not entry.destroy and not recipients:
                continue  # no key to encrypt a manifest to until the box is provisioned again
            try:
                done = _finish(directory, entry, recipients, random_bytes, on_seal, on_foreign)
            except ForeignEntry as error:  # a directory where the manifest goes: the entry waits
                on_foreign(error)
                continue
            except OSError:
                continue
            journal.remove(entry.manifest.session)
            if done is not None:
                recovered.append(done)
    finally:
        os.close(directory)
    return recovered


def _finish(
    card: int, entry: JournalEntry, recipients: Sequence[Recipient], random_bytes: Callable[[int], bytes],
    on_seal: Callable[[str, Seal], None], on_foreign: Callable[[ForeignEntry], None],
) -> Recovered | None:
    """Finish one session in the card's directory open as `card`; None if it has no file of the box's
    there. OSError if the card refuses."""
    session = entry.manifest.session
    # Entries the box did not write: a segment's are reported below, where they are met; one at the
    # manifest's name, or its temporary's, gives way to the new manifest.
    files, _ = sort_out(card, session_files(card, session))
    if not files:
        return None
    if entry.destroy:
        for left in remove_session_files(card, session):
            on_foreign(left)
        return Recovered(session, 0, entry.manifest.end_reason or EndReason.WITHDRAWN, destroyed=True,
                         destroyed_files=len(files), expires=entry.manifest.expires)
    # A journal that already holds the final manifest was cut off only before the card got it.
    manifest = (entry.manifest if entry.manifest.end_reason is not None
                else interrupted(card, entry.manifest, on_foreign))
    # The journal lists a segment's digest once it was closed, and SessionFiles sealed it then; the
    # others (open when the box stopped, or cut short by a fault) are sealed as the card holds them.
    found = [_found_seal(card, segment.name, number, manifest.audio.frame_bytes, on_foreign)
             for number, segment in enumerate(manifest.segments) if segment.sha256 is None]
    sealed = write_manifest(card, manifest, recipients, random_bytes)
    for seal in [*(seal for seal in found if seal is not None), sealed]:
        on_seal(session, seal)
    return Recovered(session, len(manifest.segments), manifest.end_reason or EndReason.INTERRUPTED,
                     destroyed=False)


def interrupted(card: int, manifest: Manifest, on_foreign: Callable[[ForeignEntry], None]) -> Manifest:
    """`manifest` (from the journal) ended as `interrupted`, with what the card (its directory open as
    `card`) shows of its last moments.

    A segment file beyond those listed was begun just before the box stopped (in the journal's last
    interval, which the journal learns of before its first segment exists); an entry there that the box
    did not write is no segment (`on_foreign` is told). An open interval is closed with the frames in
    its segments' sealed chunks, counted from the files' sizes without decrypting them; that is a lower
    bound, and its `end` is its start plus that many frames' time (a segment the box did not write
    counts none). The session's `ended` is the end of its last interval (the last moment known to be
    recorded).
    """
    segments = list(manifest.segments)
    last = len(manifest.intervals) - 1
    while last >= 0 and len(segments) < MAX_SEGMENTS:
        name = segment_name(manifest.session, len(segments))
        try:
            src = _open_segment(card, name)
        except ForeignEntry as error:
            on_foreign(error)
            break
        if src is None:
            break
        src.close()
        segments.append(Segment(name, last))
    intervals = list(manifest.intervals)
    if intervals and intervals[-1].end is None:
        frames = sum(_sealed_frames(card, s, manifest) for s in segments if s.interval == last)
        start = intervals[-1].start
        intervals[-1] = replace(intervals[-1], end=start + frames / manifest.audio.rate, frames=frames)
    ended = intervals[-1].end if intervals else max((c.offset for c in manifest.consents), default=0.0)
    return replace(manifest, intervals=tuple(intervals), segments=tuple(segments),
                   end_reason=EndReason.INTERRUPTED, ended=ended)


def _sealed_frames(card: int, segment: Segment, manifest: Manifest) -> int:
    """Whole frames of audio in the segment's complete chunks: exact if it was closed, else from its size."""
    frame_bytes = manifest.audio.frame_bytes
    if segment.plaintext_bytes is not None:
        return (segment.plaintext_bytes - HEADER_SIZE) // frame_bytes
    try:
        src = _open_segment(card, segment.name)
    except ForeignEntry:
        return 0  # not the box's: none of the session's audio (`_found_seal` reports it)
    if src is None:
        return 0  # gone: no audio in it
    with src:
        _, chunks = _whole_chunks(src)
    return chunk_frames(chunks, frame_bytes)


def _open_segment(card: int, name: str) -> BinaryIO | None:
    """Segment `name` open for reading; None if it is gone. ForeignEntry if it is not a file the box wrote
    (no regular file with one name, or larger than any segment: nothing unbounded is read at start-up)."""
    try:
        return os.fdopen(open_file(card, name, max_bytes=MAX_SEGMENT_BYTES), "rb")
    except FileNotFoundError:
        return None


def _whole_chunks(src: BinaryIO) -> tuple[int, int]:
    """(bytes before its first chunk, whole sealed chunks) of the open segment file `src` as the card holds
    it; (0, 0) if it is cut off before its first chunk."""
    try:
        read_header(src)  # the public header: recipients' stanzas and a MAC, no key needed (at most 256 KiB)
    except HeaderError:
        return 0, 0
    start = src.tell() + NONCE_SIZE
    size = os.fstat(src.fileno()).st_size
    if size < start:
        return 0, 0
    return start, (size - start) // SEALED_CHUNK_SIZE


def _found_seal(card: int, name: str, number: int, frame_bytes: int,
                on_foreign: Callable[[ForeignEntry], None]) -> Seal | None:
    """The seal of segment `number` (`name`) as the card holds it: its age header and whole sealed chunks
    (an empty prefix if it was cut off before its first chunk), never final; None if it is gone, or not
    a file the box wrote (`on_foreign` is told: nothing of it is bound).

    OSError if the card cannot be read (the journal entry then waits for the next start)."""
    try:
        src = _open_segment(card, name)
    except ForeignEntry as error:
        on_foreign(error)
        return None
    if src is None:
        return None
    with src:
        start, chunks = _whole_chunks(src)
        length = start + chunks * SEALED_CHUNK_SIZE
        src.seek(0)
        digest = hashlib.sha256()
        left = length
        while left:
            block = src.read(min(left, _HASH_BLOCK))
            if not block:
                raise OSError(errno.EIO, f"segment {name} shrank while it was being sealed")
            digest.update(block)
            left -= len(block)
    return Seal(number, length, digest.hexdigest(), chunk_frames(chunks, frame_bytes), final=False)
