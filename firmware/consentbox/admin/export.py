"""Exporting sessions from a card: each session's segments decrypted in order and joined into one WAV.

By default each session is first checked against its box's seals (`consentbox.admin.evidence`): a
session whose files are not all as a trusted box sealed them is refused, and only the bytes the box
sealed are decrypted, their audio exactly the frames it sealed. A session bound only up to
checkpoints (a power cut the box never recovered from) or recovered as interrupted is exported as
truncated. Unverified (`--unverified`), the export trusts the card as far as age authenticates it:
a segment cut short gives every chunk that authenticates, and one whose final chunk authenticates
must match the size and SHA-256 its manifest recorded. Either way, a segment's plaintext must match
its manifest's digest where it lists one. Everything streams: memory holds about one 64 KiB chunk
whatever the length.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO, cast

from consentbox.admin.boxes import AcceptedBoxes
from consentbox.admin.evidence import CardFiles, FileEvidence, SessionEvidence, Verdict, verify_session
from consentbox.admin.output import whole_file
from consentbox.admin.progress import Progress
from consentbox.admin.silences import SilenceFinder, Silences
from consentbox.core.errors import ConsentBoxError
from consentbox.core.reasons import EndReason
from consentbox.crypto import AgeReader, HeaderError, HeaderMacError, Identity, NoIdentityMatch
from consentbox.recording.manifest import (
    Manifest,
    Segment,
    extract_name,
    manifest_name,
    segment_index,
    segment_name,
)
from consentbox.recording.wav import (
    HEADER_SIZE,
    MAX_DATA_SIZE,
    AudioFormat,
    WavHeaderError,
    exact_header,
    parse_header,
)
from consentbox.storage.card_files import open_for_reading

_HASHED = 1 << 20  # bytes read at a time past where a decryption stopped
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


class RefusedError(ExportError):
    """A session's files are not as its box sealed them (see `SessionEvidence.refusal`): it is not exported."""


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
    sealed: FileEvidence | None = None  # what the box's seals bind of it; None when not verified

    def to_mapping(self) -> dict[str, Any]:
        """The report as plain JSON values."""
        seal = None if self.sealed is None else {"verdict": self.sealed.verdict.value,
                                                 "bytes": self.sealed.bound_bytes, "frames": self.sealed.frames}
        return {"name": self.name, "listed": self.listed, "found": self.found, "complete": self.complete,
                "plaintext_bytes": self.plaintext_bytes, "audio_bytes": self.audio_bytes,
                "digest": self.digest, "damage": self.damage, "seal": seal}


@dataclass(frozen=True)
class SessionReport:
    """What the export of one session found and wrote."""

    manifest: Manifest
    segments: tuple[SegmentReport, ...]
    frames: int
    dropped_bytes: int
    evidence: SessionEvidence | None = None  # what the box's seals bind; None: exported --unverified
    silences: Silences = Silences(heard=True, stretches=())  # what the microphone heard, found in the audio

    @property
    def truncated(self) -> bool:
        """Whether audio may be missing: verified, a session not sealed complete by its box; unverified, a
        segment cut short, damaged or missing, a partial frame dropped, or a session that the box stopped
        without ending (a power cut or crash)."""
        if self.evidence is not None:  # a segment the manifest lists but no seal names is missing too
            return not self.evidence.complete or any(not s.found for s in self.segments)
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
            if segment.sealed is not None and segment.sealed.verdict is Verdict.PREFIX:
                notes.append(f"segment {segment.name} is sealed by the box only up to {segment.sealed.bound_bytes} "
                             f"bytes ({segment.sealed.frames} frames): nothing after them is exported")
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
            notes.append("the session was never finalised: the box stopped while it was running"
                         + ("; put the card back in the box and start it, to seal what it holds"
                            if self.evidence is not None else ""))
        elif self.manifest.end_reason is EndReason.INTERRUPTED:
            notes.append("the box stopped while the session was running (a power cut or crash) and marked "
                         "it interrupted when it started again")
        return notes

    def silence_words(self) -> str | None:
        """What the export found of silence, in words: that all of it is silent, or each long silent stretch
        ("silent from 0:01:02 for 28 s"); None when the microphone was heard throughout."""
        if self.frames and not self.silences.heard:
            return "ALL SILENT: the microphone heard nothing (check it before the next session)"
        stretches = [f"silent from {clock_time(s.start)} for {round(s.seconds)} s" for s in self.silences.stretches]
        if not stretches:
            return None
        more = len(stretches) - _SILENCES_SHOWN
        return ", ".join(stretches[:_SILENCES_SHOWN]) + (f" (and {more} more)" if more > 0 else "")

    def summary(self) -> str:
        """The one line printed for this session: its date, length and end, and what to know about it."""
        end = "not recorded" if self.manifest.end_reason is None else self.manifest.end_reason.value
        line = (f"{self.manifest.session}: recorded {self.manifest.started.isoformat(timespec='minutes')}, "
                f"{clock_time(self.duration)} exported, end: {end}")
        if self.manifest.withdrawn:
            line += ", consent was withdrawn"
        silence = self.silence_words()
        if silence is not None:
            line += f", {silence}"
        if self.truncated:
            notes = self.notes() or ["the box did not seal it complete"]
            line += f", TRUNCATED: {notes[0]}" + (f" (and {len(notes) - 1} more)" if len(notes) > 1 else "")
        if self.evidence is None:
            line += ", UNVERIFIED: not checked against the box's seals"
        return line

    def to_json(self) -> bytes:
        """The `<id>.json` written beside the WAV: the manifest, plus what the export found."""
        values = self.manifest.to_mapping()
        values["export"] = {
            "verified": self.evidence is not None,
            "box": None if self.evidence is None else {"label": self.evidence.box,
                                                       "device_key": str(self.evidence.extract.device_key)},
            "truncated": self.truncated,
            "frames": self.frames,
            "duration_seconds": self.duration,
            "dropped_bytes": self.dropped_bytes,
            "heard": self.silences.heard,
            "silences": [{"start_seconds": s.start, "seconds": s.seconds} for s in self.silences.stretches],
            "segments": [segment.to_mapping() for segment in self.segments],
            "notes": self.notes(),
        }
        return json.dumps(values, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"


#: The silent stretches a session's line names; the report beside its WAV lists all of them.
_SILENCES_SHOWN = 3


def clock_time(seconds: float) -> str:
    """A time into a recording, or a length, as H:MM:SS."""
    minutes, whole = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{whole:02d}"


def export_card(
    card: Path,
    out: Path,
    identities: Sequence[Identity],
    boxes: AcceptedBoxes | None,
    *,
    progress: bool = False,
    messages: TextIO = sys.stderr,
) -> Outcome:
    """Export every session on `card` to `out`/<id>.wav and <id>.json, each file whole or not at all.

    Each session is checked against the seals of its box, which `boxes` must accept; with `boxes` None
    (`--unverified`) nothing is checked, and each line and report says so. One line per session goes to
    `messages` (with a progress bar below when `progress`). A session that fails or is refused is
    reported and skipped; the outcome is the worst of all sessions. ExportError if the card cannot be
    listed at all.
    """
    try:
        listing = CardFiles.read(card)  # once: a card may hold thousands of sessions
    except OSError as error:
        raise ExportError(f"cannot read the card at {card}: {error.strerror or error}") from None
    sessions = listing.recorded_sessions()
    if not sessions:
        messages.write(f"no sessions on {card} (no session manifests or segments)\n")
        return Outcome.INTACT
    if boxes is None:
        messages.write("consentbox-admin: warning: --unverified: no file is checked against its box's seals; "
                       "a forged, spliced or cut recording would be exported as if genuine\n")
    out.mkdir(mode=0o700, exist_ok=True)  # recordings in the clear: the supervisor's eyes only
    # A verified export reads each file twice: to check its seals, then to decrypt what they bind.
    reads = 1 if boxes is None else 2
    bar = Progress(messages, reads * card_bytes(listing, sessions), visible=progress)
    outcomes = []
    for session in sessions:
        try:
            evidence = None
            if boxes is not None:
                evidence = verify_session(card, session, identities, boxes, files=listing, on_read=bar.advance)
                if not evidence.intact:
                    raise RefusedError(f"refused: {evidence.refusal()}")
            manifest_path = card / manifest_name(session)
            if manifest_path.name not in listing.names(session):
                raise ExportError(f"its manifest {manifest_path.name} is missing from the card: nothing says "
                                  "what its segments hold")
            bar.advance(manifest_path.stat().st_size)
            manifest = read_manifest(manifest_path, identities)
            with whole_file(out / f"{manifest.session}.json") as report_out, \
                    whole_file(out / f"{manifest.session}.wav") as wav_out:
                report = export_session(card, manifest, identities, wav_out, evidence=evidence,
                                        names=listing.names(session), on_read=bar.advance)
                report_out.write(report.to_json())
        except (ConsentBoxError, OSError) as error:
            bar.say(f"{session}: not exported: {error}")
            outcomes.append(Outcome.FAILED)
            continue
        bar.say(report.summary())
        outcomes.append(Outcome.TRUNCATED if report.truncated else Outcome.INTACT)
    bar.close()
    return max(outcomes, key=_SEVERITY.index)


# Worst last: one failed session outweighs any number of truncated ones.
_SEVERITY = [Outcome.INTACT, Outcome.TRUNCATED, Outcome.FAILED]


def card_bytes(listing: CardFiles, sessions: Sequence[str]) -> int:
    """Bytes of the recordings (manifests and segments) of `sessions`, which an export reads (for a progress bar)."""
    total = 0
    for session in sessions:
        for name in listing.names(session):
            if name.endswith(".age") and name != extract_name(session):
                with contextlib.suppress(OSError):  # gone since the listing: the export says so
                    total += (listing.card / name).stat().st_size
    return total


def read_manifest(path: Path, identities: Sequence[Identity]) -> Manifest:
    """Decrypt and parse a manifest file; any damage is an error, since it is always replaced whole."""
    data = bytearray()
    with open_for_reading(path) as src:
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


def _segment_files(card: Path, session: str, names: Sequence[str]) -> dict[int, Path]:
    """The session's segment files among `names` by number; SegmentNameError names one the box did not name."""
    return {index: card / name for name in names if (index := segment_index(session, name)) is not None}


def export_session(
    card: Path,
    manifest: Manifest,
    identities: Sequence[Identity],
    wav: BinaryIO,
    *,
    evidence: SessionEvidence | None = None,
    names: Sequence[str] | None = None,
    on_read: BytesRead = lambda size: None,
) -> SessionReport:
    """Write the session's audio to `wav` (seekable) as one WAV file; `on_read` hears of each card read.

    With `evidence` (an intact `verify_session` result), only the bytes its seals bind are read, and each
    segment's audio must be exactly the frames they bind (ExportError otherwise); without it, every
    segment file on the card, salvaging what authenticates. `names` is the card's listing, if made already.
    """
    bound = None if evidence is None else _bound(evidence)
    if bound is None:
        on_card = _segment_files(card, manifest.session, os.listdir(card) if names is None else names)
    else:
        on_card = {number: card / found.name for number, found in bound.items()}
    count = max(len(manifest.segments), max(on_card, default=-1) + 1)
    wav.write(bytes(HEADER_SIZE))  # replaced by the exact header once the length is known
    joiner = _FrameJoiner(wav, SilenceFinder(manifest.audio), manifest.audio.frame_bytes)
    reports = []
    for index in range(count):
        listed = manifest.segments[index] if index < len(manifest.segments) else None
        name = segment_name(manifest.session, index)
        if index not in on_card:
            reports.append(SegmentReport(name, listed is not None, False, False, 0, 0, "missing", None))
            continue
        sealed = None if bound is None else bound[index]
        reports.append(_copy_segment(on_card[index], listed, identities, manifest.audio, joiner, on_read, sealed))
    audio_bytes = wav.tell() - HEADER_SIZE
    if audio_bytes > MAX_DATA_SIZE:
        raise ExportError(f"session {manifest.session} has {audio_bytes} bytes of audio, more than one WAV "
                          "file can hold (4 GiB)")
    wav.seek(0)
    wav.write(exact_header(manifest.audio, audio_bytes))
    wav.seek(0, os.SEEK_END)
    return SessionReport(manifest, tuple(reports), audio_bytes // manifest.audio.frame_bytes, joiner.dropped,
                         evidence, joiner.silences.finish())


def _bound(evidence: SessionEvidence) -> dict[int, FileEvidence]:
    """The session's bound segments by number (all of its segments, since the evidence is intact)."""
    if not evidence.intact:
        raise ValueError(f"session {evidence.session} is not intact: {evidence.refusal()}")
    return {found.segment: found for found in evidence.segments() if found.segment is not None}


class _FrameJoiner:
    """Writes segments' audio one after another, keeping each segment to whole frames, and lets `silences`
    hear what it writes."""

    def __init__(self, out: BinaryIO, silences: SilenceFinder, frame_bytes: int) -> None:
        self._out = out
        self.silences = silences
        self._frame_bytes = frame_bytes
        self._partial = b""
        self.dropped = 0

    def write(self, audio: bytes) -> None:
        """Write the whole frames of `audio`, holding back a partial frame at its end."""
        if self._partial:
            audio = self._partial + audio
        whole = len(audio) - len(audio) % self._frame_bytes
        frames = audio[:whole] if whole != len(audio) else audio
        self._out.write(frames)
        self.silences.hear(frames)
        self._partial = audio[whole:]

    def end_segment(self) -> int:
        """Drop a partial frame left at the end of a segment (cut short mid-frame); returns its size."""
        dropped, self._partial = len(self._partial), b""
        self.dropped += dropped
        return dropped


def _copy_segment(
    path: Path,
    listed: Segment | None,
    identities: Sequence[Identity],
    audio: AudioFormat,
    joiner: _FrameJoiner,
    on_read: BytesRead,
    sealed: FileEvidence | None,
) -> SegmentReport:
    """Decrypt one segment into `joiner`: all of it, or with `sealed` only the bytes its seals bind,
    holding exactly the frames they bind."""
    with open_for_reading(path) as file:
        bound = None if sealed is None else _SealedBytes(file, sealed)
        src = file if bound is None else cast(BinaryIO, bound)  # AgeReader only reads, reads lines and tells
        try:
            reader = AgeReader(src, identities)
        except HeaderError as error:
            # Cut off while its header was being written: nothing of it can be read.
            on_read(os.fstat(file.fileno()).st_size)
            if sealed is not None and sealed.frames:
                raise ExportError(f"segment {path.name}: {error}") from None
            return SegmentReport(path.name, listed is not None, True, False, 0, 0, "unverified", str(error),
                                 sealed)
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
        on_read((os.fstat(file.fileno()).st_size if sealed is None else sealed.bound_bytes) - read)
        if bound is not None:
            bound.check()
    dropped = joiner.end_segment()
    complete = reader.damage is None
    audio_bytes = max(0, plaintext_bytes - HEADER_SIZE) - dropped
    if sealed is not None:
        _check_sealed_audio(path.name, sealed, complete, audio_bytes // audio.frame_bytes)
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
                         verdict, damage, sealed)


def _check_sealed_audio(name: str, sealed: FileEvidence, complete: bool, frames: int) -> None:
    """The audio decrypted from a segment's bound bytes is exactly what the box sealed: whole if it sealed
    the whole file, and exactly the frames it counted."""
    if sealed.verdict is Verdict.WHOLE and not complete:
        raise ExportError(f"segment {name} is sealed whole by the box but does not decrypt whole: it was "
                          "encrypted by someone else")
    if frames != sealed.frames:
        longer = "longer" if frames > sealed.frames else "shorter"
        raise ExportError(f"segment {name} holds {frames} frames of audio, the box sealed {sealed.frames}: "
                          f"{longer} than signed")


class _SealedBytes:
    """A segment file read only as far as its seals bind it, hashed as it is read: what is decrypted is
    then exactly what was verified, even if the card changes between the check and the export."""

    def __init__(self, file: BinaryIO, sealed: FileEvidence) -> None:
        assert sealed.seal is not None, "a bound segment has a seal"
        self._file = file
        self._name = sealed.name
        self._seal = sealed.seal
        self._left = sealed.bound_bytes
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        """At most `size` bytes (all that is bound, if negative), never past the bound bytes."""
        return self._took(self._file.read(self._left if size < 0 else min(size, self._left)))

    def readline(self, size: int = -1) -> bytes:
        """One line (the age header's), never past the bound bytes."""
        return self._took(self._file.readline(self._left if size < 0 else min(size, self._left)))

    def tell(self) -> int:
        """The position in the file."""
        return self._file.tell()

    def check(self) -> None:
        """Read what is left of the bound bytes (the decryption may stop before); ExportError unless they
        are the sealed ones."""
        while self._left and self.read(_HASHED):
            pass
        if self._left or self._digest.hexdigest() != self._seal.sha256:
            raise ExportError(f"segment {self._name} changed on the card while it was exported: export again")

    def _took(self, data: bytes) -> bytes:
        self._left -= len(data)
        self._digest.update(data)
        return data


def _check_header(name: str, header: bytes, audio: AudioFormat) -> None:
    try:
        parsed = parse_header(header)
    except WavHeaderError as error:
        raise ExportError(f"segment {name}: {error}") from None
    if not parsed.streaming or parsed.audio != audio:
        raise ExportError(f"segment {name} starts with a WAV header for {parsed.audio}, not the "
                          f"manifest's {audio}: it belongs to another recording")

