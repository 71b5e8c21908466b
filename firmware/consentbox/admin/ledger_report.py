"""What consentbox-admin prints about a consent ledger, for the clinic's file.

`summary_lines` is what `verify-ledger` prints for the box's ledger, `extract_lines` for a session's
extract. `consent_record` checks one session's files on the card against the seals in its extract
(`<id>.ledger.age`, signed by a trusted box: `admin.evidence`), then sets the extract's entries beside
the session's manifest and checks that the two agree; `ConsentRecord.text` is the printable record.
Anyone with a supervisor's public key can write a manifest; only the box's seal says one is the box's,
so a manifest the seals do not bind is not read, and a disagreement between a sealed manifest and the
ledger means the record is not the story of this session (an older extract put back, say).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from consentbox import __version__
from consentbox.admin.boxes import AcceptedBoxes
from consentbox.admin.evidence import SessionEvidence, Verdict, verify_session
from consentbox.admin.export import read_manifest
from consentbox.admin.extracts import extract_path
from consentbox.core.errors import ConsentBoxError
from consentbox.core.reasons import EndReason, Problem
from consentbox.crypto import Identity
from consentbox.ledger import Entry, Kind, Summary, Tail
from consentbox.ledger.extract import Extract
from consentbox.recording.manifest import LedgerRange, Manifest, ManifestError, extract_name, manifest_name

#: How far apart (in seconds) the ledger and the manifest may put the same moment. Both read the
#: box's one monotonic clock, a few writes apart; anything further apart is a different story.
TOLERANCE = 0.5
#: The same for wall-clock times (the start), which are read a few card writes apart.
WALL_TOLERANCE = 2.0

_SESSION_ID_DIGITS = 16


class ReportError(ConsentBoxError, ValueError):
    """A consent record cannot be made: no extract of the session on the card, or a manifest that is not one."""


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


def extract_lines(extract: Extract, path: Path, *, key_given: bool) -> list[str]:
    """The lines `verify-ledger` prints for a session's extract that verified."""
    key_note = "" if key_given else (" (named by the extract itself: compare it with the key recorded "
                                     "when the box was provisioned, or pass --device-key)")
    first, last = extract.entries[0], extract.entries[-1]
    return [
        f"extract      {path}",
        f"session      {extract.session}",
        f"device key   {extract.device_key}{key_note}",
        f"boot         {_wall(extract.boot)} (seq {extract.boot.seq})",
        f"entries      {len(extract.entries)} of this session (seq {first.seq}–{last.seq})",
        f"first        {_wall(first)} (seq {first.seq}, {first.kind.value})",
        f"last         {_wall(last)} (seq {last.seq}, {last.kind.value})",
        "signed       as a whole by the device key: no line of it was removed, moved or edited (an older "
        "extract of the session put back on the card would verify too: it is the whole story only if it "
        "is the newest)",
        "result       intact",
    ]


@dataclass(frozen=True)
class Check:
    """One point on which the ledger and the manifest are compared."""

    point: str
    ledger: str
    manifest: str
    agree: bool


@dataclass(frozen=True)
class ConsentRecord:
    """One session's consent timeline from its extract, and how it compares with its manifest."""

    card: Path
    session: str
    evidence: SessionEvidence  # the session's files checked against its box's seals
    manifest: Manifest | None  # None when not on the card, or not the box's (then not read)
    checks: tuple[Check, ...]

    @property
    def extract(self) -> Extract:
        """The session's extract, verified."""
        return self.evidence.extract

    @property
    def agree(self) -> bool:
        """Whether every file is as the box sealed it, and the ledger and the manifest agree on every point."""
        return self.evidence.intact and all(check.agree for check in self.checks)

    @property
    def disagreements(self) -> list[Check]:
        """The points on which they do not."""
        return [check for check in self.checks if not check.agree]

    def text(self, made: datetime) -> str:
        """The printable record (plain text, 100 columns), as made at `made`."""
        extract = self.extract
        first, last = extract.entries[0], extract.entries[-1]
        if self.manifest is not None:
            manifest = f"{manifest_name(self.session)} (decrypted with the supervisor's key)"
        elif manifest_name(self.session) in (found.name for found in self.evidence.failures):
            manifest = f"{manifest_name(self.session)} is not the box's: not read"
        else:
            manifest = f"none ({manifest_name(self.session)} is not on the card)"
        failures = self.evidence.failures
        files = (f"{len(self.evidence.files)} checked against the box's seals: "
                 + ("each as the box left it" if not failures else f"{len(failures)} NOT as the box left them"))
        out = [
            "ConsentBox consent record",
            "=========================",
            f"Session      {self.session}",
            f"Card         {self.card}",
            f"Ledger       {extract_name(self.session)}: intact, signed as a whole; {len(extract.entries)} "
            f"entries, seq {first.seq}–{last.seq}, head {last.digest}",
            f"Device key   {extract.device_key} ({self.evidence.box})",
            f"Files        {files}",
            f"Manifest     {manifest}",
            f"Made         {made.isoformat(sep=' ', timespec='seconds')} by consentbox-admin {__version__}",
            "",
            "Timeline from the ledger (offset: seconds after the set-up began, on the box's clock)",
            f"  {'seq':>6}  {'wall-clock time':<25}  {'offset':>9}  event",
        ]
        offsets = _LedgerView(extract).offsets
        for entry in extract.entries:
            offset = offsets[entry.seq]
            shown = "after a restart" if offset is None else f"{offset:.3f}"
            out.append(f"  {entry.seq:>6}  {_wall(entry):<25}  {shown:>9}  {describe(entry)}")
        if not any(entry.kind is Kind.END for entry in extract.entries):
            out.append("  (no end entry: the box stopped while the session was open, or this extract is not "
                       "the newest)")
        out += ["", f"Checked against the manifest (times agree within {TOLERANCE} s; the start's "
                f"wall-clock time within {WALL_TOLERANCE} s)"]
        for check in self.checks:
            verdict = "agree" if check.agree else "DISAGREE"
            out.append(f"  {check.point:<12} ledger: {check.ledger:<27} manifest: {check.manifest:<27} {verdict}")
        out += ["", "Files checked against the box's seals (docs/formats.md, \"What a verifier checks\")"]
        out += [f"  {found.name:<30} {found.verdict.value}" + (f": {found.problem}" if found.problem else "")
                for found in self.evidence.files] or ["  (none: the session left no files)"]
        out.append("")
        if failures:
            out.append(f"Result: the card's files are NOT as the box sealed them: {self.evidence.refusal()}.")
        elif self.agree and self.manifest is None:
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
    identities: Sequence[Identity],
    boxes: AcceptedBoxes,
) -> ConsentRecord:
    """Check `session`'s files on the card against the seals of its extract, whose box `boxes` must accept
    (`admin.evidence.verify_session`), and compare the extract's entries with the manifest, if the box
    sealed it: each file that fails its seals is a disagreement of its own.

    ExtractError (a LedgerError) if the extract is not intact or cannot be decrypted; UnknownBoxError if
    its box is not accepted; ReportError if the card has none; the manifest's own errors if it cannot be read.
    """
    if len(session) != _SESSION_ID_DIGITS or any(c not in "0123456789abcdef" for c in session):
        raise ReportError(f"{session!r} is not a session id (16 lowercase hex digits, as in the file names)")
    ledger = extract_path(card, session)
    if not ledger.exists():
        raise ReportError(f"no ledger extract of session {session} on the card: {ledger} is missing")
    evidence = verify_session(card, session, identities, boxes)
    path = card / manifest_name(session)
    sealed = any(found.name == path.name and found.verdict is Verdict.WHOLE for found in evidence.files)
    try:
        manifest = read_manifest(path, identities) if sealed else None
    except ManifestError as error:  # its words name the field, not the file
        raise ReportError(f"{path.name}: {error}") from None
    view = _LedgerView(evidence.extract)
    if manifest is not None:
        checks = view.compare(manifest)
    elif path.exists():
        checks = []  # a manifest the box did not seal says nothing of this session: its seal check fails
    else:
        checks = view.without_manifest(card, session)
    return ConsentRecord(card, session, evidence, manifest, tuple(checks))


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
        if fields["cause"] in ("absent", "off_box"):
            how = "destroyed off the box" if fields["cause"] == "off_box" else "gone from the card"
            return f"recording {how}, found when the card was back (due {fields['due']})"
        return (f"{fields['files']} file{'s' if fields['files'] != 1 else ''} destroyed ({fields['cause']}; "
                f"due {fields['due']})")
    if kind is Kind.EXPIRY:
        return f"expires on {fields['expires']} ({fields['reason']})"
    if kind is Kind.FAULT:
        problem = next(p for p in Problem if p.code == fields["problem"])
        return f"fault: {problem.text} (STATUS code {problem.code})"
    if kind is Kind.SILENCE_ENDED:
        end = "sound came back" if fields["heard"] else "capture closed"
        return f"silence over after {fields['seconds']:.0f} s: {end}"
    return {Kind.START: "recording started", Kind.PAUSE: "recording paused",
            Kind.RESUME: "recording resumed"}.get(kind, kind.value)


class _LedgerView:
    """A session as its ledger entries tell it, in the manifest's terms.

    Offsets are seconds after the set-up on the box's clock, which starts again at each boot: an
    entry written after a restart (the `interrupted` end the box records when it starts again, a
    later destruction) has no offset, and only its words are compared.
    """

    def __init__(self, extract: Extract) -> None:
        entries = extract.entries
        self.entries = entries
        self.setup = _first(entries, Kind.SETUP)
        anchor = self.setup or entries[0]
        run = extract.run_of[anchor.seq]
        self.offsets = {e.seq: e.mono - anchor.mono if extract.run_of[e.seq] == run else None for e in entries}
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
        left = sorted(name for name in os.listdir(card)
                      if name.startswith(f"{session}.") and name != extract_name(session))
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
