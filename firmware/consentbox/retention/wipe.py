"""The retention wipe: destroy every expired session on the card, and leave a receipt for each.

One run: apply the retention limits in force to the index (they only ever shorten), then for each
session that has expired by the trusted clock, or whose destruction an earlier run began, shred its
files (the manifest last), sync the directory, record a `destruction` entry in the ledger, and drop
it from the index; finally discard the freed blocks. The session lock is taken for each chunk
written and let go between chunks, so a session that begins stops the wipe within one chunk; the
next run resumes where it stopped. Sessions the index does not know (another box's) are not touched.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from consentbox.hw.card import super_options
from consentbox.ledger import Kind
from consentbox.ledger.writer import Ledger
from consentbox.recording.manifest import manifest_name
from consentbox.recording.session import session_files
from consentbox.retention.index import Expiry, RetentionIndex
from consentbox.retention.shred import Paused, discard_free_space, shred
from consentbox.state.clock_floor import TrustedClock
from consentbox.state.session_lock import SessionLock
from consentbox.storage.durable import sync_directory
from consentbox.storage.ids import SESSION_ID_DIGITS, is_session_id

_YIELD_SECONDS = 0.01  # between chunks, for a box waiting on the lock to take it


@dataclass
class WipeReport:
    """What one run did."""

    destroyed: list[tuple[str, int]] = field(default_factory=list)  # (session, files)
    waiting: list[str] = field(default_factory=list)  # expired, but not on this card
    failed: list[str] = field(default_factory=list)  # could not be destroyed: why, one line each
    unknown: int = 0  # sessions on the card that the index does not know
    stopped: str = ""  # why the run stopped early, if it did
    discard: str = ""

    def lines(self) -> list[str]:
        """The report in words, one line each."""
        out = [f"destroyed session {session} ({files} files)" for session, files in self.destroyed]
        out += [f"session {session} has expired but is not on this card" for session in self.waiting]
        out += [f"could not destroy {failure}; the next run tries again" for failure in self.failed]
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
    limit_days: int  # no recording is kept longer than this from its start (the policy in force)

    def run(self, *, wait: bool) -> WipeReport:
        """One wipe. With `wait`, wait for an open session to end first; without, leave it to the next run."""
        report = WipeReport()
        lock = SessionLock(self.state_dir)
        if not lock.acquire(wait=wait):
            report.stopped = "a session is open"
            return report
        index = RetentionIndex(self.state_dir)
        try:
            index.shorten(self.limit_days)
            now = self.clock.reading().now
            entries = index.entries()
            report.unknown = len(_sessions_on(self.card) - entries.keys())
            for session, expiry in sorted(entries.items(), key=lambda item: item[1].expires):
                if expiry.destroying is None and expiry.expires > now:
                    continue
                try:
                    count = self._destroy(session, expiry, index, lock)
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

    def _destroy(self, session: str, expiry: Expiry, index: RetentionIndex, lock: SessionLock) -> int | None:
        """Destroy one session's files and record it; its file count, or None if it is not on this card.

        The manifest goes last, and is only emptied until the receipt is in the ledger: an empty
        manifest is the mark that this card holds a destruction begun and not yet recorded, so a
        run stopped half-way never records as done a session whose files are on another card.
        """
        manifest = self.card / manifest_name(session)
        files = sorted(session_files(self.card, session), key=lambda path: (path == manifest, path.name))
        if expiry.destroying is None:
            if not files:
                return None
            index.mark_destroying(session, len(files))
        elif not files:
            if not self.ledger.has_entry(Kind.DESTRUCTION, session):
                return None  # begun on another card: its files are there
            index.remove(session)  # recorded already; a stop came before the index was told
            return expiry.destroying
        for path in files:
            shred(path, lambda: _next_chunk(lock), unlink=path != manifest)
        sync_directory(self.card)
        count = len(files) if expiry.destroying is None else expiry.destroying
        if not self.ledger.has_entry(Kind.DESTRUCTION, session):
            self.ledger.append(Kind.DESTRUCTION, session, files=count, cause="retention")
        manifest.unlink(missing_ok=True)
        sync_directory(self.card)
        index.remove(session)
        return count


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


def _sessions_on(card: Path) -> set[str]:
    return {name[:SESSION_ID_DIGITS] for name in (p.name for p in card.iterdir())
            if name[SESSION_ID_DIGITS:SESSION_ID_DIGITS + 1] == "." and is_session_id(name[:SESSION_ID_DIGITS])}
