"""The session machine: button edges, time and readiness in; panel, capture and file commands out.

It is pure: no clock, no I/O, no threads. The shell feeds it events stamped with its monotonic time,
performs the commands it returns in order, and asks `next_deadline()` when to send the next `Tick`.

Taps and holds are told apart here, from the event times, not by the GPIO library: a press becomes
the first hold gesture its state has a row for once held long enough, or a tap when released before.
Each press yields at most one gesture, so the hold that starts a recording cannot run on into the
hold that ends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never, get_args

from consentbox.core.commands import (
    CloseCapture,
    Command,
    EndSession,
    Flash,
    OpenCapture,
    OpenSession,
    PlayTone,
    RecLed,
    RecordConsent,
    RecordWithdrawal,
    Refuse,
    SetHeadcount,
    ShowStatus,
)
from consentbox.core.errors import EventError, PolicyError, UnknownEvent
from consentbox.core.events import (
    Button,
    ConsentButton,
    Event,
    Fault,
    Pressed,
    ReadinessChanged,
    RecordButton,
    Released,
    Shutdown,
    Tick,
)
from consentbox.core.feedback import Colour, Pattern, Tone, status_pattern
from consentbox.core.policy import OnWithdrawal, Policy
from consentbox.core.reasons import FAULTS, EndReason, Problem, Refusal, worst
from consentbox.core.table import ROWS, Gesture, State

_RECORD_HOLDS = (Gesture.HOLD_RECORD, Gesture.LONG_HOLD_RECORD)
_CONSENT_HOLDS = (Gesture.HOLD_CONSENT,)
_EVENTS: tuple[type, ...] = get_args(Event)  # taken from the union, so the two cannot disagree


@dataclass
class _Press:
    at: float
    spent: bool = False  # it already produced its one gesture


@dataclass
class _Session:
    """What the box knows about the session in progress; forgotten when it ends."""

    headcount: int
    last_activity: float
    consents: list[int] = field(default_factory=list)
    last_counted_tap: float | None = None
    recorded: float = 0.0  # seconds captured in earlier intervals
    capture_since: float | None = None
    paused_since: float | None = None


class SessionMachine:
    """The front panel's rules (docs/product.md, "Front panel") as a state machine driven by `handle(event)`."""

    def __init__(
        self,
        policy: Policy,
        *,
        seats: int,
        shared_consent: bool = False,
        problems: frozenset[Problem] = frozenset(),
        start: float = 0.0,
    ) -> None:
        if seats < 1:
            raise PolicyError(f"consent seats: need at least one CONSENT button, got {seats}")
        if not shared_consent and policy.default_parties > seats:
            raise PolicyError(
                f"policy key default_parties: {policy.default_parties} parties cannot consent on "
                f"{seats} separate CONSENT buttons (use a shared button, or more seats)"
            )
        self.policy = policy
        self.seats = seats
        self.shared_consent = shared_consent
        self._problems = problems
        self._now = start
        self._state = State.IDLE
        self._state_since = start
        self._session: _Session | None = None
        self._presses: dict[Button, _Press] = {}
        self._rec_led = False
        self._capturing = False
        self._shown: Pattern | None = None
        self._out: list[Command] = []

    # -- what the shell and the tests may look at ------------------------------------------------

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def now(self) -> float:
        """The time of the last event handled."""
        return self._now

    @property
    def headcount(self) -> int:
        """Parties expected in the current session (0 outside a session)."""
        return self._session.headcount if self._session else 0

    @property
    def consents(self) -> tuple[int, ...]:
        """Seats that consented in the current session, in order (empty outside a session)."""
        return tuple(self._session.consents) if self._session else ()

    @property
    def rec_led(self) -> bool:
        """Whether the machine has the REC LED on."""
        return self._rec_led

    @property
    def capturing(self) -> bool:
        """Whether the machine has capture open."""
        return self._capturing

    @property
    def problems(self) -> frozenset[Problem]:
        """Why the box is not ready (empty when it is)."""
        return self._problems

    @property
    def party_limit(self) -> int:
        """The most parties a session can have: each needs a seat, unless the button is shared."""
        if self.shared_consent:
            return self.policy.max_parties
        return min(self.policy.max_parties, self.seats)

    def next_deadline(self) -> float | None:
        """The earliest time at which a `Tick` would change something, or None if nothing is pending."""
        candidates = [at for at, _ in self._pending_holds()]
        session = self._session
        if self._state in (State.COLLECTING, State.READY) and session:
            candidates.append(session.last_activity + self.policy.consent_timeout)
        elif self._state is State.PAUSED and session and session.paused_since is not None:
            candidates.append(session.paused_since + self.policy.pause_timeout)
        elif self._state is State.RECORDING and session and session.capture_since is not None:
            candidates.append(session.capture_since + self.policy.max_session - session.recorded)
        elif self._state is State.WITHDRAWN:
            candidates.append(self._state_since + self.policy.notice_timeout)
        return min(candidates) if candidates else None

    # -- input ------------------------------------------------------------------------------------

    def handle(self, event: Event) -> tuple[Command, ...]:
        """Take one event; return the commands to perform, in order. A non-event raises `UnknownEvent`."""
        # Refused before anything else: a lookalike with an `at` must not move time or fire deadlines.
        if not isinstance(event, _EVENTS):
            kind = type(event)
            raise UnknownEvent(
                f"{kind.__module__}.{kind.__qualname__} is not a session event: the machine takes "
                f"{', '.join(known.__name__ for known in _EVENTS)}"
            )
        if event.at < self._now:
            raise EventError(f"event at {event.at} s is earlier than the machine's time {self._now} s")
        self._run_deadlines(until=event.at)
        self._now = event.at
        if isinstance(event, Pressed):
            self._check_button(event.button)
            self._note_activity()
            # A press of a button already down is a glitch; the first press stands.
            self._presses.setdefault(event.button, _Press(event.at))
        elif isinstance(event, Released):
            self._check_button(event.button)
            self._note_activity()
            press = self._presses.pop(event.button, None)
            if press is not None and not press.spent:
                tap = Gesture.TAP_RECORD if isinstance(event.button, RecordButton) else Gesture.TAP_CONSENT
                self._dispatch(tap, event.button, press)
        elif isinstance(event, ReadinessChanged):
            self._problems = event.problems
        elif isinstance(event, Fault):
            if event.problem not in FAULTS:
                raise EventError(f"{event.problem.text!r} is not a fault that can hit a recording")
            self._problems = self._problems | {event.problem}
            self._dispatch(Gesture.FAULT, fault=event.problem)
        elif isinstance(event, Shutdown):
            self._dispatch(Gesture.SHUTDOWN)
        elif isinstance(event, Tick):
            pass  # it only moves time, and the deadlines up to it have run above
        else:
            assert_never(event)  # mypy: every kind of event has its branch
        self._show_status()
        out, self._out = tuple(self._out), []
        return out

    # -- recognising gestures ---------------------------------------------------------------------

    def _check_button(self, button: Button) -> None:
        if isinstance(button, ConsentButton) and not 1 <= button.seat <= self.seats:
            raise EventError(f"consent seat {button.seat} does not exist (seats are 1 to {self.seats})")

    def _note_activity(self) -> None:
        if self._session is not None:
            self._session.last_activity = self._now

    def _pending_holds(self) -> list[tuple[float, tuple[Button, Gesture]]]:
        pending = []
        thresholds = {
            Gesture.HOLD_RECORD: self.policy.record_hold,
            Gesture.LONG_HOLD_RECORD: self.policy.end_hold,
            Gesture.HOLD_CONSENT: self.policy.withdraw_hold,
        }
        for button, press in self._presses.items():
            if press.spent:
                continue
            holds = _RECORD_HOLDS if isinstance(button, RecordButton) else _CONSENT_HOLDS
            for gesture in holds:
                if (self._state, gesture) in ROWS:
                    pending.append((press.at + thresholds[gesture], (button, gesture)))
                    break  # only the first hold this state reacts to
        return pending

    def _run_deadlines(self, until: float) -> None:
        """Fire every hold threshold and timeout due by `until`, each at its own time, in order."""
        while (deadline := self.next_deadline()) is not None and deadline <= until:
            # A threshold that passed while no row listened fires as soon as one does.
            self._now = max(self._now, deadline)
            holds = [(at, hold) for at, hold in self._pending_holds() if at <= self._now]
            if holds:
                _, (button, gesture) = min(holds, key=lambda item: item[0])
                self._dispatch(gesture, button, self._presses[button])
            else:
                self._dispatch(self._due_timeout())

    def _due_timeout(self) -> Gesture:
        return {
            State.COLLECTING: Gesture.CONSENT_TIMEOUT,
            State.READY: Gesture.CONSENT_TIMEOUT,
            State.PAUSED: Gesture.PAUSE_TIMEOUT,
            State.RECORDING: Gesture.SESSION_LIMIT,
            State.WITHDRAWN: Gesture.NOTICE_TIMEOUT,
        }[self._state]

    def _dispatch(
        self,
        gesture: Gesture,
        button: Button | None = None,
        press: _Press | None = None,
        fault: Problem | None = None,
    ) -> None:
        row = ROWS.get((self._state, gesture))
        if row is None:
            return
        if press is not None:
            press.spent = True
        target = getattr(self, "_" + row.action)(button=button, press=press, fault=fault)
        if target not in {outcome.target for outcome in row.outcomes}:
            raise AssertionError(f"{row.action} reached {target} from {row.source}: not in the table")
        if target is not self._state:
            self._state = target
            self._state_since = self._now

    # -- the table's actions: each returns the target state ---------------------------------------

    def _open_setup(self, **_: object) -> State:
        if self._problems:
            return self._refuse(worst(self._problems))
        headcount = self.policy.default_parties
        self._session = _Session(headcount=headcount, last_activity=self._now)
        self._emit(OpenSession(headcount), Flash(Colour.AMBER, headcount), PlayTone(Tone.ACK))
        return State.COLLECTING

    def _add_party(self, **_: object) -> State:
        session = self._require_session()
        if session.consents:
            return self._refuse(Refusal.HEADCOUNT_FIXED)
        if session.headcount >= self.party_limit:
            return self._refuse(Refusal.TOO_MANY_PARTIES)
        session.headcount += 1
        self._emit(SetHeadcount(session.headcount), Flash(Colour.AMBER, session.headcount), PlayTone(Tone.ACK))
        return self._state

    def _consent(self, *, button: Button | None, press: _Press | None, **_: object) -> State:
        session = self._require_session()
        assert isinstance(button, ConsentButton) and press is not None
        if self.shared_consent:
            # One button passed around: taps closer together than the gap are the same person's.
            last = session.last_counted_tap
            if last is not None and press.at - last < self.policy.shared_tap_gap:
                return self._state
            session.last_counted_tap = press.at
            seat = len(session.consents) + 1
        else:
            seat = button.seat
            if seat in session.consents:
                return self._state
        session.consents.append(seat)
        self._emit(RecordConsent(seat), Flash(Colour.GREEN), PlayTone(Tone.ACK))
        if len(session.consents) < session.headcount:
            return State.COLLECTING
        self._emit(PlayTone(Tone.ALL_CONSENTED))
        return State.READY

    def _refuse_unconsented(self, **_: object) -> State:
        return self._refuse(Refusal.NOT_EVERYONE_CONSENTED)

    def _start_capture(self, **_: object) -> State:
        session = self._require_session()
        if self._problems:
            return self._refuse(worst(self._problems))
        if len(session.consents) != session.headcount:
            raise AssertionError("capture requested without everyone's consent")
        session.capture_since = self._now
        session.paused_since = None
        self._rec_led = True
        self._capturing = True
        self._emit(RecLed(True), OpenCapture(), PlayTone(Tone.START))
        return State.RECORDING

    def _pause(self, **_: object) -> State:
        self._stop_capture()
        self._require_session().paused_since = self._now
        self._emit(PlayTone(Tone.PAUSE))
        return State.PAUSED

    def _end(self, **_: object) -> State:
        return self._finish(EndReason.ENDED, keep=True, tone=Tone.END, target=State.IDLE)

    def _withdraw(self, *, button: Button | None, **_: object) -> State:
        assert isinstance(button, ConsentButton)
        self._stop_capture()  # first of all
        self._emit(RecordWithdrawal(None if self.shared_consent else button.seat))
        keep = self.policy.on_withdrawal is OnWithdrawal.KEEP
        return self._finish(EndReason.WITHDRAWN, keep=keep, tone=Tone.WITHDRAWN, target=State.WITHDRAWN)

    def _time_out_setup(self, **_: object) -> State:
        return self._finish(EndReason.CONSENT_TIMEOUT, keep=True, tone=Tone.END, target=State.IDLE)

    def _end_on_timeout(self, **_: object) -> State:
        reason = EndReason.PAUSE_TIMEOUT if self._state is State.PAUSED else EndReason.MAX_SESSION
        return self._finish(reason, keep=True, tone=Tone.END, target=State.IDLE)

    def _end_on_fault(self, *, fault: Problem | None, **_: object) -> State:
        assert fault is not None
        return self._finish(EndReason.for_fault(fault), keep=True, tone=Tone.FAULT, target=State.IDLE)

    def _clear_notice(self, **_: object) -> State:
        return State.IDLE

    def _shut_down(self, **_: object) -> State:
        if self._session is None:  # WITHDRAWN: the session is already over
            return State.IDLE
        return self._finish(EndReason.SHUTDOWN, keep=True, tone=Tone.END, target=State.IDLE)

    # -- helpers of the actions -------------------------------------------------------------------

    def _emit(self, *commands: Command) -> None:
        self._out.extend(commands)

    def _require_session(self) -> _Session:
        if self._session is None:
            raise AssertionError(f"no session in state {self._state.value}")
        return self._session

    def _refuse(self, reason: Refusal | Problem) -> State:
        code = reason.code if isinstance(reason, Problem) else 1
        self._emit(Refuse(reason), Flash(Colour.RED, code), PlayTone(Tone.REFUSED))
        return self._state

    def _stop_capture(self) -> None:
        session = self._require_session()
        if not self._capturing:
            return
        assert session.capture_since is not None
        session.recorded += self._now - session.capture_since
        session.capture_since = None
        self._capturing = False
        self._rec_led = False
        self._emit(CloseCapture(), RecLed(False))

    def _finish(self, reason: EndReason, *, keep: bool, tone: Tone, target: State) -> State:
        self._stop_capture()
        self._emit(EndSession(reason, keep), PlayTone(tone))
        self._session = None  # consents never outlive their session
        return target

    def _show_status(self) -> None:
        session = self._session
        awaiting = session.headcount - len(session.consents) if session else 0
        pattern = status_pattern(self._state, self._problems, awaiting)
        if pattern != self._shown:
            self._shown = pattern
            self._emit(ShowStatus(pattern))

