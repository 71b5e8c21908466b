"""`consentbox-admin destroy`: a supervisor destroys one session's recording on a card, as the box's wipe does.

First an empty `<id>.destroyed` is left on the card; then each segment, and the manifest last, is
overwritten with random bytes, synced, truncated and unlinked (storage/shred.py, the wipe's own code).
When the card is next in the box's slot, the box finds the recording gone and the mark there, records
the destruction in its ledger with cause `off_box`, and removes the mark. The mark comes first so that
a destruction stopped half-way is still taken as off the box once it is finished. The card's copy of
the session's ledger entries (`<id>.ledger.age`) stays: it is the record that the session was made.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from consentbox.core.errors import ConsentBoxError
from consentbox.recording.recorded import destroyed_mark_name, recorded_files
from consentbox.storage import portable
from consentbox.storage.durable import sync_directory
from consentbox.storage.file_times import hide_path_times
from consentbox.storage.ids import is_session_id
from consentbox.storage.shred import shred

_MARK_MODE = 0o644  # empty: it says only that the session's id was destroyed, which its file names said


class DestroyError(ConsentBoxError, ValueError):
    """Nothing of that session to destroy: the id is not a session id, or the card holds no recording of it."""


def destroy_session(card: Path, session: str, say: Callable[[str], None]) -> None:
    """Destroy `session`'s recording on the card directory `card`, saying one line per file.

    DestroyError if `session` is not a session id or has no segment or manifest on the card; OSError
    if the card refuses (what was overwritten before stays overwritten; running it again finishes).
    """
    if not is_session_id(session):
        raise DestroyError(f"{session!r} is not a session id: give the 16 lowercase hex digits its files are named by")
    if not card.is_dir():
        raise DestroyError(f"{card} is not a directory: give the card's directory (where it is mounted)")
    files = recorded_files(card, session)
    if not files:
        raise DestroyError(f"session {session} has no recording on {card}: nothing to destroy")
    mark = card / destroyed_mark_name(session)
    os.close(portable.open_unfollowed(mark, os.O_WRONLY | os.O_CREAT, _MARK_MODE))
    hide_path_times(mark)  # as the box's files: its time would say when the supervisor destroyed the session
    sync_directory(card)
    for path in files:
        size = shred(path, lambda: True)
        say(f"destroyed {path.name}: {size} bytes overwritten, then removed")
    sync_directory(card)
