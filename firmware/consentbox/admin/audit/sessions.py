"""One session as its ledger entries tell it, for the compliance reviewer: when it was set up, who
consented and when, when audio was captured, paused and withdrawn, how it ended, when it expires and
how it was destroyed; and the verdict on it.

The entries are taken one at a time, in sequence order (`SessionStory.take`), so a ledger of years
is read without holding it: only what the report shows is kept. Nothing here reads a file; the card's
files are checked elsewhere (`admin.evidence`) and their results handed to `SessionStory.audited`.

The box's clock (`mono`) starts again at each start of the box, and the jobs beside it (provisioning,
the wipe) time their entries by a clock of their own. So a moment is placed on the session's timeline
(seconds after its set-up) only when the box itself wrote it in the run of the set-up; any other (the
end recovery records after a power cut, an expiry a bundle or the wipe shortened, a destruction but
the one at a withdrawal) has only its wall-clock time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from consentbox.admin.evidence import FileEvidence, Verdict
from consentbox.core.reasons import EndReason, Problem
from consentbox.ledger import Entry, Kind

#: The verdict on a session whose consent is complete and whose evidence is intact.
PASSED = "consent complete and evidence intact"
#: The verdict on a session set up but never recorded (nothing to be intact or not).
NOTHING_RECORDED = "nothing was recorded"


@dataclass(frozen=True)
class Moment:
    """When something happened: the box's wall-clock time, and seconds after the session's set-up on
    the box's clock (None when it is not on the set-up's clock: see the module's words)."""

    wall: datetime
    offset: float | None


@dataclass(frozen=True)
class SeatEvent:
    """A consent or a withdrawal: the seat (None: a withdrawal whose seat the box did not know)."""

    seat: int | None
    at: Moment


@dataclass(frozen=True)
class Stretch:
    """A stretch of the session: audio captured (from start or resume) or a pause (from pause).

    `end` is None while it was still open when the ledger stops; `cut_short` marks one the box never
    closed (it stopped, as in a power cut): `end` is then the last moment the ledger shows it open.
    """

    start: Moment
    end: Moment | None
    cut_short: bool = False

    def seconds(self) -> float | None:
        """How long it lasted on the box's clock, when both ends were in one run."""
        if self.end is None or self.start.offset is None or self.end.offset is None:
            return None
        return self.end.offset - self.start.offset


@dataclass(frozen=True)
class Fault:
    """A fault the box recorded during the session: its problem's words and STATUS code."""

    problem: str
    code: int
    at: Moment


@dataclass(frozen=True)
class Silence:
    """A stretch in which the microphone heard nothing, long enough for the box to alert it (recording went
    on): when it began, how long it lasted, and whether sound came back (else capture closed)."""

    start: Moment
    seconds: float
    heard: bool

    def words(self) -> str:
        """The stretch in words, as a note of the report."""
        end = "sound came back" if self.heard else "still silent when capture closed"
        return f"the microphone heard nothing from {_when(self.start)} for {self.seconds:.0f} s ({end})"


@dataclass(frozen=True)
class Ending:
    """How the session ended: the end reason (the manifest's words) and whether the recording is kept."""

    reason: str
    kept: bool
    at: Moment


@dataclass(frozen=True)
class Expiry:
    """An expiry set or shortened: the date, and why (`recorded`, `bundle`, `policy`)."""

    expires: date
    reason: str
    at: Moment


@dataclass(frozen=True)
class Destruction:
    """The receipt of the session's destruction: why, the date that was due, the files removed."""

    cause: str
    due: date
    files: int
    at: Moment


def file_words(found: FileEvidence) -> str:
    """What the check of one file found, in the reviewer's words."""
    if found.verdict is Verdict.WHOLE:
        return "verified"
    if found.verdict is Verdict.PREFIX:
        return f"verified as far as the box sealed it ({found.bound_bytes} bytes): cut short"
    if found.verdict is Verdict.DESTROYED:
        return "destroyed"
    return f"DOES NOT VERIFY: {found.problem or found.verdict.value}"


class Concern(enum.Enum):
    """Which half of the verdict a finding breaks."""

    CONSENT = "consent"
    EVIDENCE = "evidence"


@dataclass(frozen=True)
class Finding:
    """A reason the verdict is not PASSED."""

    concern: Concern
    text: str


@dataclass(frozen=True)
class AuditedSession:
    """Everything the report says of one session, and its verdict.

    `files` is None when the files were not checked (the source was the box's ledger, not a card).
    A session whose ledger could not be read has only its id, `box` and its finding.
    """

    session: str
    box: str  # the trusted box's label
    setup: Moment | None
    headcount: int | None
    consents: tuple[SeatEvent, ...]
    recordings: tuple[Stretch, ...]
    pauses: tuple[Stretch, ...]
    withdrawals: tuple[SeatEvent, ...]
    faults: tuple[Fault, ...]
    ending: Ending | None
    expiries: tuple[Expiry, ...]
    destruction: Destruction | None
    sealed_files: int  # files the box sealed (segments and the manifest)
    files: tuple[FileEvidence, ...] | None
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]

    @property
    def intact(self) -> bool:
        """Whether consent is complete and the evidence intact: no finding."""
        return not self.findings

    @property
    def recorded(self) -> bool:
        """Whether audio capture ever began."""
        return bool(self.recordings)

    @property
    def expires(self) -> date | None:
        """The expiry in force: the last one recorded."""
        return self.expiries[-1].expires if self.expiries else None

    @property
    def started(self) -> Moment | None:
        """When capture first began."""
        return self.recordings[0].start if self.recordings else None

    @property
    def recorded_seconds(self) -> float | None:
        """Seconds of capture on the box's clock (a stretch cut short counts to its last known moment);
        None if a stretch's length is not known."""
        lengths = [stretch.seconds() for stretch in self.recordings]
        return None if None in lengths else sum(length for length in lengths if length is not None)

    def verdict(self) -> str:
        """The verdict in words: PASSED, NOTHING_RECORDED, or which half fails and why."""
        if not self.findings:
            return PASSED if self.recorded or self.files else NOTHING_RECORDED
        if self.setup is None:  # its ledger could not be read: nothing is known of its consent
            return "NOT audited: " + "; ".join(finding.text for finding in self.findings)
        consent = "consent NOT complete" if self.concerns(Concern.CONSENT) else "consent complete"
        evidence = "evidence NOT intact" if self.concerns(Concern.EVIDENCE) else "evidence intact"
        return f"{consent}, {evidence}: " + "; ".join(finding.text for finding in self.findings)

    def concerns(self, concern: Concern) -> bool:
        """Whether a finding breaks `concern`."""
        return any(finding.concern is concern for finding in self.findings)


def unreadable(session: str, box: str, problem: str) -> AuditedSession:
    """A session whose ledger could not be read or verified: only `problem` is known of it."""
    return AuditedSession(session, box, None, None, (), (), (), (), (), None, (), None, 0, None,
                          (Finding(Concern.EVIDENCE, problem),), ())


class SessionStory:
    """Gathers one session's entries, in sequence order, into an `AuditedSession`."""

    def __init__(self, session: str) -> None:
        self.session = session
        self._setup_run: int | None = None
        self._anchor: float = 0.0
        self._last_in_setup_run: Moment | None = None  # the last moment of the set-up's run
        self.setup: Moment | None = None
        self._headcount: int | None = None
        self._consented: set[int] = set()
        self._consents: list[SeatEvent] = []
        self._recordings: list[Stretch] = []
        self._pauses: list[Stretch] = []
        self._withdrawals: list[SeatEvent] = []
        self._withdrawn_after_end = False  # within withdraw_window after the session ended
        self._faults: list[Fault] = []
        self._silences: list[Silence] = []
        self._silence_alerted: Moment | None = None  # a silence alert whose end is not (yet) recorded
        self._ending: Ending | None = None
        self._expiries: list[Expiry] = []
        self._destruction: Destruction | None = None
        self._sealed: set[int | None] = set()
        self._findings: list[Finding] = []
        self._gaps: list[int] = []

    @property
    def open(self) -> bool:
        """Whether the session has begun and not yet ended, as far as its entries go."""
        return self._ending is None

    def take(self, entry: Entry, run: int) -> None:
        """Take the session's next entry, written in the box's `run` (its starts, counted in the ledger)."""
        at = self._moment(entry, run)
        kind, fields = entry.kind, entry.fields
        if kind is Kind.SETUP and self.setup is None:
            self.setup = at
        if kind in (Kind.SETUP, Kind.HEADCOUNT):
            self._headcount = fields["headcount"]
        elif kind is Kind.CONSENT:
            self._consented.add(fields["seat"])
            self._consents.append(SeatEvent(fields["seat"], at))
        elif kind in (Kind.START, Kind.RESUME):
            self._capture_opens(kind, at)
        elif kind is Kind.PAUSE:
            self._close_recording(at)
            self._pauses.append(Stretch(at, None))
        elif kind is Kind.WITHDRAWAL:
            self._withdrawals.append(SeatEvent(fields["seat"], at))
            self._withdrawn_after_end = self._ending is not None
        elif kind is Kind.END:
            self._close_recording(at)
            self._close_pause(at)
            self._ending = Ending(fields["reason"], fields["kept"], at)
        elif kind is Kind.FAULT:
            problem = next(p for p in Problem if p.code == fields["problem"])
            self._faults.append(Fault(problem.text, problem.code, at))
            if problem is Problem.MICROPHONE_SILENT:
                self._silence_alerted = at
        elif kind is Kind.SILENCE_ENDED:
            self._silences.append(Silence(_earlier(at, fields["seconds"]), fields["seconds"], fields["heard"]))
            self._silence_alerted = None
        elif kind is Kind.EXPIRY:
            self._expiries.append(Expiry(date.fromisoformat(fields["expires"]), fields["reason"], at))
        elif kind is Kind.DESTRUCTION:
            self._destruction = Destruction(fields["cause"], date.fromisoformat(fields["due"]), fields["files"], at)
        elif kind is Kind.SEAL:
            self._sealed.add(fields["segment"])

    def gap(self, seq: int) -> None:
        """The box cut off a torn entry (a `gap` entry at `seq`) while this session was open."""
        self._gaps.append(seq)

    def _moment(self, entry: Entry, run: int) -> Moment:
        if self._setup_run is None:
            self._setup_run, self._anchor = run, entry.mono
        if run != self._setup_run or _by_a_job(entry):
            return Moment(entry.wall, None)
        moment = Moment(entry.wall, entry.mono - self._anchor)
        self._last_in_setup_run = moment
        return moment

    def _capture_opens(self, kind: Kind, at: Moment) -> None:
        verb = "began" if kind is Kind.START else "resumed"
        if self._ending is not None:
            self._find(Concern.CONSENT, f"recording {verb} at {_when(at)}, after the session ended")
        if self._withdrawals:
            withdrawal = self._withdrawals[0]
            self._find(Concern.CONSENT, f"recording {verb} at {_when(at)}, after {_seat(withdrawal.seat)} withdrew "
                       f"consent at {_when(withdrawal.at)}")
        # The box counts consents, not seat numbers: two people may sit at seats 1 and 3 of a three-seat panel.
        headcount = self._headcount or 0
        if len(self._consented) < headcount:
            seats = ", ".join(str(seat) for seat in sorted(self._consented)) or "none"
            self._find(Concern.CONSENT, f"recording {verb} at {_when(at)} with {len(self._consented)} of "
                       f"{headcount} consents (seats consented: {seats})")
        self._close_pause(at)
        self._recordings.append(Stretch(at, None))

    def _close_recording(self, at: Moment) -> None:
        if self._recordings and self._recordings[-1].end is None:
            self._recordings[-1] = self._closed(self._recordings[-1], at)

    def _close_pause(self, at: Moment) -> None:
        if self._pauses and self._pauses[-1].end is None:
            self._pauses[-1] = self._closed(self._pauses[-1], at)

    def _closed(self, stretch: Stretch, at: Moment) -> Stretch:
        """`stretch` closed at `at`; or, if the box restarted since it opened, cut short at the last moment
        of the run it opened in (the box stopped with it open)."""
        if at.offset is None and stretch.start.offset is not None:
            return Stretch(stretch.start, self._last_in_setup_run, cut_short=True)
        return Stretch(stretch.start, at)

    def _find(self, concern: Concern, text: str) -> None:
        self._findings.append(Finding(concern, text))

    def audited(self, box: str, files: tuple[FileEvidence, ...] | None, *, today: date,
                newest: bool = True) -> AuditedSession:
        """The session as gathered, with `files` checked (None: not checked), as reported on `today`.

        `newest` is false where the ledger may not be the session's whole story (an extract: a newer
        one may have been taken), which changes only the words of a missing end.
        """
        # A stretch still open where the ledger stops: the box stopped and never ended the session.
        recordings = [self._cut_short(stretch) for stretch in self._recordings]
        pauses = [self._cut_short(stretch) for stretch in self._pauses]
        return AuditedSession(
            self.session, box, self.setup, self._headcount, tuple(self._consents), tuple(recordings), tuple(pauses),
            tuple(self._withdrawals), tuple(self._faults), self._ending, tuple(self._expiries), self._destruction,
            len(self._sealed), files, tuple(self._findings + self._evidence_findings(files, newest)),
            tuple(self._notes(files, today)))

    def _cut_short(self, stretch: Stretch) -> Stretch:
        if stretch.end is not None or self._last_in_setup_run is None:
            return stretch
        return Stretch(stretch.start, self._last_in_setup_run, cut_short=True)

    def _evidence_findings(self, files: tuple[FileEvidence, ...] | None, newest: bool) -> list[Finding]:
        """What breaks the evidence: a lost entry, a missing end, a file that does not verify, files deleted by hand."""
        texts = [f"an entry written while the session was open was torn by a power cut and cut off at the next "
                 f"start (gap, seq {seq})" for seq in self._gaps]
        if self._ending is None and self._recordings:
            texts.append("the ledger records no end: the box stopped during the session and has not started since"
                         + ("" if newest else ", or this extract is not the newest"))
        texts += [f"{found.name} does not verify: {found.problem or found.verdict.value}"
                  for found in files or () if not found.verdict.bound]
        if self._destruction is not None and self._destruction.cause == "absent":
            texts.append("its files were deleted from the card by hand, not destroyed by the box or with "
                         "consentbox-admin destroy (receipt: absent)")
        return [Finding(Concern.EVIDENCE, text) for text in texts]

    def _notes(self, files: tuple[FileEvidence, ...] | None, today: date) -> list[str]:
        """What the reviewer should know that breaks neither consent nor evidence."""
        notes = []
        ending, destruction = self._ending, self._destruction
        if ending is not None and ending.reason == EndReason.INTERRUPTED.value:
            notes.append("the box stopped during the session (a power cut or crash) and ended it as interrupted at "
                         "its next start: the recording ends at the cut")
        if self._withdrawn_after_end and destruction is not None and destruction.cause == "withdrawn":
            notes.append("consent was withdrawn after the session ended, and the recording destroyed")
        elif self._withdrawals and ending is not None and ending.kept:
            after = " after the session ended" if self._withdrawn_after_end else ""
            notes.append(f"consent was withdrawn{after} and the recording kept, marked withdrawn "
                         "(on_withdrawal = keep)")
        notes += [silence.words() for silence in self._silences]
        if self._silence_alerted is not None:
            notes.append(f"the microphone heard nothing from before {_when(self._silence_alerted)} (the box's silence "
                         "alert) to where the ledger stops: no end of that silence is recorded")
        if self._recordings and not self._expiries:
            notes.append("no expiry is recorded (the box could not write it): its destruction receipt gives the date")
        marked = destruction is None and bool(files) and all(f.verdict is Verdict.DESTROYED for f in files or ())
        if marked:
            notes.append("destroyed with consentbox-admin destroy; the box has not receipted it yet (the card has "
                         "not been back in the box)")
        expires = self._expiries[-1].expires if self._expiries else None
        if destruction is None and not marked and expires is not None and expires < today:
            notes.append(f"OVERDUE: expired on {expires.isoformat()} and no destruction is recorded")
        late = 0 if destruction is None else (destruction.at.wall.date() - destruction.due).days
        if destruction is not None and destruction.cause == "retention" and late > 0:
            notes.append(f"destroyed {late} day{'s' if late != 1 else ''} after its due date "
                         f"{destruction.due.isoformat()}")
        return notes


def _by_a_job(entry: Entry) -> bool:
    """Whether `entry` is of a kind the box's jobs write (a bundle's or the wipe's expiry, the wipe's or a
    returning card's destruction receipt), timed by their own process's clock, not the box's."""
    if entry.kind is Kind.EXPIRY:
        return entry.fields["reason"] != "recorded"
    return entry.kind is Kind.DESTRUCTION and entry.fields["cause"] != "withdrawn"


def _earlier(at: Moment, seconds: float) -> Moment:
    """The moment `seconds` before `at`."""
    return Moment(at.wall - timedelta(seconds=seconds), None if at.offset is None else at.offset - seconds)


def _when(at: Moment) -> str:
    """A moment in words: its offset, else its wall-clock time."""
    if at.offset is not None:
        return f"{at.offset:.1f} s"
    return at.wall.isoformat(sep=" ", timespec="seconds")


def _seat(seat: int | None) -> str:
    return "a party" if seat is None else f"seat {seat}"
