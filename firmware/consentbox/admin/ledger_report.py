"""What consentbox-admin prints about a consent ledger, for the clinic's file.

`summary_lines` is what `verify-ledger` prints. `consent_record` gathers one session's entries from
the card's copy of the ledger, sets them beside the session's manifest and checks that the two agree;
`ConsentRecord.text` is the printable record. The ledger is signed by the box and the manifest is
not (anyone with a supervisor's public key could write one), so a disagreement means one of them
does not tell the story of this session.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from consentbox import __version__
from consentbox.admin.export import read_manifest
from consentbox.core.errors import ConsentBoxError
from consentbox.core.reasons import EndReason, Problem
from consentbox.crypto import X25519Identity
from consentbox.crypto.signing import DevicePublicKey
from consentbox.ledger import LEDGER_NAME, Entry, Kind, Summary, Tail, verify
from consentbox.recording.manifest import LedgerRange, Manifest, manifest_name

#: How far apart (in seconds) the ledger and the manifest may put the same moment. Both read the
#: box's one monotonic clock, a few writes apart; anything further apart is a different story.
TOLERANCE = 0.5
#: The same for wall-clock times (the start), which are read a few card writes apart.
WALL_TOLERANCE = 2.0

_SESSION_ID_DIGITS = 16


class ReportError(ConsentBoxError, ValueError):
    """A consent record cannot be made: no ledger on the card, or no entries for the session."""


def summary_lines(summary: Summary, *, key_given: bool) -> list[str]:
    """The lines `verify-ledger` prints for a ledger that verified (to the end, or to a torn tail)."""
    sessions = f"{summary.sessions} session" + ("" if summary.sessions == 1 else "s")
    key_note = "" if key_given else (" (named by the ledger itself: compare it with the key recorded "
                                     "when the box was provisioned, or pass --device-key)")
    lines = [
        f"ledger       {summary.path}",
        f"device key   {summary.device_key}{key_note}",
        f"entries      {summary.entries} (seq 0–{summary.last.seq}), {sessions}, {summary.boots} "
        f"boot{'s' if summary.boots != 1 else ''}, {summary.gaps} gap{'s' if summary.gaps != 1 else ''} recorded",
        f"first        {_wall(summary.first)} (seq {summary.first.seq}, {summary.first.kind.value})",
        f"last         {_wall(summary.last)} (seq {summary.last.seq}, {summary.last.kind.value})",
    ]
    if summary.tail is Tail.TORN:
        lines += [f"tail         TRUNCATED: {summary.torn_bytes} bytes of a partial entry after seq "
                  f"{summary.last.seq} (a write cut short, as by a power cut; the box cuts it off and "
                  "records a gap at its next start)",
                  f"result       intact up to seq {summary.last.seq}; tail truncated"]
    else:
        lines += ["tail         complete (whole entries cut off the end would leave no trace in this "
                  "file: compare the last seq with the box's copy or a session's manifest)",
                  "result       intact"]
    return lines


@dataclass(frozen=True)
class Check:
    """One point on which the ledger and the manifest are compared."""

    point: str
    ledger: str
    manifest: str
    agree: bool


@dataclass(frozen=True)
class ConsentRecord:
    """One session's consent timeline from the ledger, and how it compares with its manifest."""

    card: Path
    session: str
    summary: Summary
    manifest: Manifest | None
    checks: tuple[Check, ...]

    @property
    def agree(self) -> bool:
        """Whether the ledger and the manifest (and the card's files) agree on every point."""
        return all(check.agree for check in self.checks)

    @property
    def disagreements(self) -> list[Check]:
        """The points on which they do not."""
        return [check for check in self.checks if not check.agree]

    def text(self, made: datetime) -> str:
        """The printable record (plain text, 100 columns), as made at `made`."""
        summary = self.summary
        span = summary.session_range()
        assert span is not None
        ledger_state = "intact" if summary.tail is Tail.COMPLETE else \
            f"intact up to seq {summary.last.seq}, tail truncated ({summary.torn_bytes} bytes)"
        manifest = (f"{manifest_name(self.session)} (decrypted with the supervisor's key)"
                    if self.manifest is not None else f"none ({manifest_name(self.session)} is not on the card)")
        out = [
            "ConsentBox consent record",
            "=========================",
            f"Session      {self.session}",
            f"Card         {self.card}",
            f"Ledger       {LEDGER_NAME}: {ledger_state}, {summary.entries} entries; this session: "
            f"seq {span.first}–{span.last}, head {span.head}",
            f"Device key   {summary.device_key}",
            f"Manifest     {manifest}",
            f"Made         {made.isoformat(sep=' ', timespec='seconds')} by consentbox-admin {__version__}",
            "",
            "Timeline from the ledger (offset: seconds after the set-up began, on the box's clock)",
            f"  {'seq':>6}  {'wall-clock time':<25}  {'offset':>9}  event",
        ]
        offsets = _LedgerView(summary).offsets
        for entry in summary.selected:
            offset = offsets[entry.seq]
            shown = "after a restart" if offset is None else f"{offset:.3f}"
            out.append(f"  {entry.seq:>6}  {_wall(entry):<25}  {shown:>9}  {describe(entry)}")
        if not any(entry.kind is Kind.END for entry in summary.selected):
            out.append("  (no end entry: the box stopped while the session was open, or the ledger's end is lost)")
        out += ["", f"Checked against the manifest (times agree within {TOLERANCE} s; the start's "
                f"wall-clock time within {WALL_TOLERANCE} s)"]
        for check in self.checks:
            verdict = "agree" if check.agree else "DISAGREE"
            out.append(f"  {check.point:<12} ledger: {check.ledger:<27} manifest: {check.manifest:<27} {verdict}")
        out.append("")
        if self.agree and self.manifest is None:
            out.append("Result: the card AGREES with the ledger: the session left no files, as the ledger says.")
        elif self.agree:
            out.append("Result: the ledger and the manifest AGREE.")
        else:
            points = ", ".join(check.point for check in self.disagreements)
            out.append(f"Result: the ledger and the manifest DISAGREE on {len(self.disagreements)} "
                       f"point{'s' if len(self.disagreements) != 1 else ''}: {points}.")
        return "\n".join(out) + "\n"


def consent_record(
    card: Path,
    session: str,
    identities: Sequence[X25519Identity],
    device_key: DevicePublicKey | None = None,
) -> ConsentRecord:
    """Verify the card's ledger, take `session`'s entries, and compare them with its manifest.

    LedgerError if the ledger is not intact; ReportError if there is no ledger or no entry for the
    session; the manifest's own errors if it cannot be read.
    """
    if len(session) != _SESSION_ID_DIGITS or any(c not in "0123456789abcdef" for c in session):
        raise ReportError(f"{session!r} is not a session id (16 lowercase hex digits, as in the file names)")
    ledger = card / LEDGER_NAME
    if not ledger.exists():
        raise ReportError(f"no ledger on the card: {ledger} is missing")
    summary = verify(ledger, device_key, session=session)
    if not summary.selected:
        raise ReportError(f"the ledger {ledger} has no entries for session {session}")
    path = card / manifest_name(session)
    manifest = read_manifest(path, identities) if path.exists() else None
    view = _LedgerView(summary)
    checks = view.compare(manifest) if manifest is not None else view.without_manifest(card, session)
    return ConsentRecord(card, session, summary, manifest, tuple(checks))


def describe(entry: Entry) -> str:
    """One entry of a session, in words."""
    fields = entry.fields
    kind = entry.kind
    if kind is Kind.SETUP:
        return f"set up for {_parties(fields['headcount'])}"
    if kind is Kind.HEADCOUNT:
        return f"headcount set to {fields['headcount']}"
    if kind is Kind.CONSENT:
        return f"consent given at seat {fields['seat']}"
    if kind is Kind.REFUSED:
        return f"refused: {fields['reason']}"
    if kind is Kind.END:
        kept = "what was recorded is kept" if fields["kept"] else "the recording is destroyed"
        reason = "normally" if fields["reason"] == EndReason.ENDED.value else f"({fields['reason']})"
        return f"session ended {reason}: {kept}"
    if kind is Kind.WITHDRAWAL:
        return "consent withdrawn" + (f" at seat {fields['seat']}" if fields["seat"] is not None else "")
    if kind is Kind.DESTRUCTION:
        return f"{fields['files']} file{'s' if fields['files'] != 1 else ''} destroyed ({fields['cause']})"
    if kind is Kind.FAULT:
        problem = next(p for p in Problem if p.code == fields["problem"])
        return f"fault: {problem.text} (STATUS code {problem.code})"
    return {Kind.START: "recording started", Kind.PAUSE: "recording paused",
            Kind.RESUME: "recording resumed"}.get(kind, kind.value)


class _LedgerView:
    """A session as its ledger entries tell it, in the manifest's terms.

    Offsets are seconds after the set-up on the box's clock, which starts again at each boot: an
    entry written after a restart (the `interrupted` end the box records when it starts again, a
    later destruction) has no offset, and only its words are compared.
    """

    def __init__(self, summary: Summary) -> None:
        entries = summary.selected
        self.entries = entries
        self.setup = _first(entries, Kind.SETUP)
        anchor = self.setup or entries[0]
        run = summary.boot_of[anchor.seq]
        self.offsets = {e.seq: e.mono - anchor.mono if summary.boot_of[e.seq] == run else None for e in entries}
        self.start = _first(entries, Kind.START)
        self.end = _first(entries, Kind.END)
        self.destruction = _first(entries, Kind.DESTRUCTION)
        counts = [e.fields["headcount"] for e in entries if e.kind in (Kind.SETUP, Kind.HEADCOUNT)]
        self.headcount: int | None = counts[-1] if counts else None
        self.consents = [(e.fields["seat"], self.offsets[e.seq]) for e in entries if e.kind is Kind.CONSENT]
        self.withdrawn = _first(entries, Kind.WITHDRAWAL) is not None or (
            self.end is not None and self.end.fields["reason"] == EndReason.WITHDRAWN.value)
        self.intervals: list[tuple[float | None, float | None]] = []
        for entry in entries:
            offset = self.offsets[entry.seq]
            if entry.kind in (Kind.START, Kind.RESUME):
                self.intervals.append((offset, None))
            elif entry.kind in (Kind.PAUSE, Kind.END) and self.intervals and self.intervals[-1][1] is None:
                self.intervals[-1] = (self.intervals[-1][0], offset)

    def compare(self, manifest: Manifest) -> list[Check]:
        """Every point on which the ledger and the manifest can be compared."""
        setup_digest = self.setup.fields["policy_sha256"] if self.setup else None
        checks = [
            Check("headcount", str(self.headcount), str(manifest.headcount), self.headcount == manifest.headcount),
            Check("policy", _short(setup_digest), _short(manifest.policy_sha256),
                  setup_digest == manifest.policy_sha256),
        ]
        recorded = [(c.seat, c.offset) for c in manifest.consents]
        for index in range(max(len(self.consents), len(recorded))):
            ours = _at(self.consents, index)
            theirs = _at(recorded, index)
            agree = ours is not None and theirs is not None and ours[0] == theirs[0] and _near(ours[1], theirs[1])
            checks.append(Check(f"consent {index + 1}", _consent(ours), _consent(theirs), agree))
        started = self.start.wall if self.start else None
        checks.append(Check("started", _moment(started), _moment(manifest.started), started is not None
                            and abs((started - manifest.started).total_seconds()) <= WALL_TOLERANCE))
        # After a power cut the card's recovery estimates the end of the last interval from the audio
        # on the card, while the ledger could not record one: an open interval then agrees.
        interrupted = manifest.end_reason is EndReason.INTERRUPTED
        listed = [(i.start, i.end) for i in manifest.intervals]
        for index in range(max(len(self.intervals), len(listed))):
            ours_span = _at(self.intervals, index)
            theirs_span = _at(listed, index)
            agree = (ours_span is not None and theirs_span is not None and _near(ours_span[0], theirs_span[0])
                     and (_near(ours_span[1], theirs_span[1]) or (ours_span[1] is None and interrupted)))
            checks.append(Check(f"interval {index + 1}", _span(ours_span), _span(theirs_span), agree))
        ours_end = (self.end.fields["reason"], self.offsets[self.end.seq]) if self.end else None
        theirs_end = (manifest.end_reason.value, manifest.ended) if manifest.end_reason is not None else None
        if ours_end is None or theirs_end is None:
            agree = ours_end == theirs_end or (ours_end is None and interrupted)
        else:
            agree = ours_end[0] == theirs_end[0] and (ours_end[1] is None or _near(ours_end[1], theirs_end[1]))
        checks.append(Check("end", _end(ours_end), _end(theirs_end), agree))
        checks.append(Check("withdrawn", _yes(self.withdrawn), _yes(manifest.withdrawn),
                            self.withdrawn == manifest.withdrawn))
        checks.append(Check("files", "destroyed" if self.destruction else "kept", "on the card",
                            self.destruction is None))
        if manifest.ledger is not None:
            checks.append(self._compare_range(manifest.ledger))
        return checks

    def _compare_range(self, named: LedgerRange) -> Check:
        """The manifest names the session's first and last ledger entries and the last one's hash."""
        ours = f"entries {self.entries[0].seq} to {self.entries[-1].seq}"
        theirs = f"entries {named.first} to {named.last}, head {_short(named.head)}"
        reached = [entry for entry in self.entries if entry.seq == named.last]
        agree = self.entries[0].seq == named.first and bool(reached) and reached[0].digest == named.head
        return Check("ledger", ours, theirs, agree)

    def without_manifest(self, card: Path, session: str) -> list[Check]:
        """The check when the card has no manifest: fine if nothing was recorded or it was destroyed."""
        left = sorted(name for name in os.listdir(card) if name.startswith(f"{session}."))
        on_card = f"{len(left)} file{'s' if len(left) != 1 else ''} left" if left else "none"
        if self.destruction is not None:
            return [Check("files", "destroyed", on_card, not left)]
        if self.start is None:
            return [Check("files", "nothing recorded", on_card, not left)]
        return [Check("files", "recorded", "NO MANIFEST", False)]


T = TypeVar("T")


def _at(items: Sequence[T], index: int) -> T | None:
    return items[index] if index < len(items) else None


def _first(entries: Sequence[Entry], kind: Kind) -> Entry | None:
    return next((entry for entry in entries if entry.kind is kind), None)


def _near(ours: float | None, theirs: float | None) -> bool:
    if ours is None or theirs is None:
        return ours is None and theirs is None
    return abs(ours - theirs) <= TOLERANCE


def _wall(entry: Entry) -> str:
    return _moment(entry.wall)


def _moment(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(sep=" ", timespec="seconds")


def _parties(count: int) -> str:
    return f"{count} part{'y' if count == 1 else 'ies'}"


def _short(digest: str | None) -> str:
    return "-" if digest is None else digest[:16] + "…"


def _seconds(offset: float | None) -> str:
    return "?" if offset is None else f"{offset:.3f}"


def _consent(consent: tuple[int, float | None] | None) -> str:
    return "-" if consent is None else f"seat {consent[0]} at {_seconds(consent[1])} s"


def _span(span: tuple[float | None, float | None] | None) -> str:
    if span is None:
        return "-"
    return f"{_seconds(span[0])}–{'open' if span[1] is None else _seconds(span[1])} s"


def _end(end: tuple[str, float | None] | None) -> str:
    if end is None:
        return "no end"
    return f"{end[0]} at {end[1]:.3f} s" if end[1] is not None else f"{end[0]} (after a restart)"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
