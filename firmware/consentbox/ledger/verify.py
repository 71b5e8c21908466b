"""Checking a whole ledger: every line canonical, every sequence number in turn, the chain, every signature.

The first bad entry is a `LedgerError` that names its line and sequence number. The end of the file
is a different matter. Bytes after the last newline are a partial entry, which is what a power cut
during a write leaves: the result says the tail is torn, and it is not called tampering. Entries cut
off cleanly after a complete one leave a file that is valid as far as it goes. That cannot be seen
from the file alone; only something that names a later entry (the box's own copy, a session
manifest's ledger range, a printed report) can show it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from consentbox.crypto.signing import DevicePublicKey
from consentbox.ledger.entry import Entry, Kind, LedgerError, SessionRange, genesis
from consentbox.ledger.lines import MAX_LINE


class Tail(enum.Enum):
    """How the file ends."""

    COMPLETE = "complete"  # with a whole entry and its newline
    TORN = "torn"  # with part of an entry: a write was cut short (a power cut)


@dataclass(frozen=True)
class Summary:
    """What a verified ledger holds."""

    path: Path
    device_key: DevicePublicKey
    entries: int
    sessions: int
    boots: int
    gaps: int  # gap entries: a start after a torn tail
    first: Entry
    last: Entry
    tail: Tail
    torn_bytes: int  # bytes of the partial entry after the last whole one
    selected: tuple[Entry, ...]  # the entries of the session asked for, in order
    # For each selected entry's seq, the seq of the boot entry of the run that wrote it: the box's
    # clock (`mono`) starts again at each boot, so only entries of one run can be compared by it.
    boot_of: Mapping[int, int]

    def session_range(self) -> SessionRange | None:
        """The sequence range and head of the selected session's entries, or None if it has none."""
        if not self.selected:
            return None
        span = SessionRange.starting(self.selected[0])
        for entry in self.selected[1:]:
            span = span.extended(entry)
        return span


def verify(path: Path, device_key: DevicePublicKey | None = None, *, session: str | None = None) -> Summary:
    """Verify the ledger at `path`; LedgerError names the first entry that is not intact.

    Without `device_key` the key named by the first (boot) entry is used and reported, so a
    ledger wholly written by another box verifies as that box's: compare `Summary.device_key` with
    the key you expect, or pass it. The entries of `session`, if given, are kept in the summary.
    """
    with open(path, "rb") as src:
        if src.read(1) == b"":
            raise LedgerError(f"{path} is empty: it holds no ledger entry")
        src.seek(0)
        checker = _Chain(path, device_key, session)
        line_number = 0
        while True:
            raw = src.readline(MAX_LINE + 1)
            if not raw:
                return checker.summary(Tail.COMPLETE, 0)
            line_number += 1
            if not raw.endswith(b"\n"):
                if len(raw) > MAX_LINE:
                    raise LedgerError(f"{path} line {line_number} is over {MAX_LINE} bytes: not a ledger entry")
                if src.read(1):
                    raise AssertionError("readline stopped short of a newline before the end")
                return checker.summary(Tail.TORN, len(raw))
            checker.add(raw[:-1], line_number)


class _Chain:
    """The entries read so far, and what the next one must be."""

    def __init__(self, path: Path, device_key: DevicePublicKey | None, session: str | None) -> None:
        self._path = path
        self._expected_key = device_key
        self._key: DevicePublicKey | None = None
        self._session = session
        self._selected: list[Entry] = []
        self._boot_of: dict[int, int] = {}
        self._boot = 0
        self._sessions: set[str] = set()
        self._first: Entry | None = None
        self._last: Entry | None = None
        self._boots = 0
        self._gaps = 0

    def add(self, line: bytes, number: int) -> None:
        """Check the entry on line `number` against the ones before it."""
        where = f"{self._path} line {number}"
        entry = Entry.parse(line, where)
        expected = 0 if self._last is None else self._last.seq + 1
        if entry.seq != expected:
            if entry.seq > expected:
                missing = f"{expected}" if entry.seq == expected + 1 else f"{expected}–{entry.seq - 1}"
                story = f"entry {missing} is missing (deleted)" if entry.seq == expected + 1 \
                    else f"entries {missing} are missing (deleted)"
            else:
                story = "an entry was inserted, repeated or moved"
            raise LedgerError(f"{where}: sequence number {entry.seq} where {expected} was expected: {story}")
        where = f"{where} (seq {entry.seq})"
        if self._key is None:
            self._key = self._first_key(entry, where)
        entry.check_signature(self._key, where)
        if self._last is None:
            if entry.prev != genesis(self._key):
                raise LedgerError(f"{where}: does not begin a ledger of device key {self._key}: "
                                  "it was spliced in from another ledger")
        elif entry.prev != self._last.digest:
            raise LedgerError(f"{where}: does not follow the entry before it (the previous-entry hash "
                              "differs): it comes from another ledger, or the one before it was replaced")
        if entry.kind is Kind.BOOT and entry.fields["device_key"] != self._key.to_string():
            raise LedgerError(f"{where}: boot entry names device key {entry.fields['device_key']}, "
                              f"not the ledger's {self._key}")
        if entry.kind is Kind.BOOT:
            self._boot = entry.seq
        self._boots += entry.kind is Kind.BOOT
        self._gaps += entry.kind is Kind.GAP
        if entry.session is not None:
            self._sessions.add(entry.session)
            if entry.session == self._session:
                self._selected.append(entry)
                self._boot_of[entry.seq] = self._boot
        self._first = self._first or entry
        self._last = entry

    def _first_key(self, entry: Entry, where: str) -> DevicePublicKey:
        """The key that must have signed the ledger, from its first entry (and the caller)."""
        if entry.kind is not Kind.BOOT:
            raise LedgerError(f"{where}: a ledger begins with a boot entry, not {entry.kind.value}")
        named = DevicePublicKey.parse(entry.fields["device_key"])
        if self._expected_key is not None and named != self._expected_key:
            raise LedgerError(f"{where}: the ledger was written by device key {named}, not by the "
                              f"expected {self._expected_key}")
        return named

    def summary(self, tail: Tail, torn_bytes: int) -> Summary:
        """The summary of a ledger that verified up to here."""
        if self._first is None or self._last is None or self._key is None:
            raise LedgerError(f"{self._path} holds no complete entry, only {torn_bytes} bytes of a partial "
                              "one (a power cut while the first entry was written)")
        return Summary(self._path, self._key, self._last.seq + 1, len(self._sessions), self._boots,
                       self._gaps, self._first, self._last, tail, torn_bytes, tuple(self._selected),
                       MappingProxyType(self._boot_of))
