"""Start-up recovery: finishing the sessions that a power cut or a crash left open.

The box cannot read the card's manifests (they are encrypted to the supervisors), so it works from its
journal (`consentbox.recording.journal`), which is never behind the card. For each unfinished session
whose files are on the card it writes one more manifest version: the open capture interval closed,
the segments the journal knows plus any later segment file on the card, and the end reason
`interrupted`. A session whose destruction (a withdrawal) was cut short is destroyed. Nothing is
decrypted; the only card files read are the public headers of segments. docs/reliability.md
describes the rules.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from consentbox.core.reasons import EndReason, Problem
from consentbox.crypto import HeaderError, X25519Recipient
from consentbox.crypto.format import read_header
from consentbox.crypto.stream import CHUNK_SIZE, NONCE_SIZE, SEALED_CHUNK_SIZE
from consentbox.hw.ports import Card
from consentbox.recording.journal import Journal, JournalEntry
from consentbox.recording.manifest import Manifest, Segment, segment_name
from consentbox.recording.session import remove_session_files, session_files, write_manifest
from consentbox.recording.wav import HEADER_SIZE


@dataclass(frozen=True)
class Recovered:
    """A session found unfinished at start-up, and how it was finished."""

    session: str
    segments: int  # segment files its new manifest lists (0 when destroyed)
    end_reason: EndReason  # the end reason written: `interrupted`, unless the box had already ended it
    destroyed: bool  # its files were being destroyed (a withdrawal) and now are


def recover_interrupted(
    card: Card,
    journal: Journal,
    recipients: Sequence[X25519Recipient],
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> list[Recovered]:
    """Finish every session the journal still lists, and forget it; returns what was done, by id.

    While there is no card nothing is done: the entries wait for a start with the card in. An entry
    whose session has no file on the card is dropped (another card is in, or nothing of the session
    ever reached this one). An entry the card cannot take now (read-only, failing, no recipients to
    encrypt to) stays for the next start. Running it again finds nothing left to do.
    """
    if Problem.NO_CARD in card.problems():
        return []
    recovered = []
    for entry in journal.pending():
        if not entry.destroy and not recipients:
            continue  # no key to encrypt a manifest to until the box is provisioned again
        try:
            done = _finish(card.path, entry, recipients, random_bytes)
        except OSError:
            continue
        journal.remove(entry.manifest.session)
        if done is not None:
            recovered.append(done)
    return recovered


def _finish(
    card: Path, entry: JournalEntry, recipients: Sequence[X25519Recipient], random_bytes: Callable[[int], bytes],
) -> Recovered | None:
    """Finish one session on `card`; None if it has no files there. OSError if the card refuses."""
    session = entry.manifest.session
    if not session_files(card, session):
        return None
    if entry.destroy:
        remove_session_files(card, session)
        return Recovered(session, 0, entry.manifest.end_reason or EndReason.WITHDRAWN, destroyed=True)
    # A journal that already holds the final manifest was cut off only before the card got it.
    manifest = entry.manifest if entry.manifest.end_reason is not None else interrupted(card, entry.manifest)
    write_manifest(card, manifest, recipients, random_bytes)
    return Recovered(session, len(manifest.segments), manifest.end_reason or EndReason.INTERRUPTED,
                     destroyed=False)


def interrupted(card: Path, manifest: Manifest) -> Manifest:
    """`manifest` (from the journal) ended as `interrupted`, with what the card shows of its last moments.

    A segment file beyond those listed was begun just before the box stopped (in the journal's last
    interval, which the journal learns of before its first segment exists). An open interval is
    closed with the frames in its segments' sealed chunks, counted from the files' sizes without
    decrypting them; that is a lower bound, and its `end` is its start plus that many frames' time.
    The session's `ended` is the end of its last interval (the last moment known to be recorded).
    """
    segments = list(manifest.segments)
    last = len(manifest.intervals) - 1
    while last >= 0 and (card / segment_name(manifest.session, len(segments))).exists():
        segments.append(Segment(segment_name(manifest.session, len(segments)), last))
    intervals = list(manifest.intervals)
    if intervals and intervals[-1].end is None:
        frames = sum(_sealed_frames(card / s.name, s, manifest) for s in segments if s.interval == last)
        start = intervals[-1].start
        intervals[-1] = replace(intervals[-1], end=start + frames / manifest.audio.rate, frames=frames)
    ended = intervals[-1].end if intervals else max((c.offset for c in manifest.consents), default=0.0)
    return replace(manifest, intervals=tuple(intervals), segments=tuple(segments),
                   end_reason=EndReason.INTERRUPTED, ended=ended)


def _sealed_frames(path: Path, segment: Segment, manifest: Manifest) -> int:
    """Whole frames of audio in the segment's complete chunks: exact if it was closed, else from its size."""
    frame_bytes = manifest.audio.frame_bytes
    if segment.plaintext_bytes is not None:
        return (segment.plaintext_bytes - HEADER_SIZE) // frame_bytes
    try:
        with open(path, "rb") as src:
            read_header(src)  # the public header: recipients' stanzas and a MAC, no key needed
            payload = os.fstat(src.fileno()).st_size - src.tell() - NONCE_SIZE
    except (FileNotFoundError, HeaderError):
        return 0  # gone, or cut off inside its header: no audio in it
    chunks = max(0, payload) // SEALED_CHUNK_SIZE
    return max(0, chunks * CHUNK_SIZE - HEADER_SIZE) // frame_bytes
