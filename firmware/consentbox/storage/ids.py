"""Session ids and digests as text: what every file name and record that names a session or a digest
must look like."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

#: How many hex digits a session id has; a session's files on the card are named `<id>.…`.
SESSION_ID_DIGITS = 16

_SESSION_ID = re.compile(r"[0-9a-f]{16}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def new_session_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh session id: 16 random hex digits, nothing a stranger could tie to a person or a time."""
    return random_bytes(SESSION_ID_DIGITS // 2).hex()


def is_session_id(value: object) -> bool:
    """Whether `value` is a session id: 16 lowercase hex digits."""
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def is_sha256(value: object) -> bool:
    """Whether `value` is a SHA-256 digest in lowercase hex."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None
