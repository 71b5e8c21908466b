"""The audit as plain text, for the terminal and the clinic's file: a table of the sessions, one row each,
then each session in full, then the result."""

from __future__ import annotations

from consentbox import __version__
from consentbox.admin.audit import words
from consentbox.admin.audit.sessions import AuditedSession
from consentbox.admin.audit.sources import Audit

#: The table's columns: heading, width.
_COLUMNS = tuple(zip(("session", *words.SUMMARY, "verdict"), (16, 16, 8, 9, 16, 24, 50, 7), strict=True))


def render_text(audit: Audit) -> str:
    """The whole report, lines ending in "\\n"."""
    boxes = [f"{key} {label}" for key, label in audit.boxes] or ["-"]
    lines = [
        "ConsentBox audit",
        "================",
        f"Source     {words.source(audit)}",
        *(f"{'Box' if n == 0 else '':<10} {box}" for n, box in enumerate(boxes)),
        f"Period     {words.period(audit)}",
        f"Made       {audit.made.isoformat(sep=' ', timespec='seconds')} by consentbox-admin {__version__}",
        *(f"Note       {remark}" for remark in audit.remarks),
        "",
        _row([heading for heading, _ in _COLUMNS]),
        _row(["-" * width for _, width in _COLUMNS]),
        *(_row(_cells(session)) for session in audit.sessions),
    ]
    for session in audit.sessions:
        lines += ["", *_details(session)]
    lines += ["", words.result(audit)]
    return "\n".join(lines) + "\n"


def _cells(session: AuditedSession) -> list[str]:
    return [session.session, *words.summary(session), words.short_verdict(session)]


def _row(cells: list[str]) -> str:
    """One line of the table; a cell wider than its column pushes the rest along rather than being cut."""
    return "  ".join(cell.ljust(width) for (_, width), cell in zip(_COLUMNS, cells, strict=True)).rstrip()


def _details(session: AuditedSession) -> list[str]:
    """The session in full, one fact a line."""
    label = f"Session {session.session} (box: {session.box})"
    lines = [label, "-" * len(label)]
    if session.setup is not None:
        lines += [
            f"  set up       {words.wall(session.setup)} for {session.headcount} "
            f"part{'y' if session.headcount == 1 else 'ies'} (times below: seconds after the set-up)",
            f"  consents     {words.seat_events(session.consents)}",
            f"  recorded     {words.stretches(session.recordings)}",
            f"  paused       {words.stretches(session.pauses)}",
            f"  withdrawals  {words.seat_events(session.withdrawals)}",
            f"  faults       {words.faults(session)}",
            f"  ended        {words.ending(session)}"
            + (f" at {words.when(session.ending.at)}" if session.ending is not None else ""),
            f"  expiry       {', '.join(f'{e.expires} ({e.reason})' for e in session.expiries) or 'none recorded'}",
            f"  destruction  {_destruction(session)}",
        ]
    lines.append(f"  files        {words.files(session)}")
    lines += [f"    {line}" for line in words.file_lines(session)]
    lines += [f"  note         {note}" for note in session.notes]
    lines.append(f"  verdict      {session.verdict()}")
    return lines


def _destruction(session: AuditedSession) -> str:
    destruction = session.destruction
    if destruction is None:
        return "none recorded"
    return (f"receipt {words.wall(destruction.at)}, cause {destruction.cause}, due {destruction.due.isoformat()}, "
            f"{destruction.files} file{'s' if destruction.files != 1 else ''} removed by the box")
