"""Exporting sessions from a card: each session's segments decrypted in order and joined into one WAV.

The export trusts the card only as far as age authenticates it. A segment cut short by a power cut
gives every chunk that authenticates and the session is reported as truncated; a segment whose
final chunk authenticates must match the size and SHA-256 its manifest recorded, or the session is
refused. Everything streams: memory holds about one 64 KiB chunk whatever the length.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from consentbox.admin.output import whole_file
from consentbox.admin.progress import Progress
from consentbox.core.errors import ConsentBoxError
from consentbox.core.reasons import EndReason
from consentbox.crypto import AgeReader, HeaderError, HeaderMacError, NoIdentityMatch, X25519Identity
from consentbox.recording.manifest import Manifest, Segment, manifest_name, segment_name
from consentbox.recording.wav import (
    HEADER_SIZE,
    MAX_DATA_SIZE,
    AudioFormat,
    WavHeaderError,
    exact_header,
    parse_header,
)

MANIFEST_SUFFIX = ".manifest.age"
# Real manifests are a few KiB; the cap only stops a hostile file from filling memory.
_MAX_MANIFEST_BYTES = 4 << 20

BytesRead = Callable[[int], None]  # told how many more bytes of the card were read


class Outcome(enum.IntEnum):
    """How the export of a card went; the value is the exit status of `consentbox-admin export`."""

    INTACT = 0
    FAILED = 1
    TRUNCATED = 3


class ExportError(ConsentBoxError, ValueError):
    """A session cannot be exported as it is: its manifest or a complete segment contradicts the card."""


@dataclass(frozen=True)
class SegmentReport:
    """What the export found of one segment, listed in the manifest or found beside it."""

    name: str
    listed: bool
    found: bool
    complete: bool
    plaintext_bytes: int
    audio_bytes: int
    digest: str  # "verified", "unverified" (no digest to check, or not complete) or "missing"
    damage: str | None

    def to_mapping(self) -> dict[str, Any]:
        """The report as plain JSON values."""
        return {"name": self.name, "listed": self.listed, "found": self.found, "complete": self.complete,
                "plaintext_bytes": self.plaintext_bytes, "audio_bytes": self.audio_bytes,
                "digest": self.digest, "damage": self.damage}


@dataclass(frozen=True)
class SessionReport:
    """What the export of one session found and wrote."""

    manifest: Manifest
    segments: tuple[SegmentReport, ...]
    frames: int
    dropped_bytes: int

    @property
    def truncated(self) -> bool:
        """Whether audio may be missing: a segment cut short, damaged or missing, a partial frame dropped,
        or a session that the box stopped without ending (a power cut or crash)."""
        return (self.dropped_bytes > 0 or any(not s.complete for s in self.segments)
                or self.manifest.end_reason in (None, EndReason.INTERRUPTED))

    @property
    def duration(self) -> float:
        """Seconds of audio exported."""
        return self.frames / self.manifest.audio.rate

    def notes(self) -> list[str]:
        """One sentence for each thing the supervisor should know about this export."""
        notes = []
        for segment in self.segments:
            if not segment.found:
                notes.append(f"segment {segment.name} is missing from the card")
            elif segment.damage is not None:
                notes.append(f"segment {segment.name}: {segment.damage}")
            if segment.found and not segment.listed:
                notes.append(f"segment {segment.name} was not yet in the manifest (the box stopped "
                             "right after starting it): included")
        if self.dropped_bytes:
            notes.append(f"{self.dropped_bytes} bytes of an incomplete last frame were dropped")
        if self.manifest.end_reason is None:
            notes.append("the session was never finalised: the box stopped while it was running")
        elif self.manifest.end_reason is EndReason.INTERRUPTED:
            notes.append("the box stopped while the session was running (a power cut or crash) and marked "
                         "it interrupted when it started again")
        return notes

    def summary(self) -> str:
        """The one line printed for this session."""
        minutes, seconds = divmod(round(self.duration), 60)
        line = f"{self.manifest.session}: {minutes // 60}:{minutes % 60:02d}:{seconds:02d} exported"
        if self.manifest.withdrawn:
            line += ", consent was withdrawn"
        if self.truncated:
            notes = self.notes()
            line += f", TRUNCATED: {notes[0]}" + (f" (and {len(notes) - 1} more)" if len(notes) > 1 else "")
        return line

    def to_json(self) -> bytes:
        """The `<id>.json` written beside the WAV: the manifest, plus what the export found."""
        values = self.manifest.to_mapping()
        values["export"] = {
            "truncated": self.truncated,
            "frames": self.frames,
            "duration_seconds": self.duration,
            "dropped_bytes": self.dropped_bytes,
            "segments": [segment.to_mapping() for segment in self.segments],
            "notes": self.notes(),
        }
        return json.dumps(values, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"


def export_card(
    card: Path,
    out: Path,
    identities: Sequence[X25519Identity],
    *,
    progress: bool = False,
    messages: TextIO = sys.stderr,
) -> Outcome:
    """Export every session on `card` to `out`/<id>.wav and <id>.json, each file whole or not at all.

    One line per session goes to `messages` (with a progress bar below when `progress`). A session
    that fails is reported and skipped; the outcome is the worst of all sessions. ExportError if
    the card cannot be listed at all.
    """
    try:
        manifests = find_manifests(card)
    except OSError as error:
        raise ExportError(f"cannot read the card at {card}: {error.strerror or error}") from None
    if not manifests:
        messages.write(f"no sessions on {card} (no *{MANIFEST_SUFFIX} files)\n")
        return Outcome.INTACT
    out.mkdir(mode=0o700, exist_ok=True)  # recordings in the clear: the supervisor's eyes only
    bar = Progress(messages, card_bytes(card, manifests), visible=progress)
    outcomes = []
    for path in manifests:
        try:
            bar.advance(path.stat().st_size)
            manifest = read_manifest(path, identities)
            with whole_file(out / f"{manifest.session}.json") as report_out, \
                    whole_file(out / f"{manifest.session}.wav") as wav_out:
                report = export_session(card, manifest, identities, wav_out, on_read=bar.advance)
                report_out.write(report.to_json())
        except (ConsentBoxError, OSError) as error:
            bar.say(f"{path.name}: not exported: {error}")
            outcomes.append(Outcome.FAILED)
            continue
        bar.say(report.summary())
        outcomes.append(Outcome.TRUNCATED if report.truncated else Outcome.INTACT)
    bar.close()
    return max(outcomes, key=_SEVERITY.index)


# Worst last: one failed session outweighs any number of truncated ones.
_SEVERITY = [Outcome.INTACT, Outcome.TRUNCATED, Outcome.FAILED]


def find_manifests(card: Path) -> list[Path]:
    """The session manifests on `card`, in name order; OSError if the card cannot be listed."""
    return sorted(card / name for name in os.listdir(card)
                  if name.endswith(MANIFEST_SUFFIX) and not name.startswith("."))


def card_bytes(card: Path, manifests: Sequence[Path]) -> int:
    """Bytes of the files an export of `manifests` reads (for a progress bar)."""
    prefixes = tuple(path.name.removesuffix(MANIFEST_SUFFIX) + "." for path in manifests)
    return sum(entry.stat().st_size for entry in os.scandir(card)
               if entry.name.startswith(prefixes) and entry.name.endswith(".age"))


def read_manifest(path: Path, identities: Sequence[X25519Identity]) -> Manifest:
    """Decrypt and parse a manifest file; any damage is an error, since it is always replaced whole."""
    data = bytearray()
    with open(path, "rb") as src:
        for chunk in AgeReader(src, identities).chunks():
            data += chunk
            if len(data) > _MAX_MANIFEST_BYTES:
                raise ExportError(f"{path.name} is over {_MAX_MANIFEST_BYTES} bytes: "
                                  "not a ConsentBox manifest")
    manifest = Manifest.from_json(bytes(data))
    if manifest_name(manifest.session) != path.name:
        raise ExportError(f"{path.name} holds the manifest of session {manifest.session}: "
                          "the file was renamed")
    return manifest


def _segment_files(card: Path, session: str) -> dict[int, Path]:
    pattern = re.compile(rf"{session}\.(\d{{3,}})\.wav\.age")
    return {int(match[1]): card / name for name in os.listdir(card) if (match := pattern.fullmatch(name))}


def export_session(
    card: Path,
    manifest: Manifest,
    identities: Sequence[X25519Identity],
    wav: BinaryIO,
    *,
    on_read: BytesRead = lambda size: None,
) -> SessionReport:
    """Write the session's audio to `wav` (seekable) as one WAV file; `on_read` hears of each card read."""
    on_card = _segment_files(card, manifest.session)
    count = max(len(manifest.segments), max(on_card, default=-1) + 1)
    wav.write(bytes(HEADER_SIZE))  # replaced by the exact header once the length is known
    joiner = _FrameJoiner(wav, manifest.audio.frame_bytes)
    reports = []
    for index in range(count):
        listed = manifest.segments[index] if index < len(manifest.segments) else None
        name = segment_name(manifest.session, index)
        if index not in on_card:
            reports.append(SegmentReport(name, listed is not None, False, False, 0, 0, "missing", None))
            continue
        reports.append(_copy_segment(on_card[index], listed, identities, manifest.audio, joiner, on_read))
    audio_bytes = wav.tell() - HEADER_SIZE
    if audio_bytes > MAX_DATA_SIZE:
        raise ExportError(f"session {manifest.session} has {audio_bytes} bytes of audio, more than one WAV "
                          "file can hold (4 GiB)")
    wav.seek(0)
    wav.write(exact_header(manifest.audio, audio_bytes))
    wav.seek(0, os.SEEK_END)
    return SessionReport(manifest, tuple(reports), audio_bytes // manifest.audio.frame_bytes, joiner.dropped)


class _FrameJoiner:
    """Writes segments' audio one after another, keeping each segment to whole frames."""

    def __init__(self, out: BinaryIO, frame_bytes: int) -> None:
        self._out = out
        self._frame_bytes = frame_bytes
        self._partial = b""
        self.dropped = 0

    def write(self, audio: bytes) -> None:
        """Write the whole frames of `audio`, holding back a partial frame at its end."""
        if self._partial:
            audio = self._partial + audio
        whole = len(audio) - len(audio) % self._frame_bytes
        self._out.write(audio[:whole] if whole != len(audio) else audio)
        self._partial = audio[whole:]

    def end_segment(self) -> int:
        """Drop a partial frame left at the end of a segment (cut short mid-frame); returns its size."""
        dropped, self._partial = len(self._partial), b""
        self.dropped += dropped
        return dropped


def _copy_segment(
    path: Path,
    listed: Segment | None,
    identities: Sequence[X25519Identity],
    audio: AudioFormat,
    joiner: _FrameJoiner,
    on_read: BytesRead,
) -> SegmentReport:
    with open(path, "rb") as src:
        try:
            reader = AgeReader(src, identities)
        except HeaderError as error:
            # Cut off while its header was being written: nothing of it can be read.
            on_read(os.fstat(src.fileno()).st_size)
            return SegmentReport(path.name, listed is not None, True, False, 0, 0, "unverified", str(error))
        except (NoIdentityMatch, HeaderMacError) as error:
            raise ExportError(f"segment {path.name}: {error}") from None
        digest = hashlib.sha256()
        plaintext_bytes = 0
        read = 0
        header = b""
        for chunk in reader.chunks(salvage=True):
            digest.update(chunk)
            plaintext_bytes += len(chunk)
            position = src.tell()
            on_read(position - read)
            read = position
            if len(header) < HEADER_SIZE:
                missing = HEADER_SIZE - len(header)
                header, chunk = header + chunk[:missing], chunk[missing:]
                if len(header) == HEADER_SIZE:
                    _check_header(path.name, header, audio)
            joiner.write(chunk)
        on_read(os.fstat(src.fileno()).st_size - read)
    dropped = joiner.end_segment()
    complete = reader.damage is None
    audio_bytes = max(0, plaintext_bytes - HEADER_SIZE) - dropped
    if not complete or listed is None or not listed.closed:
        verdict = "unverified"
    elif (plaintext_bytes, digest.hexdigest()) != (listed.plaintext_bytes, listed.sha256):
        raise ExportError(f"segment {path.name} does not match the size and SHA-256 in its manifest: "
                          "the file was replaced or edited")
    else:
        verdict = "verified"
    if complete and len(header) < HEADER_SIZE:
        raise ExportError(f"segment {path.name} is complete but shorter than a WAV header: it was edited")
    damage = None if reader.damage is None else str(reader.damage)
    return SegmentReport(path.name, listed is not None, True, complete, plaintext_bytes, audio_bytes,
                         verdict, damage)


def _check_header(name: str, header: bytes, audio: AudioFormat) -> None:
    try:
        parsed = parse_header(header)
    except WavHeaderError as error:
        raise ExportError(f"segment {name}: {error}") from None
    if not parsed.streaming or parsed.audio != audio:
        raise ExportError(f"segment {name} starts with a WAV header for {parsed.audio}, not the "
                          f"manifest's {audio}: it belongs to another recording")

