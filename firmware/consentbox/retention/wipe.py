"""The retention wipe: destroy every expired session on the card, and account for every session gone from it.

One run: apply the retention limits in force to the index (they only ever shorten; each expiry moved
gets an `expiry` entry in the ledger), then for each session that has expired by the trusted clock,
or whose destruction an earlier run began, shred its recording (the manifest last), sync the
directory, record a `destruction` entry in the ledger, and drop it from the index; finally discard
the freed blocks. A session recorded on the card in the slot (the index knows its card's id) whose
recording is all gone from it gets one `destruction` receipt too, cause `absent`, or `off_box` when
`consentbox-admin destroy` left its mark, and leaves the index. The session lock is taken for each
chunk written and let go between chunks, so a session that begins stops the wipe within one chunk;
the next run resumes where it stopped. Sessions the index does not know (another box's) are not touched.
Every name is looked up in the card's directory without following a link (`storage.card_files`): an
entry named as a recording that the box did not write (a link, a FIFO, a directory, a device, a hard
link, a file larger than any segment, one it may not open) is never opened or removed, only reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from consentbox.core.policy import MAX_SEGMENT_BYTES
from consentbox.hw.card import super_options
from consentbox.ledger import Kind
from consentbox.ledger.writer import Ledger
from consentbox.recording.card_id import CardIdError, read_card_id
from consentbox.recording.manifest import manifest_name
from consentbox.recording.recorded import destroyed_mark_name, recorded_names, recorded_sessions
from consentbox.retention.discard import discard_free_space
from consentbox.retention.index import Expiry, RetentionIndex
from consentbox.state.clock_floor import TrustedClock
from consentbox.state.session_lock import SessionLock
from consentbox.storage.card_files import ForeignEntry, card_directory, foreign, look, remove_file, sort_out
from consentbox.storage.durable import sync_open_directory
from consentbox.storage.shred import Paused, shred_at

_YIELD_SECONDS = 0.01  # between chunks, for a box waiting on the lock to take it

#: How a session came to be gone from its card, by the cause its receipt gives.
_GONE = {"absent": "its files were removed without the box", "off_box": "destroyed with consentbox-admin destroy"}


@dataclass
class WipeReport:
    """What one run did."""

    destroyed: list[tuple[str, int]] = field(default_factory=list)  # (session, files)
    gone: list[tuple[str, str]] = field(default_factory=list)  # (session, cause): found gone from its card
    waiting: list[str] = field(default_factory=list)  # expired, but not on this card
    failed: list[str] = field(default_factory=list)  # could not be destroyed: why, one line each
    foreign: list[str] = field(default_factory=list)  # entries the box did not write, left where they are
    unknown: int = 0  # sessions on the card that the index does not know
    unidentified: str = ""  # why the card in the slot has no id the wipe can use, if it has a bad one
    stopped: str = ""  # why the run stopped early, if it did
    untrusted_policy: str = ""  # why no policy shortened the expiries, if none could be trusted
    discard: str = ""

    def lines(self) -> list[str]:
        """The report in words, one line each."""
        out = [f"destroyed session {session} ({files} files)" for session, files in self.destroyed]
        out += [f"session {session} is gone from this card ({_GONE[cause]}): recorded as {cause}"
                for session, cause in self.gone]
        out += [f"session {session} has expired but is not on this card" for session in self.waiting]
        out += [f"could not destroy {failure}; the next run tries again" for failure in self.failed]
        out += self.foreign
        if self.untrusted_policy:
            out.append(f"{self.untrusted_policy}: expiries kept as recorded (code 6), no policy shortened them")
        if self.unidentified:
            out.append(f"cannot tell which sessions are gone from this card: {self.unidentified}")
        if self.unknown:
            out.append(f"{self.unknown} session(s) on the card are not in this box's index: not touched")
        if self.stopped:
            out.append(f"stopped: {self.stopped}; the next run continues")
        if self.discard:
            out.append(self.discard)
        if not out:
            out.append("nothing has expired")
        return out


@dataclass
class Wiper:
    """Destroys expired sessions on `card`, using the box's state directory, ledger and trusted clock."""

    card: Path
    state_dir: Path
    ledger: Ledger
    clock: TrustedClock
    # No recording is kept longer than this from its start (the policy in force); None when no policy
    # can be trusted (an installed bundle that no longer verifies): the expiries stay as recorded, each
    # set under a policy that did verify, and no other policy (not the configuration's) shortens them.
    limit_days: int | None

    def run(self, *, wait: bool, waiting: Callable[[], None] = lambda: None) -> WipeReport:
        """One wipe. With `wait`, wait for an open session to end first (calling `waiting` once, before the
        wait, when there is one); without, leave it to the next run."""
        report = WipeReport()
        lock = SessionLock(self.state_dir)
        if not lock.acquire(wait=False):
            if not wait:
                report.stopped = "a session is open"
                return report
            waiting()
            lock.acquire(wait=True)
        index = RetentionIndex(self.state_dir)
        try:
            # The index first: a ledger that cannot be written must not keep a recording longer.
            shortened = {} if self.limit_days is None else index.shorten(self.limit_days)
            for session, expiry in shortened.items():
                self.ledger.append(Kind.EXPIRY, session, expires=expiry.due, reason="policy")
            now = self.clock.reading().now
            entries = index.entries()
            card = self._card_id(report)
            with card_directory(self.card) as directory:  # one card for the whole run, whatever is mounted
                report.unknown = len(recorded_sessions(directory) - entries.keys())
                for session, expiry in sorted(entries.items(), key=lambda item: item[1].expires):
                    try:
                        # Entries named as its files that the box did not write are not its recording:
                        # never opened, written or removed; reported when the wipe acts on the session.
                        files, left = sort_out(directory, recorded_names(directory, session), MAX_SEGMENT_BYTES)
                        if card is not None and expiry.card == card and not files:
                            report.foreign += [str(error) for error in left]
                            cause = self._account_for_absence(directory, session, expiry, index, report)
                            if cause is not None:
                                report.gone.append((session, cause))
                            continue
                        if expiry.destroying is None and expiry.expires > now:
                            continue
                        report.foreign += [str(error) for error in left]
                        count = self._destroy(directory, session, files, expiry, index, lock, report)
                    except OSError as error:  # one bad file must not keep every later session from the wipe
                        report.failed.append(f"session {session}: {error.strerror or error}")
                        continue
                    if count is None:
                        report.waiting.append(session)
                    else:
                        report.destroyed.append((session, count))
        except Paused:
            report.stopped = "a session began"
        finally:
            lock.release()
        if report.destroyed:
            self.ledger.append(Kind.WIPE, files=sum(files for _, files in report.destroyed))
            report.discard = _discard(self.card)
        return report

    def _destroy(self, directory: int, session: str, files: list[str], expiry: Expiry, index: RetentionIndex,
                 lock: SessionLock, report: WipeReport) -> int | None:
        """Destroy one session's `files` in the card's directory open as `directory` and record it; the count
        of files destroyed, or None if it is not on this card.

        The manifest goes last, and is only emptied until the receipt is in the ledger: an empty
        manifest is the mark that this card holds a destruction begun and not yet recorded, so a
        run stopped half-way never records as done a session whose files are on another card.
        """
        manifest = manifest_name(session)
        if expiry.destroying is None:
            if not files:
                return None
            index.mark_destroying(session, len(files))
        elif not files:
            if not self.ledger.has_entry(Kind.DESTRUCTION, session):
                return None  # begun on another card: its files are there
            index.remove(session)  # recorded already; a stop came before the index was told
            return expiry.destroying
        shredded = []
        for name in files:
            try:
                shred_at(directory, name, lambda: _next_chunk(lock), unlink=name != manifest,
                         max_bytes=MAX_SEGMENT_BYTES)
            except ForeignEntry as error:  # one the box may not open, or swapped since: never written to
                report.foreign.append(str(error))
                continue
            shredded.append(name)
        sync_open_directory(directory)
        count = len(shredded) if expiry.destroying is None else expiry.destroying
        if not self.ledger.has_entry(Kind.DESTRUCTION, session):
            self.ledger.append(Kind.DESTRUCTION, session, files=count, cause="retention", due=expiry.due)
        if manifest in shredded:
            remove_file(directory, manifest)
        if _marked(directory, session, report):  # a destruction off the box begun
            remove_file(directory, destroyed_mark_name(session), max_bytes=0)
        sync_open_directory(directory)
        index.remove(session)
        return count

    def _account_for_absence(self, directory: int, session: str, expiry: Expiry, index: RetentionIndex,
                             report: WipeReport) -> str | None:
        """Receipt `session`, recorded on the card in the slot and gone from it, and drop it from the index;
        the receipt's cause, or None if the ledger held its destruction already (a run stopped after it)."""
        marked = _marked(directory, session, report)
        cause = None
        if not self.ledger.has_entry(Kind.DESTRUCTION, session):
            cause = "off_box" if marked else "absent"
            # The box removed none of its files: someone else did, by hand or with consentbox-admin destroy.
            self.ledger.append(Kind.DESTRUCTION, session, files=0, cause=cause, due=expiry.due)
        if marked:  # after the receipt, so a stop in between still gives `off_box`
            remove_file(directory, destroyed_mark_name(session), max_bytes=0)
        sync_open_directory(directory)
        index.remove(session)
        return cause

    def _card_id(self, report: WipeReport) -> str | None:
        """The id of the card in the slot; None if it has none (or an unreadable one, which the report says)."""
        try:
            return read_card_id(self.card)
        except CardIdError as error:
            report.unidentified = str(error)
            return None


def _marked(directory: int, session: str, report: WipeReport) -> bool:
    """Whether the card holds the mark `consentbox-admin destroy` leaves for `session`: an empty regular
    file with one name. Anything else by that name is no such mark: left there, and reported."""
    name = destroyed_mark_name(session)
    status = look(directory, name)
    why = None if status is None else foreign(status, max_bytes=0)
    if why is not None:
        report.foreign.append(str(ForeignEntry(name, why)))
    return status is not None and why is None


def _discard(card: Path) -> str:
    """Have the card forget the freed blocks; what happened, in words."""
    if not os.path.ismount(card):  # a directory's host file system is not ours to trim
        return "no discard: the card directory is not a mount point"
    if "discard" in super_options(card):
        return "freed blocks discarded as they were freed (the card is mounted with discard)"
    return discard_free_space(card)


def _next_chunk(lock: SessionLock) -> bool:
    """Let a waiting box have the lock, then take it back for the next chunk unless a session has it."""
    lock.release()
    time.sleep(_YIELD_SECONDS)
    return lock.acquire(wait=False)
