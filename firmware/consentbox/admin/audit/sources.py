"""What `consentbox-admin audit` reads: a card, one session's extract, or the box's own ledger.

- A card (a directory): every session with an extract (`<id>.ledger.age`) or a recording there. Each
  extract is decrypted with the auditor's identity and verified, and every file of the session is
  checked against the box's seals (`admin.evidence.verify_session`): only ciphertext is hashed, so no
  supervisor key is needed and no audio is decrypted.
- One extract: that session, its files checked in the extract's directory (the card).
- The box's `ledger.jsonl` (IT's copy of the box's state): verified whole, then every session in it.
  The card's files are not read, and the report says so.

A session whose extract cannot be read or verified, or whose files have no extract, is reported as
such (it fails); a card or ledger from a box that is not trusted is refused (UnknownBoxError).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from consentbox.admin.audit.sessions import AuditedSession, SessionStory, unreadable
from consentbox.admin.boxes import AcceptedBoxes
from consentbox.admin.evidence import CardFiles, EvidenceError, NoExtractError, verify_session
from consentbox.admin.extracts import is_extract, load_extract, named_session
from consentbox.core.errors import ConsentBoxError
from consentbox.crypto import Identity
from consentbox.ledger import Entry, Kind, LedgerError, Tail, verify
from consentbox.ledger.extract import Extract
from consentbox.ledger.lines import MAX_LINE
from consentbox.recording.manifest import extract_name

#: What the report says of a source whose files were not checked.
FILES_NOT_CHECKED = "not checked: the box's ledger holds no files (audit the card for them)"
_UNKNOWN_BOX = "-"  # the label of a session whose ledger could not be read


class AuditError(ConsentBoxError, ValueError):
    """What was given to audit is not a card, an extract or a ledger, or an extract not named as the box names it."""


@dataclass(frozen=True)
class Period:
    """The set-up dates reported, each end included; None: no bound."""

    first: date | None = None
    last: date | None = None

    def __post_init__(self) -> None:
        if self.first is not None and self.last is not None and self.first > self.last:
            raise AuditError(f"--from {self.first} is after --to {self.last}: give the earlier date first")

    @property
    def bounded(self) -> bool:
        """Whether a bound is set."""
        return self.first is not None or self.last is not None

    def holds(self, day: date) -> bool:
        """Whether `day` is in the period."""
        return (self.first is None or day >= self.first) and (self.last is None or day <= self.last)


@dataclass(frozen=True)
class Audit:
    """The sessions of one source, audited as of `made`."""

    source: Path
    what: str  # "card", "extract" or "ledger"
    files_checked: bool
    boxes: tuple[tuple[str, str], ...]  # each box seen: its device key and its trusted label
    period: Period
    made: datetime
    sessions: tuple[AuditedSession, ...]
    remarks: tuple[str, ...] = ()  # what the reviewer should know of the source as a whole

    @property
    def intact(self) -> bool:
        """Whether every session's consent is complete and its evidence intact."""
        return all(session.intact for session in self.sessions)


def audit(source: Path, identities: Sequence[Identity], boxes: AcceptedBoxes, *, period: Period,
          made: datetime) -> Audit:
    """Audit `source` (a card's directory, an extract, or the box's ledger) as of `made`, the sessions set up
    in `period` (and any whose set-up cannot be known, since it cannot be placed outside it)."""
    if not source.exists():
        raise AuditError(f"{source} does not exist: give a card's directory, a session's <id>.ledger.age or a box's "
                         "ledger.jsonl")
    if source.is_dir():
        listing = CardFiles.read(source)
        ids = {session for session, names in listing.by_session.items() if extract_name(session) in names}
        return _audit_card(source, "card", listing, sorted(ids | set(listing.recorded_sessions())), identities,
                           boxes, period, made)
    if is_extract(source):
        session = named_session(source)
        if session is None:
            raise AuditError(f"{source} is not named <session id>.ledger.age as on the card: give it its name back "
                             "(its files are checked beside it)")
        return _audit_card(source, "extract", CardFiles.read(source.parent), [session], identities, boxes, period,
                           made)
    return _audit_ledger(source, boxes, period, made)


def _audit_card(source: Path, what: str, listing: CardFiles, ids: Sequence[str],
                identities: Sequence[Identity], boxes: AcceptedBoxes, period: Period, made: datetime) -> Audit:
    sessions: list[AuditedSession] = []
    seen: dict[str, str] = {}
    for session in ids:
        # With a period, each extract is decrypted twice: it is small, and a session outside the period then
        # costs no hashing of its audio files.
        if period.bounded and not _maybe_in(listing, session, identities, period):
            continue
        try:
            evidence = verify_session(listing.card, session, identities, boxes, files=listing)
        except NoExtractError:
            sessions.append(unreadable(session, _UNKNOWN_BOX, f"its files are on the card without its record, "
                                       f"{extract_name(session)}: nothing binds them to a box"))
            continue
        except (EvidenceError, LedgerError) as error:  # an extract that does not decrypt or verify
            sessions.append(unreadable(session, _UNKNOWN_BOX, str(error)))
            continue
        except OSError as error:
            sessions.append(unreadable(session, _UNKNOWN_BOX, f"the card cannot be read: {error.strerror or error}"))
            continue
        seen[evidence.extract.device_key.to_string()] = evidence.box
        # An extract is the whole story only if it is the newest the box wrote: a missing end may be an older one.
        sessions.append(story_of(evidence.extract).audited(evidence.box, evidence.files, today=made.date(),
                                                           newest=False))
    return Audit(source, what, True, tuple(seen.items()), period, made, _in_setup_order(sessions))


def _maybe_in(listing: CardFiles, session: str, identities: Sequence[Identity], period: Period) -> bool:
    """Whether `session` may have been set up in `period`: its extract says so, or cannot say (then it is
    reported, and `verify_session` says why it cannot be read)."""
    if extract_name(session) not in listing.names(session):
        return True
    try:
        extract = load_extract(listing.card / extract_name(session), identities, session=session)
    except (LedgerError, OSError):
        return True
    return period.holds(extract.entries[0].wall.date())


def story_of(extract: Extract) -> SessionStory:
    """The story of the session of a verified extract."""
    story = SessionStory(extract.session)
    for entry in extract.entries:
        story.take(entry, extract.run_of[entry.seq])
    return story


def _audit_ledger(path: Path, boxes: AcceptedBoxes, period: Period, made: datetime) -> Audit:
    summary = verify(path)
    label = boxes.accept(summary.device_key)
    stories: dict[str, SessionStory] = {}
    for entry, run in _entries(path, summary.entries, summary.last):
        if entry.kind is Kind.GAP:
            for story in stories.values():
                if story.open:
                    story.gap(entry.seq)
        if entry.session is not None:
            stories.setdefault(entry.session, SessionStory(entry.session)).take(entry, run)
    sessions = [story.audited(label, None, today=made.date()) for story in stories.values()
                if story.setup is None or period.holds(story.setup.wall.date())]
    remarks = [f"files {FILES_NOT_CHECKED}"]
    if summary.tail is Tail.TORN:
        remarks.append(f"the ledger ends in {summary.torn_bytes} bytes of a torn entry after seq {summary.last.seq} "
                       "(a power cut while it was written): the box cuts it off and records a gap at its next start")
    return Audit(path, "ledger", False, ((summary.device_key.to_string(), label),), period, made,
                 _in_setup_order(sessions), tuple(remarks))


def _entries(path: Path, count: int, last: Entry) -> Iterator[tuple[Entry, int]]:
    """The entries of the ledger `verify` found intact (`count` of them, ending with `last`), each with its run
    (the box's starts, counted from 0 at the first boot); LedgerError if the file changed since."""
    run, seen, entry = -1, 0, None
    with open(path, "rb") as src:
        for number, raw in enumerate(iter(lambda: src.readline(MAX_LINE + 1), b""), start=1):
            if not raw.endswith(b"\n"):
                break  # the torn tail verify reported (or a line grown past an entry's size since)
            entry = Entry.parse(raw[:-1], f"{path} line {number}")
            run += entry.kind is Kind.BOOT
            seen += 1
            yield entry, run
    if seen != count or entry is None or entry.line != last.line:
        raise LedgerError(f"{path} changed while it was read: audit a copy that nothing writes to")


def _in_setup_order(sessions: Sequence[AuditedSession]) -> tuple[AuditedSession, ...]:
    """The sessions by set-up time; those whose set-up is not known last, by id."""
    return tuple(sorted(sessions, key=lambda s: (s.setup is None, s.setup.wall.timestamp() if s.setup else 0.0,
                                                 s.session)))
