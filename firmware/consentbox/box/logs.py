"""Where the box's timeline goes: journald with structured fields under systemd, else stderr.

Under systemd (which tells a service its stderr is the journal with `JOURNAL_STREAM`) each timeline
entry is one journal record sent through `systemd.journal`: MESSAGE is the entry as compact JSON, and
the fields `CONSENTBOX_EVENT`, `SESSION_ID`, `STATUS_CODE` (a blink code: why the box cannot record) and
`PROVISIONING_CODE` (why a stick was refused) let IT filter, as in `journalctl -u consentbox
CONSENTBOX_EVENT=fault`. The two are separate numberings (3 is "card full" as a blink code and "version
not newer" as a provisioning code), so each has its own field. SESSION_ID is on every record of a
session's story, from its `setup` entry to its `session` entry (consents, captures, files, faults), not
only on the entries that name the session, so `journalctl SESSION_ID=…` selects the whole of it.
Elsewhere the same JSON goes to stderr, one line each.
Timeline entries hold events, ids, codes and words only: never audio, never a key.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from consentbox.core.reasons import Problem

Report = Callable[[dict[str, Any]], None]

# journald priorities (syslog levels).
_ERROR, _WARNING, _INFO, _DEBUG = 3, 4, 6, 7
#: Every LED change and tone is an entry; they are kept, but below the default view.
_DEBUG_EVENTS = frozenset({"led", "status", "seats", "flash", "tone"})
_WARNING_EVENTS = frozenset({"fault", "clock", "refused"})
_ERROR_EVENTS = frozenset({"ledger", "journal"})
_PROBLEM_CODES = {problem.text: problem.code for problem in Problem}


def stderr_report(entry: dict[str, Any]) -> None:
    """One timeline entry as a JSON line on stderr."""
    print(_json(entry), file=sys.stderr, flush=True)


def journal_fields(entry: dict[str, Any], *, session: str | None = None) -> dict[str, str]:
    """The journal record for one timeline entry; `session`: the session open when it was made, if any
    (an entry that names a session of its own is filed under that one)."""
    event = str(entry.get("event", ""))
    fields = {"MESSAGE": _json(entry), "CONSENTBOX_EVENT": event, "PRIORITY": str(_priority(event))}
    session = _session_named(entry) or session
    if session:
        fields["SESSION_ID"] = session
    code = _status_code(entry)
    if code is not None:
        fields["STATUS_CODE"] = str(code)
    provisioning = _provisioning_code(entry)
    if provisioning is not None:
        fields["PROVISIONING_CODE"] = str(provisioning)
    return fields


class JournalReport:
    """Sends a run's timeline to journald, entry by entry, following which session is open: the box's
    entries say nothing of the session (a consent, a fault) except at its set-up and its end."""

    def __init__(self) -> None:
        self._open: str | None = None

    def fields(self, entry: dict[str, Any]) -> dict[str, str]:
        """The journal record for the next entry of the timeline, under the session open when it was made."""
        event = entry.get("event")
        if event == "setup":
            self._open = _session_named(entry)
        fields = journal_fields(entry, session=self._open)
        if event == "session":  # the session's last entry: what follows belongs to no session
            self._open = None
        return fields

    def __call__(self, entry: dict[str, Any]) -> None:
        """Send the next timeline entry to journald."""
        from systemd import journal  # only where there is a journal

        journal.send(**self.fields(entry))


def choose_report() -> Report:
    """journald when systemd connected us to it, else stderr."""
    return JournalReport() if os.environ.get("JOURNAL_STREAM") else stderr_report


def _priority(event: str) -> int:
    if event in _ERROR_EVENTS:
        return _ERROR
    if event in _WARNING_EVENTS:
        return _WARNING
    return _DEBUG if event in _DEBUG_EVENTS else _INFO


def _session_named(entry: dict[str, Any]) -> str | None:
    """The session an entry names itself (`setup`, `session`, `recovered`), if any."""
    session = entry.get("id")
    return session if isinstance(session, str) and session else None


def _status_code(entry: dict[str, Any]) -> int | None:
    """The blink code an entry shows or names: a red code on the STATUS LED, a fault, a refused gesture."""
    if entry.get("event") == "status" and entry.get("rhythm") == "code" and entry.get("colour") == "red":
        return int(entry["count"])
    if entry.get("event") in ("fault", "refused"):
        return _PROBLEM_CODES.get(str(entry.get("problem", entry.get("reason"))))
    return None


def _provisioning_code(entry: dict[str, Any]) -> int | None:
    """The provisioning code of a refused stick (flashed in amber), from the box's `provisioning` entry."""
    if entry.get("event") == "provisioning" and entry.get("code") is not None:
        return int(entry["code"])
    return None


def _json(entry: dict[str, Any]) -> str:
    return json.dumps(entry, separators=(",", ":"))
