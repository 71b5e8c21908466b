"""The box's side of the ledger: appending signed entries durably, surviving power cuts, copying to the card.

Each entry is one `write` of its line followed by `fdatasync`, so when `append` returns the entry is
on the box's storage. A power cut can leave at most the entry being written torn; opening the ledger
cuts such a tail off and, after the `boot` entry, records a `gap` entry saying how many bytes were
lost, so the ledger is never left corrupt and the loss is never silent.

Several processes may append to one ledger (the box, and the provisioning and wipe jobs that systemd
starts beside it): each append holds an exclusive `flock` on the file, first catches up with entries
the others wrote (their last entry's hash is the next `prev`), and writes the session's extract on
the card (`consentbox.ledger.card_extracts`) before it lets go, so there is one chain, and each
extract is written in the chain's order.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from consentbox import __version__
from consentbox.core.errors import ConsentBoxError
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.ports import Card
from consentbox.ledger.card_extracts import CardExtracts, Readers
from consentbox.ledger.entry import Entry, Kind, LedgerError, SessionRange, genesis
from consentbox.ledger.lines import MAX_LINE, last_newline
from consentbox.storage.durable import sync_directory, write_all

_FILE_MODE = 0o644  # the ledger holds nothing secret; the clinic's IT may read it


class LedgerWriteError(ConsentBoxError, OSError):
    """The box's own ledger file cannot be opened or written (its storage is full or failing)."""


class Ledger:
    """The box's ledger file, open for appending, and the card's copy of it (an extract per session).

    Open it with `Ledger.open`; the box then calls `append` for everything it does, and `close`
    when it stops. Other processes may append to the same file at the same time (see above).
    """

    def __init__(self, path: Path, fd: int, key: DeviceSigningKey, extracts: CardExtracts | None,
                 wall_clock: Callable[[], datetime], monotonic: Callable[[], float],
                 size: int, next_seq: int, head: str) -> None:
        self.path = path
        self._fd = fd
        self._key = key
        self._extracts = extracts
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._size = size
        self._next_seq = next_seq
        self._head = head
        self._ranges: dict[str, SessionRange] = {}
        self._failed: str | None = None  # why appending stopped, if a failed write left half an entry

    @classmethod
    def open(
        cls,
        path: Path,
        card: Card | None,
        key: DeviceSigningKey,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
        monotonic: Callable[[], float] = time.monotonic,
        version: str = __version__,
        boot: bool = True,
        readers: Readers = lambda: (),
    ) -> Ledger:
        """Open (or create) the box's ledger at `path` and record this start.

        A torn last line is cut off. Then a `boot` entry is appended (the device's public key and
        the firmware `version`; when `boot` is false, for a job beside the running box, only if the
        ledger is new), then a `gap` entry if a tail was cut.
        `card`, if given, gets the extracts of its sessions, encrypted to `readers()` (the recipients
        and auditors in force; none: no extract is written).
        `monotonic` is the box's clock, the one session manifests measure offsets on; `wall_clock`
        gives the time with its UTC offset. LedgerError if the last whole entry is not this key's
        (the file was edited, or the key replaced); LedgerWriteError if the file cannot be used.
        """
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, _FILE_MODE)
        except OSError as error:
            raise LedgerWriteError(f"cannot open the box's ledger {path}: {error.strerror or error}") from None
        try:
            with _locked(fd):
                size, next_seq, head, cut = _recover(fd, path, key)
            sync_directory(path.parent)
        except BaseException:
            os.close(fd)
            raise
        extracts = None if card is None else CardExtracts(card, key, readers)
        ledger = cls(path, fd, key, extracts, wall_clock, monotonic, size, next_seq, head)
        if boot or next_seq == 0:  # a ledger always begins with a boot entry: it names the device key
            ledger.append(Kind.BOOT, device_key=key.public_key, version=version)
        if cut:
            ledger.append(Kind.GAP, cut_bytes=cut)
        return ledger

    def append(self, kind: Kind | str, session: str | None = None, /, *, at: float | None = None,
               **fields: Any) -> Entry:
        """Append one entry, durably, and rewrite its session's extract on the card; returns it (with its `seq`
        and `digest`).

        `fields` are exactly the kind's documented fields (an enum such as EndReason or Problem may
        be passed for its word or code); `at` is the event's time on the box's clock, default now.
        LedgerError for a field the kind does not have; LedgerWriteError if the box's file fails
        (the file is then cut back, so it never holds half an entry). A card that is missing or
        failing only leaves its extracts behind.
        """
        if self._fd < 0:
            if self._failed:
                raise LedgerWriteError(self._failed)
            raise LedgerError(f"the ledger {self.path} is closed")
        try:
            kind = Kind(kind)
        except ValueError:
            raise LedgerError(f"{kind!r} is not a kind of ledger entry") from None
        mono = self._monotonic() if at is None else at
        with _locked(self._fd):
            cut = self._catch_up()
            if cut:
                self._write(Entry.create(self._key, seq=self._next_seq, kind=Kind.GAP, wall=self._wall_clock(),
                                         mono=mono, session=None, fields={"cut_bytes": cut}, prev=self._head))
            entry = Entry.create(self._key, seq=self._next_seq, kind=kind, wall=self._wall_clock(), mono=mono,
                                 session=session, fields=fields, prev=self._head)
            self._write(entry)
            if session is not None:
                known = self._ranges.get(session)
                self._ranges[session] = SessionRange.starting(entry) if known is None else known.extended(entry)
                if self._extracts is not None:
                    self._extracts.write(self._fd, self._size, session)
        return entry

    def _catch_up(self) -> int:
        """Take in what other processes appended since our last entry; the bytes of a torn tail cut."""
        try:
            size = os.fstat(self._fd).st_size
        except OSError as error:
            raise LedgerWriteError(f"cannot read the box's ledger {self.path}: {error.strerror or error}") from None
        if size == self._size:
            return 0
        known = self._size
        self._size, self._next_seq, self._head, cut = _recover(self._fd, self.path, self._key)
        if self._extracts is not None:
            self._take_others(known)
        return cut

    def _take_others(self, known: int) -> None:
        """Tell the card's extracts of the entries other processes appended after our first `known` bytes."""
        assert self._extracts is not None
        try:
            if known > self._size:
                raise LedgerError(f"the box's ledger {self.path} is shorter than this process wrote it")
            for line in os.pread(self._fd, self._size - known, known).splitlines():
                self._extracts.take(Entry.parse(line, f"the box's ledger {self.path}, another process's entry"))
        except (OSError, LedgerError):
            self._extracts.forget()  # its sessions are then found in the file again

    def _write(self, entry: Entry) -> None:
        line = entry.line + b"\n"
        try:
            write_all(self._fd, line)
            os.fdatasync(self._fd)
        except OSError as error:
            # Cut back to the last whole entry, so the file never holds half of one.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            message = f"cannot write the box's ledger {self.path}: {error.strerror or error}"
            if not self._cut_back():
                # Another entry after half of one would put a broken line inside the ledger; the
                # next open cuts the torn tail and records the gap instead.
                self._close_after_failure(f"{message}; it could not be cut back: restart the box")
            raise LedgerWriteError(message) from None
        self._size += len(line)
        self._next_seq += 1
        self._head = entry.digest
        if self._extracts is not None:
            self._extracts.take(entry)

    def _cut_back(self) -> bool:
        """Whether the file ends after the last whole entry again."""
        try:
            return os.fstat(self._fd).st_size == self._size
        except OSError:
            return False

    def _close_after_failure(self, reason: str) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
        self._failed = reason

    def has_entry(self, kind: Kind, session: str | None = None, **fields: str) -> bool:
        """Whether the ledger (any process's entries) holds an entry of `kind` for `session` (if given)
        with these values of hex or word `fields`."""
        # Canonical lines spell such fields one way only, so a byte search is exact.
        pairs = {"kind": kind.value, **({} if session is None else {"session": session}), **fields}
        wanted = [f'"{name}":"{value}"'.encode() for name, value in pairs.items()]
        with open(self.path, "rb") as lines:
            return any(all(field in line for field in wanted) for line in lines)

    def session_range(self, session: str) -> SessionRange:
        """The sequence range and head hash of `session`'s entries so far, for its manifest."""
        try:
            return self._ranges[session]
        except KeyError:
            raise LedgerError(f"session {session} has no entries in the ledger since the box started") from None

    def sync_card(self) -> bool:
        """Rewrite the extract of every session of the ledger that has files on the card (each append
        rewrites its own session's; call this when a card comes back); whether the card took them all."""
        if self._fd < 0 or self._extracts is None:
            return False
        with _locked(self._fd):
            self._catch_up()
            return self._extracts.write_all(self._fd, self._size)

    @property
    def next_seq(self) -> int:
        """The sequence number the next entry will get."""
        return self._next_seq

    def close(self, *, shutdown: bool = True) -> None:
        """Append a `shutdown` entry (unless told not to: the box is not stopping cleanly) and close the file.

        A no-op if closed already.
        """
        if self._fd < 0:
            return
        try:
            if shutdown:
                self.append(Kind.SHUTDOWN)
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    """Hold the ledger's exclusive lock: one process at a time reads its tail and appends."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _recover(fd: int, path: Path, key: DeviceSigningKey) -> tuple[int, int, str, int]:
    """Cut a torn tail off the open ledger; (size, next sequence number, head hash, bytes cut)."""
    size = os.fstat(fd).st_size
    end = last_newline(fd, size) + 1
    cut = size - end
    if cut:
        os.ftruncate(fd, end)
        os.fsync(fd)
    if end == 0:
        return 0, 0, genesis(key.public_key), cut
    begin = last_newline(fd, end - 1) + 1
    if end - begin > MAX_LINE + 1:
        raise LedgerError(f"the box's ledger {path} ends with a line of {end - begin} bytes: not an entry")
    where = f"the box's ledger {path}, last entry"
    last = Entry.parse(os.pread(fd, end - begin - 1, begin), where)
    # Only the last entry is checked here (a whole check of a years-long ledger at every start would
    # be slow); consentbox-admin verify-ledger checks everything.
    last.check_signature(key.public_key, where)
    return end, last.seq + 1, last.digest, cut
