"""The card's identity: `consentbox-card.id` in the card's directory, 16 random hex digits and a newline.

The box writes one on a card that has none, and the expiry index notes the card each session was
recorded on. So the wipe can tell a session whose files are gone from its own card (in the slot, without
them: deleted by hand, or destroyed by a supervisor) from a session that is on another card. The id is
drawn at random: it says nothing about the clinic, the box or when the card was first used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from consentbox.core.errors import ConsentBoxError
from consentbox.storage.atomic import replace_file_at
from consentbox.storage.card_files import ForeignEntry, card_directory, open_file

#: The identity file's name in the card's directory.
CARD_ID_NAME = "consentbox-card.id"

_DIGITS = 16
_ID = re.compile(rb"[0-9a-f]{16}\n")  # the file's whole contents
_ID_TEXT = re.compile(r"[0-9a-f]{16}")
_FILE_MODE = 0o644  # nothing secret: a random number


class CardIdError(ConsentBoxError, ValueError):
    """The card's identity file is there but is not a card id."""


def is_card_id(value: object) -> bool:
    """Whether `value` is a card id: 16 lowercase hex digits."""
    return isinstance(value, str) and _ID_TEXT.fullmatch(value) is not None


def read_card_id(card: Path) -> str | None:
    """The id of the card whose directory is `card`, or None if it has none.

    CardIdError if the file is not a regular file with one name (a link, a FIFO, a directory, a device,
    a hard link), one the box may not read, or not 16 hex digits and a newline (at most that many bytes
    are read); OSError if the card cannot be read.
    """
    with card_directory(card) as directory:
        return _read_id(directory, card)


def _read_id(directory: int, card: Path) -> str | None:
    """`read_card_id` in the card's directory open as `directory`."""
    path = card / CARD_ID_NAME
    fix = f"remove {path}, then put the card back in the box"
    try:
        # Never a link followed, nor a FIFO or a device opened (storage/card_files.py).
        fd = open_file(directory, CARD_ID_NAME)
    except FileNotFoundError:
        return None
    except ForeignEntry as error:
        raise CardIdError(f"the card's id {path} is {error.what}, not a regular file the box wrote: {fix}") from None
    try:
        data = os.read(fd, _DIGITS + 2)
    finally:
        os.close(fd)
    if not _ID.fullmatch(data):
        raise CardIdError(f"the card's id {path} is not 16 hex digits and a newline: {fix}")
    return data[:_DIGITS].decode("ascii")


def card_identity(card: Path, random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """The id of the card whose directory is `card`, written there first (atomically) if it has none.

    CardIdError or OSError as `read_card_id`; OSError if a new id cannot be written.
    """
    with card_directory(card) as directory:
        found = _read_id(directory, card)
        if found is not None:
            return found
        made = random_bytes(_DIGITS // 2).hex()
        replace_file_at(directory, CARD_ID_NAME, f"{made}\n".encode("ascii"), _FILE_MODE, hidden_times=True)
    return made
