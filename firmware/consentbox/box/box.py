"""The box: the session machine wired to the panel, the microphone and the card.

This is the imperative shell around `consentbox.core`. Events from the panel (and faults from the
adapters) go into one inbox and are handed to the machine one at a time; its commands are carried
out in order. While capture is open, the loop moves audio from the device to the encrypted session
files one ALSA period at a time, so plaintext only ever exists in that one buffer, and, while a CONSENT
button is down, in the buffer that holds it back until the press is over (`box/hold_back.py`).
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, assert_never

from consentbox.box.hold_back import HoldBack
from consentbox.box.listening import Listening
from consentbox.box.selftest import self_test
from consentbox.box.settings import ProvisioningFeed, Settings
from consentbox.box.timeline import (
    card_entry,
    command_entry,
    ledger_entry,
    provisioning_entry,
    selftest_entry,
    settings_entry,
    state_entry,
)
from consentbox.core.commands import (
    CloseCapture,
    Command,
    EndSession,
    Flash,
    HoldBackAudio,
    OpenCapture,
    OpenSession,
    PlayTone,
    RecLed,
    RecordConsent,
    RecordWithdrawal,
    Refuse,
    SeatLights,
    SetHeadcount,
    ShowStatus,
    WithdrawFinished,
    WriteHeldAudio,
)
from consentbox.core.events import Event, Fault, ReadinessChanged, Shutdown, Tick
from consentbox.core.policy import Policy
from consentbox.core.provisioning import result_feedback
from consentbox.core.reasons import EndReason, Problem, worst
from consentbox.core.session import SessionMachine
from consentbox.core.table import State
from consentbox.crypto import Recipient
from consentbox.hw.errors import CardLost, HardwareError
from consentbox.hw.held_audio import HeldAudio
from consentbox.hw.ports import UNUSABLE, AudioSource, Card, Clock, Panel, PanelCommand
from consentbox.ledger import Kind, LedgerError
from consentbox.ledger.writer import Ledger, LedgerWriteError
from consentbox.recording.card_id import CardIdError, card_identity
from consentbox.recording.journal import Journal
from consentbox.recording.manifest import LedgerRange, manifest_name, policy_digest, segment_name
from consentbox.recording.seal import Seal
from consentbox.recording.session import SessionFiles
from consentbox.retention.index import Expiry, RetentionIndex
from consentbox.state.clock_floor import TrustedClock
from consentbox.state.session_lock import SessionLock
from consentbox.storage.ids import new_session_id

Report = Callable[[dict[str, Any]], None]


#: How far below the clock floor the wall clock may be before the box logs a correction (a clock
#: stepped back by a second or two by NTP is not worth a ledger entry).
CLOCK_SLACK_SECONDS = 2.0

#: While recording, how often the card is checked for having gone (a lazily unmounted card still
#: takes writes into open files, so a failed write alone would not notice it).
CARD_CHECK_SECONDS = 1.0

#: The most periods the box reads before it hands them on (to the files, the ear, the tap) in one go.
#: It reads period by period, so an event is heard within a period whatever this is, and it hands over
#: sooner for an event, a deadline, the once-a-second card check, or the seal of a chunk.
BLOCK_PERIODS = 32

#: As BLOCK_PERIODS while the STATUS LED shows the input level: it flickers at the rate it is told.
LEVEL_BLOCK_PERIODS = 4


def record(ledger: Ledger, report: Report, kind: Kind, session: str | None, /, *, at: float, **fields: Any) -> None:
    """Append an entry to the consent ledger; a failure of the box's ledger file is reported, and the box
    goes on (the recording itself is unaffected; the journal, and journald, say the ledger failed)."""
    try:
        ledger.append(kind, session, at=at, **fields)
    except LedgerWriteError as error:
        report(ledger_entry(at, error))


def record_seal(ledger: Ledger, report: Report, session: str, seal: Seal, /, *, at: float) -> None:
    """Append the `seal` entry of `seal`, one of `session`'s files as the box wrote it (see `record`)."""
    record(ledger, report, Kind.SEAL, session, at=at, **asdict(seal))


@dataclass(frozen=True)
class _Opening:
    """When capture opened: seconds after set-up, and the wall clock (the session's start, if it is the first)."""

    offset: float
    wall: datetime


@dataclass
class _Setup:
    """What the box keeps of the current session until (and while) it has files on the card."""

    id: str
    opened_at: float
    headcount: int
    hold_back: HoldBack  # audio on its way to the files, held back while a CONSENT press may become a withdrawal
    consents: list[tuple[int, float]] = field(default_factory=list)
    files: SessionFiles | None = None
    frames: int = 0  # written in the current interval
    segments_reported: int = 0
    expiry: Expiry | None = None  # set with its files
    opening: _Opening | None = None  # capture open, its interval not yet begun on the card


@dataclass(frozen=True)
class _Finished:
    """The session that ended last, with what its recording kept, while its parties may still withdraw from it."""

    id: str
    files: SessionFiles | None
    expiry: Expiry | None


class Box:
    """Runs the session machine against real (or simulated) hardware."""

    def __init__(
        self,
        *,
        machine: SessionMachine,
        panel: Panel,
        audio: AudioSource,
        card: Card,
        recipients: Sequence[Recipient],
        auditors: Sequence[Recipient] = (),
        policy: Policy,
        clock: Clock,
        journal: Journal,
        ledger: Ledger,
        session_lock: SessionLock | None = None,
        provisioning: ProvisioningFeed | None = None,
        retention: RetentionIndex | None = None,
        trusted_clock: TrustedClock | None = None,
        audio_tap: Callable[[memoryview], None] | None = None,
        self_testing: bool = False,
        wall_clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
        new_session_id: Callable[[], str] = new_session_id,
        report: Report = lambda entry: None,
    ) -> None:
        self.machine = machine
        self.panel = panel
        self.audio = audio
        self.card = card
        self.recipients = tuple(recipients)
        self.auditors = tuple(auditors)  # with the recipients, they read the card's ledger extracts
        self.policy = policy
        self.clock = clock
        self.journal = journal
        self.ledger = ledger
        self._session_lock = session_lock
        self._provisioning = provisioning
        self._retention = retention
        self._trusted_clock = trusted_clock
        self._clock_behind = False
        # Sees the PCM right after it is handed to the files, a block of periods at a time (a level meter);
        # it must not keep it.
        self._audio_tap = audio_tap
        self._self_testing = self_testing
        self._self_test_problems: frozenset[Problem] = frozenset()
        self._next_self_test = 0.0
        self._wall_clock = wall_clock if trusted_clock is None else trusted_clock.now
        self._new_session_id = new_session_id
        self._report = report
        self._inbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._setup: _Setup | None = None
        self._listening: Listening | None = None  # while capture is open
        self._block = HeldAudio()  # periods read and not yet handed on (_capture_block)
        # What the hold-back handed on, written to the files once the events that came with it are handled.
        self._unwritten = HeldAudio()
        self._steady: ShowStatus | None = None  # the STATUS pattern the machine gave last
        self._finished: _Finished | None = None  # from its end until the next set-up (or its withdrawal)
        self._problems: set[Problem] | None = None
        self._next_card_check = 0.0
        # As the last readiness check saw the card; a card in the slot at the start counts as come back.
        self._card_usable = False

    # -- events in --------------------------------------------------------------------------------

    def post(self, event: Event) -> None:
        """Queue an event (safe from gpiozero's callback threads) and wake the loop."""
        self._inbox.put(event)
        self.clock.wake()

    def pump(self) -> None:
        """Hand every queued event to the machine, in order."""
        while True:
            try:
                event = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._handle(event)

    def start(self) -> None:
        """The self-test before the first session: the card, and the microphone listened to."""
        self._run_self_test(listen=True)

    def _run_self_test(self, *, listen: bool) -> None:
        if not self._self_testing:
            return
        # A microphone that failed is listened to again: one that opens may still deliver only silence.
        listen = listen or Problem.NO_AUDIO_DEVICE in self._self_test_problems
        if listen:
            self.panel.show(RecLed(True))  # audio is captured, if only to be looked at
        try:
            result = self_test(self.card.path, self.audio, self.policy, listen=listen,
                               write_card=not self.card.problems() & UNUSABLE)
        finally:
            if listen:
                self.panel.show(RecLed(False))
        now = self.clock.now()
        self._self_test_problems = result.problems
        self._next_self_test = now + (self.policy.notice_timeout if result.problems else math.inf)
        self._report(selftest_entry(now, result))

    def check_readiness(self) -> None:
        """Ask the adapters whether the box can record; tell the machine when that changes.

        Also takes up what provisioning did meanwhile: its result is shown at once, and new settings
        when the box is idle (a session always ends under the settings it began with).
        """
        if self._provisioning is not None:
            self._take_provisioning(self._provisioning)
        card = self.card.problems()
        usable = not card & UNUSABLE
        if usable and not self._card_usable:
            self._identify_card()  # a card the box has not used yet gets its id at once
            self.ledger.sync_card()  # a card back in the slot gets the ledger extracts it missed, at once
        self._card_usable = usable
        # What the adapters see now; the machine keeps a fault that stopped a recording standing itself.
        problems = set(card)
        if not self.recipients:
            problems.add(Problem.NOT_PROVISIONED)
        if self._trusted_clock is not None and not self._check_clock(self._trusted_clock):
            problems.add(Problem.CLOCK_UNTRUSTED)
        if self._self_test_problems and self.machine.state is State.IDLE and self.clock.now() >= self._next_self_test:
            self._run_self_test(listen=False)
        problems |= self._self_test_problems
        if problems != self._problems:
            self._problems = problems
            self.post(ReadinessChanged(frozenset(problems), self.clock.now()))

    def status_line(self) -> str:
        """The box's state and readiness in words, for systemd's STATUS=."""
        state = self.machine.state.value
        if not self.machine.problems:
            return f"{state}: ready"
        problem = worst(self.machine.problems)
        return f"{state}: cannot record: {problem.text} (code {problem.code})"

    def run_until(self, moment: float) -> None:
        """Let time pass until `moment`: capture audio while capture is open, fire holds and timeouts."""
        self.pump()
        while True:
            deadline = self.machine.next_deadline()
            now = self.clock.now()
            if deadline is not None and deadline <= now:
                self.post(Tick(now))
            elif now >= moment:
                return
            elif self.machine.capturing:
                self._capture_block(moment if deadline is None else min(deadline, moment))
            else:
                self.clock.sleep_until(moment if deadline is None else min(deadline, moment))
            self.pump()

    def shut_down(self) -> None:
        """End whatever is open (finalising what was recorded), close the ledger, release the hardware."""
        self.post(Shutdown(self.clock.now()))
        self.pump()
        self.audio.close()
        if self._session_lock is not None:
            self._session_lock.release()
        self.panel.close()
        try:
            self.ledger.close()
        except LedgerWriteError as error:
            self._report(ledger_entry(self.clock.now(), error))

    # -- the machine's commands out ---------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        before = self.machine.state
        for command in self.machine.handle(event):
            # A withdrawal from the session that ended last is filed under it (and makes the box forget it).
            withdrawn = self._finished.id if isinstance(command, WithdrawFinished) and self._finished else ""
            took_effect = self._perform(command)
            session_id = withdrawn or (self._setup.id if self._setup else "")
            self._report(command_entry(self.clock.now() if took_effect is None else took_effect, command, session_id))
            if isinstance(command, EndSession):
                self._setup = None
        if self.machine.state is not before:
            self._report(state_entry(self.clock.now(), self.machine.state))

    def _perform(self, command: Command) -> float | None:
        """Carry out `command`; the moment it took effect if that is not when it is done (capture: when the
        device opened or closed, before the card's and the ledger's writes)."""
        now = self.clock.now()
        if isinstance(command, (RecLed, ShowStatus, SeatLights, Flash, PlayTone)):
            self._show(command)
        elif isinstance(command, OpenSession):
            if self._session_lock is not None:
                # Waits out a provisioning or a wipe step in progress: each holds it for at most a second or so.
                self._session_lock.acquire(wait=True)
            self._finished = None  # a new set-up ends the last session's time for withdrawal
            self._setup = _Setup(self._new_session_id(), now, command.headcount, HoldBack(self.policy))
            self._log(Kind.SETUP, headcount=command.headcount, policy_sha256=policy_digest(self.policy))
        elif isinstance(command, SetHeadcount):
            self._require_setup().headcount = command.headcount
            self._log(Kind.HEADCOUNT, headcount=command.headcount)
        elif isinstance(command, RecordConsent):
            setup = self._require_setup()
            setup.consents.append((command.seat, now - setup.opened_at))
            if setup.files is not None:  # a late arrival, while paused
                setup.files.add_party(command.seat, now - setup.opened_at)
            self._log(Kind.CONSENT, seat=command.seat)
        elif isinstance(command, Refuse):
            self._log(Kind.REFUSED, reason=command.reason)
        elif isinstance(command, OpenCapture):
            setup = self._require_setup()
            opened: float | None = None
            failed: HardwareError | None = None
            try:
                opened = self._open_capture(setup, now)  # before the ledger's write and sync
            except HardwareError as error:
                failed = error
            self._log(Kind.RESUME if command.resume else Kind.START, at=now)
            if failed is not None:
                self._fault(failed)
            return opened
        elif isinstance(command, CloseCapture):
            self.audio.close()  # first: nothing more is captured, however long the card and the ledger take
            closed = self.clock.now()
            if command.pause:  # otherwise the end that follows closes the interval
                self._log(Kind.PAUSE)
            self._close_capture(self._require_setup(), now)
            return closed
        elif isinstance(command, HoldBackAudio):
            setup = self._require_setup()
            setup.hold_back.begin(now - setup.opened_at)
        elif isinstance(command, WriteHeldAudio):
            self._write_held_audio(self._require_setup())
        elif isinstance(command, RecordWithdrawal):
            self._log(Kind.WITHDRAWAL, seat=command.seat)
        elif isinstance(command, WithdrawFinished):
            self._withdraw_finished(command)
        elif isinstance(command, EndSession):
            setup = self._require_setup()
            self._log(Kind.END, reason=command.reason, kept=command.keep)
            self._end(setup, command, now)
            if command.keep:
                self._finished = _Finished(setup.id, setup.files, setup.expiry)
            if self._session_lock is not None:
                self._session_lock.release()
            self._run_self_test(listen=False)  # before the next session
        else:
            assert_never(command)  # mypy: a command the core gains must be performed here, not dropped
        return None

    def _show(self, command: PanelCommand) -> None:
        if isinstance(command, ShowStatus):
            self._steady = command  # shown again when a silence alert is over and capture goes on
        self.panel.show(command)

    def _ledger_range(self, session: str) -> LedgerRange | None:
        """Where `session`'s entries are in the ledger now, for its manifest (None if none could be written)."""
        try:
            found = self.ledger.session_range(session)
        except LedgerError:
            return None
        return LedgerRange(found.first, found.last, found.head)

    def _log(self, kind: Kind, *, at: float | None = None, **fields: Any) -> None:
        """Record in the consent ledger, under the current session if there is one; at `at` if given (what
        happened in audio handed on as a block), else now."""
        record(self.ledger, self._report, kind, self._setup.id if self._setup else None,
               at=self.clock.now() if at is None else at, **fields)

    def _set_expiry(self, session: str, started: datetime) -> Expiry:
        """Enter `session` in the expiry index before any of its files exist (so none escapes the wipe),
        with the card it is recorded on, and record its expiry in the ledger."""
        card = self._identify_card()
        if self._retention is None:
            expiry = Expiry.starting(started.timestamp(), self.policy.retention_days, card)
        else:
            expiry = self._retention.add(session, started.timestamp(), self.policy.retention_days, card)
        self._log(Kind.EXPIRY, expires=expiry.due, reason="recorded")
        return expiry

    def _identify_card(self) -> str | None:
        """The id of the card in the slot, written on it first if it has none; None (and a report) if it
        cannot be: the sessions recorded on it meanwhile are never receipted as gone from it."""
        try:
            return card_identity(self.card.path)
        except (CardIdError, OSError) as error:
            self._report(card_entry(self.clock.now(), error))
            return None

    def _require_setup(self) -> _Setup:
        if self._setup is None:
            raise AssertionError("the session machine sent a session command outside a session")
        return self._setup

    def _open_capture(self, setup: _Setup, now: float) -> float:
        """Open the device; when it opened. Raises HardwareError if it cannot."""
        # The device first, and only the device: capture opens at once, and the files are made as its
        # first period is handed on (`_start_interval`), the audio that arrives meanwhile waiting in
        # ALSA's buffer (memory, not a disk). A microphone that cannot open leaves nothing on the card.
        self.audio.open()
        opened = self.clock.now()
        setup.opening = _Opening(now - setup.opened_at, self._wall_clock())
        setup.frames = 0
        self._listening = Listening(panel=self.panel, policy=self.policy, opened=now, log=self._log,
                                    report=self._report, steady=lambda: self._steady)
        return opened

    def _start_interval(self, setup: _Setup, opening: _Opening) -> SessionFiles:
        """The capture interval opened at `opening` begins on the card: the session's files made the first
        time, and a new segment. Raises HardwareError."""
        now = self.clock.now()
        setup.opening = None  # tried once: a card that fails here is a fault, not tried again at the close
        if setup.files is None:
            setup.expiry = self._set_expiry(setup.id, opening.wall)
            setup.files = SessionFiles.create(
                self.card.path, setup.id, self.recipients, self.policy,
                headcount=setup.headcount, consents=setup.consents, started=opening.wall,
                ledger_range=lambda: self._ledger_range(setup.id),
                on_seal=lambda seal: record_seal(self.ledger, self._report, setup.id, seal, at=self.clock.now()),
                journal=self.journal,
            )
            self._report_file(now, manifest_name(setup.id))
        setup.files.start_interval(opening.offset)
        self._report_segment(setup, now)
        return setup.files

    def _capture_block(self, until: float) -> None:
        """Read periods until `until`, an event, or a block's worth, then hand them on in one go.

        Each period costs only a read here; what costs per call (the files, the ear, the tap) is paid per
        block. What is read is handed on before any event is handled, so the hold-back sees it as before;
        what the hold-back hands on is written to the files next time round, after those events: an event
        that closes capture closes it before any card write (a chunk's seal and sync among them). It is
        handed on before a write would seal a chunk, so a chunk goes to the card at the period it would
        have alone, and a power cut loses no more than it did.
        """
        setup = self._require_setup()
        try:
            self._write_unwritten(setup)
        except HardwareError as error:
            self._fault(error)
            return
        showing_level = self._listening is not None and self._listening.showing_level(self.clock.now())
        most = self.policy.period_bytes * (LEVEL_BLOCK_PERIODS if showing_level else BLOCK_PERIODS)
        if setup.files is None or setup.opening is not None:
            seal_at = 0  # the first period goes on at once: the files are made while the next one fills
        elif setup.hold_back.since is None:
            # The hold-back hands on as much as it is given (it keeps the last period back, having kept one).
            seal_at = setup.files.room_before_seal
        else:
            seal_at = most
        until = min(until, self._next_card_check, math.inf if self._listening is None else self._listening.alert_due)
        block, read, pace, period, now, inbox = (self._block, self.audio.read, self.clock.pace,
                                                 self.policy.period_seconds, self.clock.now, self._inbox)
        failed = None
        try:
            while True:  # per period: as little as can be
                block.add(read())
                pace(period)
                if block.size >= most or block.size > seal_at or now() >= until or not inbox.empty():
                    break
        except HardwareError as error:
            failed = error  # what was read before is audio still: it goes on to the files first
        try:
            if block.size:
                block.pass_on(block.size, lambda pcm: self._hand_on(setup, pcm))
        except HardwareError as error:
            failed = failed or error
        finally:
            block.wipe()
        if failed is not None:
            self._fault(failed)
            return
        if self.clock.now() >= self._next_card_check:
            self._next_card_check = self.clock.now() + CARD_CHECK_SECONDS
            if self.card.problems() & {Problem.NO_CARD, Problem.CARD_READ_ONLY}:
                self.inject_fault(Problem.CARD_LOST, f"card {self.card.path} is gone or read-only")

    def _hand_on(self, setup: _Setup, pcm: memoryview) -> None:
        """Give captured periods to the hold-back (what it hands on is written later: `_write_unwritten`),
        the tap and the ear."""
        if setup.opening is not None:
            self._start_interval(setup, setup.opening)
        setup.hold_back.take(pcm, self._unwritten.add)
        if self._audio_tap is not None:
            self._audio_tap(pcm)
        if self._listening is not None:
            self._listening.hear(pcm, self.clock.now())

    def _write_unwritten(self, setup: _Setup) -> None:
        """Write to the session's files what the hold-back handed on, unless the files failed (they take
        nothing more); it is zeroed either way. Raises HardwareError."""
        try:
            if self._unwritten.size and setup.files is not None and setup.files.fault is None:
                frames = self._unwritten.size // self.policy.frame_bytes
                self._unwritten.pass_on(self._unwritten.size, setup.files.write)
                setup.frames += frames
                self._report_segment(setup, self.clock.now())
        finally:
            self._unwritten.wipe()

    def _write_held_audio(self, setup: _Setup) -> None:
        if setup.files is None:
            return  # capture never opened: nothing was held back
        try:
            self._write_unwritten(setup)  # first: it was captured before what was held back
            setup.frames += setup.hold_back.release(setup.files.write)
            self._report_segment(setup, self.clock.now())
        except HardwareError as error:
            self._fault(error)

    def _close_capture(self, setup: _Setup, now: float) -> None:
        """After the device closed at `now`: the ear closed, and the interval sealed on the card."""
        if self._listening is not None:
            self._listening.close(now)
            self._listening = None
        for step in (self._start_interval_if_not_begun, self._write_unwritten):
            try:
                step(setup)
            except HardwareError as error:
                self._fault(error)
        if setup.files is None:
            return
        try:
            # Audio held back since a CONSENT press is dropped: a withdrawal keeps nothing from its press on.
            # Else the period still waiting is written, unless the card failed (it takes nothing more).
            written, held_since = setup.hold_back.close(setup.files.write if setup.files.fault is None else None)
            setup.frames += written
            setup.files.note_overruns(self.audio.overruns)
            setup.files.stop_interval(now - setup.opened_at if held_since is None else held_since, setup.frames)
        except HardwareError as error:
            self._fault(error)

    def _start_interval_if_not_begun(self, setup: _Setup) -> None:
        """Capture closes before its first period was handed on: its interval is empty, but on the card as any
        other (a session that started has its files)."""
        if setup.opening is not None:
            self._start_interval(setup, setup.opening)

    def _end(self, setup: _Setup, command: EndSession, now: float) -> None:
        if setup.files is None:
            return  # nothing was recorded: nothing on the card to finalise or destroy
        try:
            if command.keep:
                setup.files.finalise(command.reason, now - setup.opened_at,
                                     withdrawn=command.reason is EndReason.WITHDRAWN)
            else:
                self._destroy(setup.id, setup.files, setup.expiry)
        except HardwareError as error:
            self._fault(error)

    def _withdraw_finished(self, command: WithdrawFinished) -> None:
        """Record a withdrawal from the session that ended last, then destroy its files (or, kept, mark its
        manifest withdrawn)."""
        finished, self._finished = self._finished, None
        if finished is None:
            raise AssertionError("the session machine withdrew from a finished session the box does not know")
        record(self.ledger, self._report, Kind.WITHDRAWAL, finished.id, at=self.clock.now(), seat=command.seat)
        if finished.files is None or not self._on_its_card(finished):
            return
        try:
            if command.keep:
                finished.files.mark_withdrawn()
            else:
                self._destroy(finished.id, finished.files, finished.expiry)
        except HardwareError as error:
            self._fault(error)

    def _destroy(self, session: str, files: SessionFiles, expiry: Expiry | None) -> None:
        """Destroy the files of `session`, withdrawn from (during it or after its end), then receipt it in the
        ledger and take it out of the expiry index; HardwareError, and no receipt, if the card refuses."""
        count = files.segment_count + 1  # and the manifest
        files.destroy()
        assert expiry is not None, "set with the files"
        record(self.ledger, self._report, Kind.DESTRUCTION, session, at=self.clock.now(), files=count,
               cause="withdrawn", due=expiry.due)
        if self._retention is not None:
            self._retention.remove(session)

    def _on_its_card(self, finished: _Finished) -> bool:
        """Whether the card in the slot is the one `finished` was recorded on, as far as their ids tell; if
        not, that is reported: destroying nothing there must never be receipted as its destruction."""
        recorded_on = None if finished.expiry is None else finished.expiry.card
        here = self._identify_card()
        if recorded_on is None or here is None or here == recorded_on:
            return True
        self._report(card_entry(self.clock.now(), CardLost(
            f"card {self.card.path} is not the card session {finished.id} was recorded on: its withdrawal is in "
            "the ledger only (under on_withdrawal = destroy, destroy it with consentbox-admin destroy)")))
        return False

    def _report_segment(self, setup: _Setup, now: float) -> None:
        assert setup.files is not None
        while setup.segments_reported < setup.files.segment_count:
            self._report_file(now, segment_name(setup.id, setup.segments_reported))
            setup.segments_reported += 1

    def _report_file(self, now: float, name: str) -> None:
        self._report({"t": round(now, 6), "event": "file", "path": name})

    def _check_clock(self, clock: TrustedClock) -> bool:
        """Whether the box has a trustworthy time; a wall clock found below the floor is logged once."""
        reading = clock.reading()
        behind = reading.behind > CLOCK_SLACK_SECONDS
        if behind and not self._clock_behind:
            self._report({"t": round(self.clock.now(), 6), "event": "clock", "behind": round(reading.behind, 3),
                          "trusted": reading.trusted})
            self._log(Kind.CLOCK_CORRECTION, delta=reading.behind)
        self._clock_behind = behind
        return reading.trusted

    def _take_provisioning(self, feed: ProvisioningFeed) -> None:
        result = feed.new_result()
        if result is not None and result.reminder:
            # A refused stick still in: its code again, without the buzz, and never over a session's lights.
            if self.machine.state is State.IDLE:
                flash, _ = result_feedback(result.refusal)
                self.panel.show(flash)
                self._report(command_entry(self.clock.now(), flash, ""))
        elif result is not None:
            self._report(provisioning_entry(self.clock.now(), result))
            for command in result_feedback(result.refusal):
                self.panel.show(command)
                self._report(command_entry(self.clock.now(), command, ""))
        if self.machine.state is State.IDLE:
            settings = feed.new_settings()
            if settings is not None:
                self._adopt(settings, feed)

    def _adopt(self, settings: Settings, feed: ProvisioningFeed) -> None:
        """Record under `settings` from the next session on (only called while idle)."""
        self.audio.close()
        self.machine, self.audio, self.card = feed.parts(settings.policy, self.clock.now())
        self.policy = settings.policy
        self.recipients = settings.recipients
        self.auditors = settings.auditors
        self._problems = None  # the new machine learns how things stand below
        self._report(settings_entry(self.clock.now(), settings))
        self._run_self_test(listen=False)  # the new policy may need more room on the card

    def inject_fault(self, problem: Problem, detail: str = "injected by a scenario script") -> None:
        """Tell the machine a fault hit the hardware, after the commands in hand."""
        now = self.clock.now()
        self._report({"t": round(now, 6), "event": "fault", "problem": problem.text, "detail": detail})
        self._log(Kind.FAULT, problem=problem)
        self.post(Fault(problem, now, card=self.card.problems()))
        self._problems = None  # the next readiness check tells the machine how things stand after it

    def _fault(self, error: HardwareError) -> None:
        self.inject_fault(error.problem, str(error))
