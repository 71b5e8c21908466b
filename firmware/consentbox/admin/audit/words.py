"""The words the audit's three renderings (text, CSV, HTML) share, so that they say the same thing."""

from __future__ import annotations

from collections.abc import Sequence

from consentbox.admin.audit.sessions import AuditedSession, Moment, SeatEvent, Stretch, file_words
from consentbox.admin.audit.sources import Audit
from consentbox.admin.evidence import Verdict


def when(moment: Moment | None) -> str:
    """A moment as seconds after the set-up, or as its wall-clock time when it is not on the set-up's clock."""
    if moment is None:
        return "-"
    if moment.offset is not None:
        return f"{moment.offset:.1f} s"
    return wall(moment)


def wall(moment: Moment | None) -> str:
    """A moment's wall-clock time as the box recorded it, to the second, with its UTC offset."""
    return "-" if moment is None else moment.wall.isoformat(sep=" ", timespec="seconds")


def day_and_time(moment: Moment | None) -> str:
    """A moment's date and time to the minute, as the box's clock gave them: for a table's narrow column."""
    return "-" if moment is None else moment.wall.strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    """H:MM:SS, or "-" when not known."""
    if seconds is None:
        return "-"
    minutes, whole = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{whole:02d}"


def seat_events(events: Sequence[SeatEvent]) -> str:
    """Consents or withdrawals: "seat 1 at 1.0 s, seat 2 at 2.0 s", or "none"."""
    return ", ".join(f"{'seat ' + str(e.seat) if e.seat is not None else 'a party'} at {when(e.at)}"
                     for e in events) or "none"


def stretches(items: Sequence[Stretch]) -> str:
    """Stretches of recording or pause: "4.0–6.1 s, 8.1 s–(cut short) 12.0 s", or "none"."""
    return ", ".join(f"{when(s.start)} to {'(cut short) ' if s.cut_short else ''}{when(s.end)}"
                     for s in items) or "none"


def faults(session: AuditedSession) -> str:
    """The faults the box recorded: "audio lost (code 8) at 20.0 s", or "none"."""
    return ", ".join(f"{f.problem} (code {f.code}) at {when(f.at)}" for f in session.faults) or "none"


def ending(session: AuditedSession) -> str:
    """How the session ended: its reason and whether the recording was kept."""
    end = session.ending
    if end is None:
        return "no end recorded"
    kept = "recording kept" if end.kept else "recording destroyed"
    return f"{end.reason} ({kept})"


def retention(session: AuditedSession) -> str:
    """The expiry in force, or the destruction and its due date."""
    destruction = session.destruction
    if destruction is not None:
        return (f"destroyed {destruction.at.wall.date().isoformat()} ({destruction.cause.replace('_', '-')}, "
                f"due {destruction.due.isoformat()})")
    if session.expires is not None:
        return f"expires {session.expires.isoformat()}"
    return "-"


def files(session: AuditedSession) -> str:
    """How the session's files fared, counted: "3 verified", "2 destroyed", "1 DOES NOT VERIFY, 2 verified"."""
    if session.files is None:
        return f"not checked ({session.sealed_files} sealed)" if session.sealed_files else "not checked"
    failing = sum(not found.verdict.bound for found in session.files)
    parts = [f"{failing} {'DOES' if failing == 1 else 'DO'} NOT VERIFY"] if failing else []
    parts += [f"{count} {word}" for verdict, word in _BOUND.items()
              if (count := sum(found.verdict is verdict for found in session.files))]
    return ", ".join(parts) or "none on the card"


_BOUND = {Verdict.WHOLE: "verified", Verdict.PREFIX: "cut short", Verdict.DESTROYED: "destroyed"}


#: The headings of `summary`'s cells.
SUMMARY = ("set up", "recorded", "headcount", "end", "files", "retention")


def summary(session: AuditedSession) -> list[str]:
    """The session's cells in the report's table, under SUMMARY's headings (its id and verdict go either side)."""
    return [day_and_time(session.setup), duration(session.recorded_seconds) if session.recorded else "-",
            "-" if session.headcount is None else str(session.headcount),
            "-" if session.ending is None else session.ending.reason, files(session), retention(session)]


def file_lines(session: AuditedSession) -> list[str]:
    """Each file checked, and what was found: "<name>: verified"."""
    return [f"{found.name}: {file_words(found)}" for found in session.files or ()]


def short_verdict(session: AuditedSession) -> str:
    """PASS or FAIL."""
    return "PASS" if session.intact else "FAIL"


def source(audit: Audit) -> str:
    """What was audited, and whether its files were checked."""
    kind = {"card": "a card: every file checked against the box's seals, on its ciphertext",
            "extract": "one session's extract: its files checked beside it against the box's seals",
            "ledger": "the box's own ledger: every session in it; the card's files not checked"}[audit.what]
    return f"{audit.source} ({kind})"


def period(audit: Audit) -> str:
    """The set-up dates reported."""
    first, last = audit.period.first, audit.period.last
    if first is None and last is None:
        return "every session"
    return (f"sessions set up {'from ' + first.isoformat() if first else ''}"
            f"{' ' if first and last else ''}{'to ' + last.isoformat() if last else ''}, both days included")


def result(audit: Audit) -> str:
    """The report's last line."""
    failing = [session for session in audit.sessions if not session.intact]
    if not audit.sessions:
        return "Result: no session to report."
    if not failing:
        return f"Result: all {len(audit.sessions)} sessions: consent complete and evidence intact."
    return (f"Result: {len(failing)} of {len(audit.sessions)} sessions FAIL: "
            + ", ".join(session.session for session in failing) + ".")


def events(session: AuditedSession) -> list[tuple[Moment, str]]:
    """Everything that happened in the session, in order, in words: those not on the set-up's clock last."""
    found: list[tuple[Moment, str]] = []
    if session.setup is not None:
        found.append((session.setup, f"set up for {session.headcount} part{'y' if session.headcount == 1 else 'ies'}"))
    found += [(e.at, f"consent given at seat {e.seat}") for e in session.consents]
    for number, stretch in enumerate(session.recordings):
        found.append((stretch.start, "recording began" if number == 0 else "recording resumed"))
        if stretch.cut_short and stretch.end is not None:
            found.append((stretch.end, "last moment recorded before the box stopped (cut short)"))
    found += [(stretch.start, "recording paused") for stretch in session.pauses]
    found += [(e.at, f"consent withdrawn by {'seat ' + str(e.seat) if e.seat is not None else 'a party'}")
              for e in session.withdrawals]
    found += [(f.at, f"fault: {f.problem} (STATUS code {f.code})") for f in session.faults]
    if session.ending is not None:
        found.append((session.ending.at, f"session ended: {ending(session)}"))
    found += [(e.at, f"expiry set to {e.expires.isoformat()} ({e.reason})") for e in session.expiries]
    if session.destruction is not None:
        d = session.destruction
        found.append((d.at, f"destruction receipt: {d.cause}, due {d.due.isoformat()}, {d.files} file(s) removed"))
    in_run = sorted((item for item in found if item[0].offset is not None), key=lambda item: item[0].offset or 0.0)
    later = sorted((item for item in found if item[0].offset is None), key=lambda item: item[0].wall)
    return in_run + later
