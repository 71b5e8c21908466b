"""The expiry index: `retention.json` in the box's state directory, never on the card.

For each session the box recorded: when it started and when it expires (POSIX seconds), the card it
was recorded on (the card's id, recording/card_id.py; unknown for sessions entered before cards had
ids), and, while the wipe is destroying it, how many files it had (so a wipe that was killed half-way
finishes the job at its next run and still gives the ledger the right count). Entries are added when a
session's files are created and removed once its destruction is in the ledger. Expiries only ever
move earlier: `shorten` takes the smaller of the old and the new. Every change holds an `flock` on
`retention.lock` while it reads and atomically replaces the file, because the box, the wipe and
provisioning all change it. The index is the box's working copy: the consent ledger's `expiry`
entries are the record of every expiry set and shortened (docs/retention.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from consentbox.core.errors import ConsentBoxError
from consentbox.recording.card_id import is_card_id
from consentbox.state.files import RETENTION_INDEX, RETENTION_LOCK
from consentbox.state.session_lock import exclusive
from consentbox.storage import strict_json
from consentbox.storage.atomic import replace_file
from consentbox.storage.canonical import canonical_json
from consentbox.storage.ids import is_session_id

_FORMAT = 1
_DAY = 86_400


class RetentionIndexError(ConsentBoxError, ValueError):
    """The expiry index cannot be read: the message says why and what to do."""


@dataclass(frozen=True)
class Expiry:
    """One session's place in the index."""

    started: int
    expires: int
    destroying: int | None = None  # files counted when its destruction began
    card: str | None = None  # the id of the card it was recorded on; None when not known

    @classmethod
    def starting(cls, started: float, retention_days: int, card: str | None) -> Expiry:
        """The expiry of a session that started at `started` (POSIX seconds) on `card`, under a policy
        that keeps recordings `retention_days` days."""
        return cls(int(started), int(started) + retention_days * _DAY, card=card)

    @property
    def due(self) -> date:
        """The date (the box's local time) on which the session expires: what the ledger records."""
        return date.fromtimestamp(self.expires)


class RetentionIndex:
    """The expiry index of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir

    def entries(self) -> dict[str, Expiry]:
        """Every session in the index."""
        try:
            data = (self._dir / RETENTION_INDEX).read_bytes()
        except FileNotFoundError:
            return {}
        return _parse(data, self._dir / RETENTION_INDEX)

    def add(self, session: str, started: float, retention_days: int, card: str | None = None) -> Expiry:
        """Enter a new session recorded on `card` (None: not known), expiring `retention_days` days after
        `started`."""
        entry = Expiry.starting(started, retention_days, card)
        self._update(lambda sessions: sessions.setdefault(session, entry))
        return entry

    def shorten(self, days: int) -> dict[str, Expiry]:
        """Make every session expire at most `days` days after its start; the sessions that moved, as now."""
        moved: dict[str, Expiry] = {}

        def change(sessions: dict[str, Expiry]) -> None:
            for session, entry in sessions.items():
                limit = entry.started + days * _DAY
                if limit < entry.expires:
                    sessions[session] = moved[session] = replace(entry, expires=limit)
        self._update(change)
        return moved

    def mark_destroying(self, session: str, files: int) -> None:
        """Note that `session`'s destruction has begun, with its file count."""
        self._update(lambda sessions: sessions.__setitem__(session, replace(sessions[session], destroying=files)))

    def remove(self, session: str) -> None:
        """Forget `session` (its destruction is done and recorded)."""
        self._update(lambda sessions: sessions.pop(session, None))

    def _update(self, change: Callable[[dict[str, Expiry]], object]) -> None:
        with exclusive(self._dir / RETENTION_LOCK):
            sessions = self.entries()
            before = dict(sessions)
            change(sessions)
            if sessions != before:
                replace_file(self._dir, RETENTION_INDEX, _serialise(sessions), 0o600)


def _serialise(sessions: dict[str, Expiry]) -> bytes:
    return canonical_json({"format": _FORMAT, "sessions": {
        session: {"started": e.started, "expires": e.expires, "destroying": e.destroying, "card": e.card}
        for session, e in sessions.items()}}) + b"\n"


def _parse(data: bytes, path: Path) -> dict[str, Expiry]:
    try:
        value = strict_json.loads(data)
        if value["format"] != _FORMAT:
            raise ValueError(f"format {value['format']!r}")
        sessions = {}
        for session, entry in value["sessions"].items():
            if not is_session_id(session):
                raise ValueError(f"session id {session!r}")
            started, expires, destroying = entry["started"], entry["expires"], entry["destroying"]
            card = entry.get("card")  # absent from indexes written before cards had ids: not known
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (started, expires)) or (
                    destroying is not None and (not isinstance(destroying, int) or isinstance(destroying, bool))) or (
                    card is not None and not is_card_id(card)):
                raise ValueError(f"entry of {session}")
            sessions[session] = Expiry(started, expires, destroying, card)
        return sessions
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise RetentionIndexError(f"the expiry index {path} is damaged ({error}): no session is wiped until it is "
                          "repaired; see docs/retention.md") from None
