"""Reading a session's extract (`<id>.ledger.age`, the card's copy of its ledger entries) off a card.

`load_extract` decrypts the file with the identities given and verifies it (`consentbox.ledger.extract`):
what `verify-ledger` and `consent-report` show, and what the other commands check a card against.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from consentbox.crypto import Identity
from consentbox.crypto.format import VERSION_LINE
from consentbox.crypto.signing import DevicePublicKey
from consentbox.ledger.extract import Extract, decrypt_extract, read_extract
from consentbox.recording.manifest import extract_name
from consentbox.storage.card_files import open_for_reading
from consentbox.storage.ids import SESSION_ID_DIGITS, is_session_id


def extract_path(card: Path, session: str) -> Path:
    """Where the extract of `session` is on the card in directory `card`."""
    return card / extract_name(session)


def named_session(path: Path) -> str | None:
    """The session an extract's file name says it is (`<id>.ledger.age`), if it has such a name."""
    session = path.name[:SESSION_ID_DIGITS]
    return session if is_session_id(session) and path.name == extract_name(session) else None


def is_extract(path: Path) -> bool:
    """Whether the file at `path` is an age file (an extract), not a ledger's plain lines."""
    with open_for_reading(path) as src:
        return src.read(len(VERSION_LINE)) == VERSION_LINE


def load_extract(path: Path, identities: Sequence[Identity], *, session: str | None = None,
                 device_key: DevicePublicKey | None = None) -> Extract:
    """Decrypt the extract at `path` with `identities` and verify it (see `read_extract`): `session`, if
    given, is the one it must be; `device_key` the key that must have signed it (default: the key its
    boot entry names, reported in `Extract.device_key`). ExtractError (a LedgerError) or OSError."""
    with open_for_reading(path) as src:
        plaintext = decrypt_extract(src, identities, str(path))
    return read_extract(plaintext, str(path), session=session, device_key=device_key)
