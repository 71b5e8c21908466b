"""Finding one session's entries in the box's ledger, with the boot entry before them: what its extract holds.

The box's ledger grows for years, and a session's extract is rewritten after each of its entries, so
the sessions appended to most recently are kept in memory as they grow (`RecentSessions`); any other
session (one a job or start-up recovery adds to, or every session on a card that comes back) is found
by one pass over the file (`find_sessions`).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from consentbox.ledger.entry import Entry, Kind
from consentbox.storage.ids import SESSION_ID_DIGITS

#: How many sessions' entries are kept in memory: the one being recorded and the few before it.
KEPT_SESSIONS = 4
_BLOCK = 1 << 20
# Canonical lines spell these one way only, so a byte search finds exactly the lines that have them.
_BOOT = b'"kind":"boot"'
_SESSION = b'"session":"'


@dataclass(frozen=True)
class SessionEntries:
    """A session's entries so far, in order, and the last boot entry at or before the first of them."""

    boot: Entry
    entries: tuple[Entry, ...]

    def extended(self, entry: Entry) -> SessionEntries:
        """These entries and `entry`, the session's next."""
        return SessionEntries(self.boot, (*self.entries, entry))


class RecentSessions:
    """The entries of the KEPT_SESSIONS sessions appended to most recently, as they grow.

    Every entry appended to the ledger (by any process) must be `take`n, in order, or the whole is
    `forget`ten: a session kept here is then exactly as the file has it.
    """

    def __init__(self) -> None:
        self._boot: Entry | None = None  # the last boot entry taken
        self._kept: OrderedDict[str, SessionEntries] = OrderedDict()

    def take(self, entry: Entry) -> None:
        """Take in the entry just appended to the ledger."""
        if entry.kind is Kind.BOOT:
            self._boot = entry
        if entry.session is None:
            return
        known = self._kept.pop(entry.session, None)
        if known is not None:
            self.keep(entry.session, known.extended(entry))
        elif entry.kind is Kind.SETUP and self._boot is not None:  # a set-up begins a session, in this run
            self.keep(entry.session, SessionEntries(self._boot, (entry,)))

    def keep(self, session: str, entries: SessionEntries) -> None:
        """Keep `session`'s entries (all of them so far, as `find_sessions` found them)."""
        self._kept.pop(session, None)
        self._kept[session] = entries
        while len(self._kept) > KEPT_SESSIONS:
            self._kept.popitem(last=False)

    def get(self, session: str) -> SessionEntries | None:
        """`session`'s entries so far, if it is kept."""
        return self._kept.get(session)

    def forget(self) -> None:
        """Drop everything: the file changed in a way not taken in (sessions are then found again)."""
        self._boot = None
        self._kept.clear()


def find_sessions(fd: int, size: int, sessions: Collection[str]) -> dict[str, SessionEntries]:
    """The entries of each of `sessions` in the first `size` bytes (whole lines) of the ledger open as `fd`,
    each after the last boot entry at or before its first; a session with no entry is left out.

    LedgerError if a line of theirs (or a boot entry before one) does not parse.
    """
    found: dict[str, SessionEntries] = {}
    boot_line: bytes | None = None
    boot: Entry | None = None
    for number, line in enumerate(_lines(fd, size), start=1):
        if _BOOT in line:
            boot_line, boot = line, None
            continue
        at = line.find(_SESSION)
        if at < 0:
            continue
        session = line[at + len(_SESSION): at + len(_SESSION) + SESSION_ID_DIGITS].decode("ascii", "replace")
        if session not in sessions:
            continue
        entry = Entry.parse(line, f"the box's ledger line {number}")
        known = found.get(session)
        if known is not None:
            found[session] = known.extended(entry)
        elif boot_line is not None:
            boot = boot or Entry.parse(boot_line, f"the box's ledger, boot entry before line {number}")
            found[session] = SessionEntries(boot, (entry,))
    return found


def _lines(fd: int, size: int) -> Iterator[bytes]:
    """The whole lines (without their newlines) of the file's first `size` bytes."""
    position, rest = 0, b""
    while position < size:
        block = os.pread(fd, min(_BLOCK, size - position), position)
        if not block:
            break
        position += len(block)
        *lines, rest = (rest + block).split(b"\n")
        yield from lines
