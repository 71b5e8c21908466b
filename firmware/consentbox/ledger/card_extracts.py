"""The card's copy of the ledger: one encrypted extract per session whose files are on the card.

After each entry of a session whose files (its manifest, or its extract already) are on the card, the
box rewrites that session's `<id>.ledger.age` whole (`consentbox.ledger.extract`), encrypted to the
recipients and auditors it uses now; when a card comes back, it rewrites the extract of every
session of its ledger that has files there. Entries of no session (boot, provisioning, wipe, clock
corrections, faults outside a session) stay on the box only, and a session that never reached the
card leaves nothing there. Each extract replaces the last atomically, through the card's directory
and never through a link, and is given the card's fixed file time (`storage.file_times`).

A card that is missing, failing or taken out only leaves its extracts behind: nothing here raises
into recording. docs/formats.md ("The card's copy of the ledger") describes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from consentbox.crypto import Recipient
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.ports import UNUSABLE, Card
from consentbox.ledger.entry import Entry
from consentbox.ledger.extract import build_extract, encrypt_extract
from consentbox.ledger.session_entries import RecentSessions, SessionEntries, find_sessions
from consentbox.recording.manifest import extract_name, manifest_name
from consentbox.storage.atomic import replace_file_at
from consentbox.storage.card_files import listed_names, look, open_directory
from consentbox.storage.ids import SESSION_ID_DIGITS, is_session_id

_FILE_MODE = 0o644  # ciphertext only, as the session's other files

#: Whom the extracts are encrypted to now: the recipients and the auditors the box uses (none: no extract).
Readers = Callable[[], Sequence[Recipient]]


class CardExtracts:
    """Keeps the extracts on `card` of the sessions in the box's ledger (signed with `key`, encrypted to `readers()`).

    The ledger's writer tells it of every entry appended (`take`, `forget`) and asks for the extracts
    to be written (`write`, `write_all`) while it holds the ledger's lock, so processes appending
    beside each other write each extract in the ledger's order.
    """

    def __init__(self, card: Card, key: DeviceSigningKey, readers: Readers) -> None:
        self._card = card
        self._key = key
        self._readers = readers
        self._recent = RecentSessions()

    def take(self, entry: Entry) -> None:
        """Take in an entry just appended to the ledger (by this process or another)."""
        self._recent.take(entry)

    def forget(self) -> None:
        """The ledger changed in a way not taken in: find every session in the file from now on."""
        self._recent.forget()

    def write(self, fd: int, size: int, session: str) -> bool:
        """Rewrite `session`'s extract from the ledger (its first `size` bytes, open as `fd`) if its files
        are on the card; whether the card holds it now (true too when it has no files there)."""
        return self._attempt(lambda directory, readers: self._write_one(directory, readers, fd, size, session))

    def write_all(self, fd: int, size: int) -> bool:
        """Rewrite the extract of every session of the ledger that has files on the card (a card came back);
        whether they all were."""
        return self._attempt(lambda directory, readers: self._write_every(directory, readers, fd, size))

    def _attempt(self, step: Callable[[int, Sequence[Recipient]], None]) -> bool:
        """Run `step` on the card's directory, for the readers now; false if the card cannot take it (never raises)."""
        readers = self._readers()
        if not readers or self._card.problems() & UNUSABLE:
            return False
        try:
            directory = open_directory(self._card.path)
        except OSError:
            return False
        try:
            step(directory, readers)
        # A failing card; a ledger line this process cannot read (a LedgerError); a reader's key that cannot
        # be encrypted to (a KeyFormatError): each is a ValueError or an OSError, and none may stop a recording.
        except (OSError, ValueError):
            return False
        finally:
            os.close(directory)
        return True

    def _write_one(self, directory: int, readers: Sequence[Recipient], fd: int, size: int, session: str) -> None:
        if look(directory, manifest_name(session)) is None and look(directory, extract_name(session)) is None:
            return
        entries = self._recent.get(session)
        if entries is None:
            entries = find_sessions(fd, size, {session}).get(session)
            if entries is None:
                return  # another box's session: its extract is not ours to write
            self._recent.keep(session, entries)
        self._replace(directory, readers, session, entries)

    def _write_every(self, directory: int, readers: Sequence[Recipient], fd: int, size: int) -> None:
        # A bounded listing: a card can hold millions of names (storage/card_files.py).
        on_card = {name[:SESSION_ID_DIGITS] for name in listed_names(directory, _named_for_a_session)}
        for session, entries in sorted(find_sessions(fd, size, on_card).items()):
            self._replace(directory, readers, session, entries)

    def _replace(self, directory: int, readers: Sequence[Recipient], session: str,
                 entries: SessionEntries) -> None:
        plaintext = build_extract(self._key, entries.boot, entries.entries)
        replace_file_at(directory, extract_name(session), encrypt_extract(plaintext, readers), _FILE_MODE,
                        hidden_times=True)


def _named_for_a_session(name: str) -> bool:
    """Whether a name on the card is `<session id>.…`."""
    return name[SESSION_ID_DIGITS:SESSION_ID_DIGITS + 1] == "." and is_session_id(name[:SESSION_ID_DIGITS])
