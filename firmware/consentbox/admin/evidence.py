"""Whether a session's files on a card are the ones its box wrote: each checked against the box's seals.

The box signs a `seal` ledger entry for what it writes (`consentbox.recording.seal`): each segment as
it is opened (its age header), every 32 chunks while it is written, and when it is closed; each
manifest version; and, in start-up recovery, each segment a power cut left unsealed, as found. The
card's copy of the session's entries, `<id>.ledger.age`, is signed by the box as a whole. So, given
the supervisor's or an auditor's identity and the boxes this workstation trusts, `verify_session`
says of every file of one session whether the box wrote it, and how much of it:

- the extract must decrypt and verify, and its device key be a trusted box's (else the session cannot
  be verified at all: ExtractError, NoExtractError or UnknownBoxError);
- the manifest must be exactly the last version the box sealed (an older one is a rollback);
- each segment must match every one of its seals: a final seal binds the whole file (its length and
  digest), the others a prefix (the file at least that long, the prefix's digest equal); a segment
  with no seal, or a sealed segment missing from the card, is refused;
- a session the ledger says was destroyed has no files left to check; a file still there is refused.

Only ciphertext is read: no audio key is needed. `export` also decrypts the bound bytes and checks
their frames against the seals' counts. docs/formats.md ("What a verifier checks") says the same.
"""

from __future__ import annotations

import enum
import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from consentbox.admin.boxes import AcceptedBoxes
from consentbox.admin.extracts import load_extract
from consentbox.core.errors import ConsentBoxError
from consentbox.core.reasons import EndReason
from consentbox.crypto import Identity
from consentbox.ledger.entry import Entry, Kind
from consentbox.ledger.extract import Extract
from consentbox.recording.manifest import (
    SegmentNameError,
    extract_name,
    manifest_name,
    segment_index,
    segment_name,
)
from consentbox.recording.recorded import destroyed_mark_name
from consentbox.recording.seal import Seal
from consentbox.storage.card_files import open_for_reading
from consentbox.storage.ids import SESSION_ID_DIGITS, is_session_id

_READ = 1 << 20  # bytes hashed at a time

BytesRead = Callable[[int], None]  # told how many more bytes of the card were read


class EvidenceError(ConsentBoxError, ValueError):
    """A session's files cannot be checked at all (for instance, its extract is not on the card)."""


class NoExtractError(EvidenceError):
    """The card holds no `<id>.ledger.age` for a session that has files there: nothing binds them to a box."""


class Verdict(enum.Enum):
    """What the check found of one file of a session."""

    WHOLE = "whole"  # the whole file is what the box sealed as final
    PREFIX = "prefix"  # its first bytes are what a checkpoint or recovery sealed; only they are bound
    DESTROYED = "destroyed"  # sealed, and gone because the session was destroyed
    UNSEALED = "not sealed"  # no seal names it: the box did not write it (a forged or extra file)
    MISMATCH = "not the box's"  # its bytes are not the sealed ones: replaced, swapped, reordered or edited
    OLDER = "older version"  # a manifest version the box wrote, but not its last: put back (rollback)
    SHORTER = "shorter"  # shorter than a seal binds: cut
    LONGER = "longer"  # longer than its final seal: something was appended
    MISSING = "missing"  # sealed, and not on the card although the session was not destroyed
    NOT_DESTROYED = "present though destroyed"  # on the card after the ledger recorded its destruction

    @property
    def bound(self) -> bool:
        """Whether the file (or its absence) is as the box left it."""
        return self in (Verdict.WHOLE, Verdict.PREFIX, Verdict.DESTROYED)


@dataclass(frozen=True)
class FileEvidence:
    """One file of a session, on the card or sealed: what it was checked against and what was found."""

    name: str  # its name on the card
    segment: int | None  # its segment number, or None for the manifest (or a file not named as a segment)
    verdict: Verdict
    seal: Seal | None  # what binds it: the final seal, else the longest prefix; None if no seal names it
    problem: str | None  # for a verdict that is not `bound`: what is wrong, in a few words

    @property
    def bound_bytes(self) -> int:
        """How many bytes of the file (from its start) the box vouches for: 0 if none."""
        return self.seal.bytes if self.seal is not None and self.verdict.bound else 0

    @property
    def frames(self) -> int:
        """For a bound segment, the audio frames its bound bytes hold (what an export must deliver)."""
        if self.seal is None or not self.verdict.bound or self.seal.frames is None:
            return 0
        return self.seal.frames

    def refusal(self) -> str:
        """The one line that says why this file is refused (its name first)."""
        return f"{self.name}: {self.problem or self.verdict.value}"


@dataclass(frozen=True)
class SessionEvidence:
    """What `verify_session` found of one session: its verified extract, its seals and each file's verdict."""

    session: str
    box: str  # the trusted box's label (or that its key was given on the command line)
    extract: Extract  # the session's entries as its box signed them
    seals: tuple[Seal, ...]  # the session's seal entries, in ledger order
    # The manifest first (unless it is neither on the card nor sealed), then the segments by number, then
    # any file named as a segment but not numbered as the box numbers them.
    files: tuple[FileEvidence, ...]

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The session's ledger entries, in order (the extract's, without its boot entry)."""
        return self.extract.entries

    @property
    def end(self) -> Entry | None:
        """The session's `end` entry, if the box recorded one (a session ended by recovery included)."""
        return _last(self.entries, Kind.END)

    @property
    def destruction(self) -> Entry | None:
        """The session's `destruction` entry, if its recording was destroyed and the box receipted it."""
        return _last(self.entries, Kind.DESTRUCTION)

    @property
    def failures(self) -> tuple[FileEvidence, ...]:
        """The files that are not as the box left them (empty when the evidence is intact)."""
        return tuple(found for found in self.files if not found.verdict.bound)

    @property
    def intact(self) -> bool:
        """Whether every file is bound to the box (the session may still be truncated)."""
        return not self.failures

    @property
    def complete(self) -> bool:
        """Whether the whole recording is bound: intact, ended by the box (not as interrupted), its
        manifest and every segment sealed as final."""
        end = self.end
        return (self.intact and end is not None and end.fields["reason"] != EndReason.INTERRUPTED.value
                and bool(self.files) and all(found.verdict is Verdict.WHOLE for found in self.files))

    def segments(self) -> tuple[FileEvidence, ...]:
        """The bound segment files, by number: what an export reads."""
        return tuple(found for found in self.files if found.segment is not None and found.verdict.bound
                     and found.verdict is not Verdict.DESTROYED)

    def refusal(self) -> str:
        """The line saying why the session is refused: its first failing file (a segment before the manifest:
        the audio is what matters), and how many more."""
        failures = sorted(self.failures, key=lambda found: found.segment is None)
        if not failures:
            raise ValueError(f"session {self.session} is intact: nothing to refuse")
        more = f" (and {len(failures) - 1} more file(s))" if len(failures) > 1 else ""
        hint = "" if self.end is not None or self.destruction is not None else (
            "; if the box lost power, put the card back in the box and start it, so it recovers the session")
        return failures[0].refusal() + more + hint


@dataclass(frozen=True)
class CardFiles:
    """The names in a card's directory, grouped by the session id they begin with: list a card once,
    then check any number of its sessions."""

    card: Path
    by_session: Mapping[str, tuple[str, ...]]

    @classmethod
    def read(cls, card: Path) -> CardFiles:
        """The card's names now; OSError if it cannot be listed."""
        grouped: dict[str, list[str]] = defaultdict(list)
        for name in os.listdir(card):
            session = name[:SESSION_ID_DIGITS]
            if name[SESSION_ID_DIGITS:SESSION_ID_DIGITS + 1] == "." and is_session_id(session):
                grouped[session].append(name)
        return cls(card, MappingProxyType({session: tuple(sorted(names)) for session, names in grouped.items()}))

    def names(self, session: str) -> tuple[str, ...]:
        """The names of the card's files that begin with `session`'s id, sorted."""
        return self.by_session.get(session, ())

    def recorded_sessions(self) -> list[str]:
        """The sessions with a manifest or a file named as a segment on the card, in id order."""
        return sorted(session for session, names in self.by_session.items()
                      if any(name == manifest_name(session) or _named_segment(session, name) for name in names))


def verify_session(
    card: Path,
    session: str,
    identities: Sequence[Identity],
    boxes: AcceptedBoxes,
    *,
    files: CardFiles | None = None,
    on_read: BytesRead = lambda size: None,
) -> SessionEvidence:
    """Check every file of `session` on `card` against the seals in its extract (see the module's
    docstring): each file's verdict, and the entries they were checked against.

    `identities` decrypt the extract (a supervisor's or an auditor's); `boxes` accepts its device key
    (`admin.boxes.accepted_boxes`). `files` is the card's listing if the caller made it already;
    `on_read` hears of each read. Raises, when the session cannot be checked at all: NoExtractError
    (no extract on the card), ExtractError (it does not decrypt or verify), UnknownBoxError (its box is
    not trusted); OSError if the card cannot be read.
    """
    listing = files if files is not None else CardFiles.read(card)
    names = listing.names(session)
    if extract_name(session) not in names:
        raise NoExtractError(f"{card / extract_name(session)} is missing: nothing on the card binds session "
                             f"{session}'s files to a box")
    extract = load_extract(card / extract_name(session), identities, session=session)
    label = boxes.accept(extract.device_key)
    sealed: dict[int | None, list[Seal]] = defaultdict(list)
    for entry in extract.entries:
        if entry.kind is Kind.SEAL:
            sealed[entry.fields["segment"]].append(Seal(**entry.fields))
    destroyed = (_last(extract.entries, Kind.DESTRUCTION) is not None
                 or destroyed_mark_name(session) in names)
    manifest = _check_manifest(card, session, names, sealed.get(None, []), destroyed, on_read)
    checked = [] if manifest is None else [manifest]
    on_card: dict[int, str] = {}
    misnamed = []
    for name in names:
        try:
            number = segment_index(session, name)
        except SegmentNameError as error:
            misnamed.append(FileEvidence(name, None, Verdict.UNSEALED, None, str(error)))
            continue
        if number is not None:
            on_card[number] = name
    for number in sorted(set(on_card) | {n for n in sealed if n is not None}):
        checked.append(_check_segment(card, session, number, on_card.get(number), sealed.get(number, []),
                                      destroyed, on_read))
    seals = tuple(Seal(**entry.fields) for entry in extract.entries if entry.kind is Kind.SEAL)
    return SessionEvidence(session, label, extract, seals, (*checked, *misnamed))


def _check_manifest(card: Path, session: str, names: Sequence[str], seals: Sequence[Seal], destroyed: bool,
                    on_read: BytesRead) -> FileEvidence | None:
    name = manifest_name(session)
    last = seals[-1] if seals else None
    if name not in names:
        if destroyed:
            return None if last is None else FileEvidence(name, None, Verdict.DESTROYED, last, None)
        if last is None:
            return None
        return FileEvidence(name, None, Verdict.MISSING, last, "the manifest is missing from the card")
    if destroyed:
        return FileEvidence(name, None, Verdict.NOT_DESTROYED, last, _NOT_DESTROYED)
    if last is None:
        return FileEvidence(name, None, Verdict.UNSEALED, None, "no seal of the box names this manifest: "
                            "the box did not write it")
    size, digests = _digests(card / name, {last.bytes}, on_read)
    if size == last.bytes and digests.get(last.bytes) == last.sha256:
        return FileEvidence(name, None, Verdict.WHOLE, last, None)
    if any(seal.bytes == size and seal.sha256 == _whole_digest(card / name, size, on_read) for seal in seals):
        return FileEvidence(name, None, Verdict.OLDER, last, "an older version of the manifest than the box's "
                            "last: it was put back (rolled back)")
    return FileEvidence(name, None, Verdict.MISMATCH, last, "the manifest is not the one the box last wrote: "
                        "it was replaced or edited")


def _check_segment(card: Path, session: str, number: int, name: str | None, seals: Sequence[Seal],
                   destroyed: bool, on_read: BytesRead) -> FileEvidence:
    final = next((seal for seal in seals if seal.final), None)
    binding = final or (max(seals, key=lambda seal: seal.bytes) if seals else None)
    if name is None:
        missing = segment_name(session, number)
        if destroyed:
            return FileEvidence(missing, number, Verdict.DESTROYED, binding, None)
        return FileEvidence(missing, number, Verdict.MISSING, binding, f"segment {number} is missing from the card")
    if destroyed:
        return FileEvidence(name, number, Verdict.NOT_DESTROYED, binding, _NOT_DESTROYED)
    if binding is None:
        return FileEvidence(name, number, Verdict.UNSEALED, None, f"no seal of the box names segment {number}: "
                            "the box did not write this file (an extra or forged segment)")
    size, digests = _digests(card / name, {seal.bytes for seal in seals}, on_read)
    for seal in sorted(seals, key=lambda seal: seal.bytes):
        if size < seal.bytes:
            return FileEvidence(name, number, Verdict.SHORTER, binding,
                                f"shorter than the box sealed it ({size} bytes, sealed {seal.bytes}): it was cut")
        if digests.get(seal.bytes) != seal.sha256:
            return FileEvidence(name, number, Verdict.MISMATCH, binding,
                                f"its first {seal.bytes} bytes are not what the box sealed as segment {number}: "
                                "it was replaced, swapped with another segment or session's, or edited")
    if final is not None and size != final.bytes:
        return FileEvidence(name, number, Verdict.LONGER, binding,
                            f"longer than the box sealed it ({size} bytes, sealed {final.bytes}): bytes were "
                            "appended")
    return FileEvidence(name, number, Verdict.WHOLE if final is not None else Verdict.PREFIX, binding, None)


_NOT_DESTROYED = ("the session was destroyed (its ledger records it, or `consentbox-admin destroy` marked it), but "
                  "this file is still on the card")


def _digests(path: Path, offsets: set[int], on_read: BytesRead) -> tuple[int, dict[int, str]]:
    """The file's size, and the SHA-256 of its first `offset` bytes for each offset it is long enough for,
    in one read."""
    found: dict[int, str] = {}
    digest = hashlib.sha256()
    with open_for_reading(path) as src:
        size = os.fstat(src.fileno()).st_size
        position = 0
        for offset in sorted(offsets):
            if offset > size:
                break
            while position < offset:
                block = src.read(min(_READ, offset - position))
                if not block:
                    break  # the file shrank while it was read: the offset is not reached
                digest.update(block)
                position += len(block)
                on_read(len(block))
            if position == offset:
                found[offset] = digest.copy().hexdigest()
    return size, found


def _whole_digest(path: Path, size: int, on_read: BytesRead) -> str | None:
    return _digests(path, {size}, on_read)[1].get(size)


def _named_segment(session: str, name: str) -> bool:
    try:
        return segment_index(session, name) is not None
    except SegmentNameError:
        return True


def _last(entries: Sequence[Entry], kind: Kind) -> Entry | None:
    return next((entry for entry in reversed(entries) if entry.kind is kind), None)
