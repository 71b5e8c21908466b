"""Which of a session's files on the card hold its recording, and the mark a supervisor's destruction leaves.

A session's recording is its segments (`<id>.NNN.wav.age`) and its manifest (`<id>.manifest.age`, and
`.<id>.manifest.age.tmp` while a new version is being written). Destroying a session destroys these;
any other file named by the session is not its recording and stays (the card's copy of its ledger
entries is the record that it was made and destroyed). `consentbox-admin destroy` leaves an empty
`<id>.destroyed` where the recording was, so that the box receipts the destruction as done off the box.
"""

from __future__ import annotations

import re
from pathlib import Path

from consentbox.recording.manifest import manifest_name
from consentbox.storage.card_files import listed_names

_RECORDING = re.compile(r"([0-9a-f]{16})\.(?:manifest|[0-9]+\.wav)\.age")
_TEMPORARY = re.compile(r"\.(.+)\.tmp")  # storage/atomic.py's temporary name of a file being replaced


def destroyed_mark_name(session: str) -> str:
    """The name of the empty file `consentbox-admin destroy` leaves on the card once `session` is destroyed."""
    return f"{session}.destroyed"


def recorded_files(card: Path, session: str) -> list[Path]:
    """The files of `session`'s recording on `card`, its manifest last; OSError if the card cannot be listed."""
    return [card / name for name in recorded_names(card, session)]


def recorded_names(card: Path | int, session: str) -> list[str]:
    """The names of `session`'s recording in the card's directory (a path, or on the box a descriptor
    open on it), its manifest last; OSError if the card cannot be listed. A card can hold any number of
    names made to look like a recording's: at most `card_files.MAX_LISTED` are kept."""
    manifest = manifest_name(session)
    found = listed_names(card, lambda name: _session_of(name) == session)
    return sorted(found, key=lambda name: (name == manifest, name))


def recorded_sessions(card: Path | int) -> set[str]:
    """Every session with a segment or a manifest in the card's directory (a path, or a descriptor open on
    it; a temporary manifest alone makes none); OSError if the card cannot be listed."""
    names = listed_names(card, lambda name: not name.startswith(".") and _session_of(name) is not None)
    return {session for session in map(_session_of, names) if session is not None}


def _session_of(name: str) -> str | None:
    """The session whose recording the file `name` is part of, or None if it is no recording's."""
    hidden = _TEMPORARY.fullmatch(name)
    found = _RECORDING.fullmatch(hidden[1] if hidden else name)
    return None if found is None else found[1]
