"""The audit as CSV, one row per session, for a spreadsheet or the clinic's records system.

RFC 4180 quoting (a field holding a comma, a quote or a line break is quoted, quotes doubled), UTF-8,
lines ending in "\\n", a header row of the `COLUMNS` (docs/audit.md says what each holds). An unknown
value is an empty field. A spreadsheet runs a field that begins with `=`, `+`, `-` or `@` as a formula,
so such a field is written with a `'` before it: nothing in a report can make it compute.
"""

from __future__ import annotations

import csv
import io

from consentbox.admin.audit import words
from consentbox.admin.audit.sessions import AuditedSession, Moment
from consentbox.admin.audit.sources import Audit
from consentbox.admin.evidence import Verdict

COLUMNS = (
    "session", "box", "set_up", "headcount", "consents", "recording_began", "recorded_seconds", "recordings",
    "pauses", "withdrawals", "faults", "end_reason", "ended", "kept", "expires", "destruction_cause",
    "destruction_due", "destruction_receipt", "files", "files_verified", "files_cut_short", "files_destroyed",
    "files_failing", "file_problems", "verdict", "reasons", "notes",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def render_csv(audit: Audit) -> str:
    """The header row and one row per session."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for session in audit.sessions:
        row = _row(session)
        writer.writerow([_inert(row[column]) for column in COLUMNS])
    return out.getvalue()


def _inert(value: str) -> str:
    """`value`, with a `'` before it if a spreadsheet would take it for a formula."""
    return "'" + value if value.startswith(_FORMULA) else value


def _row(session: AuditedSession) -> dict[str, str]:
    recorded = session.recorded
    end, destruction, files = session.ending, session.destruction, session.files
    row = {
        "session": session.session,
        "box": session.box,
        "set_up": _iso(session.setup),
        "headcount": "" if session.headcount is None else str(session.headcount),
        "consents": _listed(words.seat_events(session.consents)),
        "recording_began": _iso(session.started),
        "recorded_seconds": "" if session.recorded_seconds is None or not recorded
        else f"{session.recorded_seconds:.1f}",
        "recordings": _listed(words.stretches(session.recordings)),
        "pauses": _listed(words.stretches(session.pauses)),
        "withdrawals": _listed(words.seat_events(session.withdrawals)),
        "faults": _listed(words.faults(session)),
        "end_reason": "" if end is None else end.reason,
        "ended": _iso(None if end is None else end.at),
        "kept": "" if end is None else ("yes" if end.kept else "no"),
        "expires": "" if session.expires is None else session.expires.isoformat(),
        "destruction_cause": "" if destruction is None else destruction.cause,
        "destruction_due": "" if destruction is None else destruction.due.isoformat(),
        "destruction_receipt": _iso(None if destruction is None else destruction.at),
        "files": "not checked" if files is None else str(len(files)),
        "file_problems": "; ".join(f"{found.name}: {found.problem or found.verdict.value}" for found in files or ()
                                   if not found.verdict.bound),
        "verdict": words.short_verdict(session),
        "reasons": "; ".join(finding.text for finding in session.findings),
        "notes": "; ".join(session.notes),
    }
    for column, verdict in (("files_verified", Verdict.WHOLE), ("files_cut_short", Verdict.PREFIX),
                            ("files_destroyed", Verdict.DESTROYED)):
        row[column] = "" if files is None else str(sum(found.verdict is verdict for found in files))
    row["files_failing"] = "" if files is None else str(sum(not found.verdict.bound for found in files))
    return row


def _iso(moment: Moment | None) -> str:
    """The wall-clock time, ISO 8601 with its UTC offset, or empty."""
    return "" if moment is None else moment.wall.isoformat(timespec="seconds")


def _listed(text: str) -> str:
    """A list in words, with "none" left empty."""
    return "" if text == "none" else text
