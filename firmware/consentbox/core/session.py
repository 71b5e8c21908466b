"""The session machine: button edges, time and readiness in; panel, capture and file commands out.

It is pure: no clock, no I/O, no threads. The shell feeds it events stamped with its monotonic time,
performs the commands it returns in order, and asks `next_deadline()` when to send the next `Tick`.

Taps and holds are told apart here, from the event times, not by the GPIO library: a press becomes
the first hold gesture its state has a row for once held long enough, or a tap when released before
`record_hold`. Each press completes at most one gesture, so the hold that starts a recording cannot
run on into the hold that ends it; a press that completes none does nothing but the "hold longer" cue.
A cue row (a CONSENT press heard, a refusal at record_hold) answers a press without completing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never, get_args

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
from consentbox.core.reasons import AUDIO_FAULTS, CARD_PROBLEMS, FAULTS, EndReason, Problem, Refusal, worst
from consentbox.core.table import ROWS, Gesture, State

_RECORD_HOLDS = (Gesture.HOLD_RECORD, Gesture.LONG_HOLD_RECORD)
_CONSENT_HOLDS = (Gesture.HOLD_CONSENT,)
_CONSENT_GESTURES = (Gesture.PRESS_CONSENT, Gesture.TAP_CONSENT, Gesture.HOLD_CONSENT)
_EVENTS: tuple[type, ...] = get_args(Event)  # taken from the union, so the two cannot disagree


@dataclass
class _Press:
    at: float
    spent: bool = False  # it already completed its one gesture
    cued: set[Gesture] = field(default_factory=set)  # cue rows it already had


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
    next_cue: float | None = None  # the next reminder tone, while recording with cue_every
    missing_shown: bool = False  # the missing seats blink, after RECORD was held too early

    @property
    def started(self) -> bool:
        """Whether any audio was captured (a recording exists to keep or destroy)."""
        return self.recorded > 0 or self.capture_since is not None


@dataclass(frozen=True)
class _Finished:
    """The session that ended last, while its parties may still withdraw from it (`withdraw_window`)."""

    seats: frozenset[int]
    ended_at: float


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
        self._reported = problems  # as the shell's last readiness check (or a fault since) said
        # A fault that stopped a recording stands: a card fault while the card looks as it did then, an audio
        # fault until its time (notice_timeout) is up.
        self._card_fault: tuple[Problem, frozenset[Problem]] | None = None
        self._audio_fault: tuple[Problem, float] | None = None
        self._problems = problems
        self._now = start
        self._state = State.IDLE
        self._state_since = start
        self._session: _Session | None = None
        self._presses: dict[Button, _Press] = {}
        self._finished: _Finished | None = None
        self._withdrawal_kept = False  # what the WITHDRAWN notice says happened to the audio
        self._rec_led = False
        self._capturing = False
        self._held_since: float | None = None  # audio held back since a CONSENT press, while capturing
        self._shown: Pattern | None = None
        self._seats_shown = SeatLights()
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
        """Why the box is not ready (empty when it is): the shell's last readiness check, with the faults
        that stand after stopping a recording."""
        return self._problems

    def _update_problems(self) -> None:
        problems = set(self._reported)
        if self._card_fault is not None:
            problems = (problems - CARD_PROBLEMS) | {self._card_fault[0]}
        if self._audio_fault is not None:
            fault, until = self._audio_fault
            if self._now < until:
                problems.add(fault)
            else:
                self._audio_fault = None  # the next session tries the device again
        self._problems = frozenset(problems)

    @property
    def party_limit(self) -> int:
        """The most parties a session can have: each needs a seat, unless the button is shared."""
        if self.shared_consent:
            return self.policy.max_parties
        return min(self.policy.max_parties, self.seats)

    def next_deadline(self) -> float | None:
        """The earliest time at which a `Tick` would change something, or None if nothing is pending."""
        candidates = [at for at, _ in self._pending_holds()] + [at for at, _ in self._timeouts()]
        if self._audio_fault is not None:
            candidates.append(self._audio_fault[1])  # when the STATUS LED stops showing it
        return min(candidates) if candidates else None

    def _timeouts(self) -> list[tuple[float, Gesture]]:
        session = self._session
        if self._state is State.WITHDRAWN:
            return [(self._state_since + self.policy.notice_timeout, Gesture.NOTICE_TIMEOUT)]
        if session is None:
            return []
        if self._state in (State.COLLECTING, State.READY):
            return [(session.last_activity + self.policy.consent_timeout, Gesture.CONSENT_TIMEOUT)]
        if self._state is State.PAUSED and session.paused_since is not None:
            return [(session.paused_since + self.policy.pause_timeout, Gesture.PAUSE_TIMEOUT)]
        if self._state is State.RECORDING and session.capture_since is not None:
            due = [(session.capture_since + self.policy.max_session - session.recorded, Gesture.SESSION_LIMIT)]
            if session.next_cue is not None:
                due.append((session.next_cue, Gesture.CUE_DUE))
            return due
        return []

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
            if event.button not in self._presses:
                self._presses[event.button] = _Press(event.at)
                if isinstance(event.button, ConsentButton):
                    self._dispatch(Gesture.PRESS_CONSENT, event.button, self._presses[event.button])
        elif isinstance(event, Released):
            self._check_button(event.button)
            self._note_activity()
            press = self._presses.pop(event.button, None)
            if press is not None and not press.spent:
                self._release(event.button, press)
            self._write_held_audio()
        elif isinstance(event, ReadinessChanged):
            self._reported = event.problems
            if self._card_fault is not None and event.problems & CARD_PROBLEMS != self._card_fault[1]:
                self._card_fault = None  # the card was changed or fixed
            self._update_problems()
        elif isinstance(event, Fault):
            if event.problem not in FAULTS:
                raise EventError(f"{event.problem.text!r} is not a fault that can hit a recording")
            if self._capturing and event.problem in AUDIO_FAULTS:
                self._audio_fault = (event.problem, event.at + self.policy.notice_timeout)
            elif self._capturing:
                self._card_fault = (event.problem, event.card)
            else:
                self._reported = self._reported | {event.problem}  # until the next readiness check
            self._update_problems()
            self._dispatch(Gesture.FAULT, fault=event.problem)
        elif isinstance(event, Shutdown):
            self._dispatch(Gesture.SHUTDOWN)
        elif isinstance(event, Tick):
            pass  # it only moves time, and the deadlines up to it have run above
        else:
            assert_never(event)  # mypy: every kind of event has its branch
        self._show_seats()
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

    def _release(self, button: Button, press: _Press) -> None:
        """A press that completed no gesture ends: a tap if short, else nothing but a cue if a hold was due."""
        if self._now - press.at < self.policy.record_hold:
            tap = Gesture.TAP_RECORD if isinstance(button, RecordButton) else Gesture.TAP_CONSENT
            self._dispatch(tap, button, press)
        elif self._holds_for(button, press):
            self._emit(PlayTone(Tone.HOLD_LONGER))

    def _holds_for(self, button: Button, press: _Press) -> list[Gesture]:
        """The hold gestures this press can still complete here, shortest first."""
        holds = _RECORD_HOLDS if isinstance(button, RecordButton) else _CONSENT_HOLDS
        return [gesture for gesture in holds if gesture not in press.cued and self._applies(gesture, button)]

    def _applies(self, gesture: Gesture, button: Button | None) -> bool:
        """Whether the state has a row for `gesture` that this button can take part in."""
        if (self._state, gesture) not in ROWS:
            return False
        if not isinstance(button, ConsentButton) or gesture not in _CONSENT_GESTURES:
            return True
        if self._state is State.IDLE:
            return self._withdrawable(button)
        if self._state is State.PAUSED and gesture is not Gesture.HOLD_CONSENT:
            # A seat that consented hears how to withdraw; one that has not can join (a late arrival).
            consented = self.shared_consent or button.seat in self._require_session().consents
            return consented == (gesture is Gesture.PRESS_CONSENT)
        return True

    def _withdrawable(self, button: ConsentButton) -> bool:
        """Whether `button` may still withdraw consent from the session that ended last."""
        finished = self._finished
        if finished is None or self._now > finished.ended_at + self.policy.withdraw_window:
            return False
        return self.shared_consent or button.seat in finished.seats

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
            holds = self._holds_for(button, press)
            if holds:  # only the first hold this state reacts to
                pending.append((press.at + thresholds[holds[0]], (button, holds[0])))
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
                continue
            timeouts = [due for due in self._timeouts() if due[0] <= self._now]
            if timeouts:
                self._dispatch(min(timeouts, key=lambda due: due[0])[1])
            else:  # an audio fault's time is up, or a hold stopped applying (its window closed)
                self._update_problems()

    def _dispatch(
        self,
        gesture: Gesture,
        button: Button | None = None,
        press: _Press | None = None,
        fault: Problem | None = None,
    ) -> None:
        if not self._applies(gesture, button):
            return
        row = ROWS[(self._state, gesture)]
        if press is not None:
            if row.cue:
                press.cued.add(gesture)
            else:
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
        self._finished = None  # the next set-up closes the last session's withdrawal window
        headcount = self.policy.default_parties
        self._session = _Session(headcount=headcount, last_activity=self._now)
        self._emit(OpenSession(headcount), Flash(Colour.AMBER, headcount), PlayTone(Tone.ACK))
        return State.COLLECTING

    def _offer_withdrawal(self, **_: object) -> State:
        self._emit(PlayTone(Tone.HOLD_TO_WITHDRAW))
        return self._state

    def _withdraw_finished(self, *, button: Button | None, **_: object) -> State:
        assert isinstance(button, ConsentButton)
        keep = self.policy.on_withdrawal is OnWithdrawal.KEEP
        self._finished = None
        self._emit(WithdrawFinished(None if self.shared_consent else button.seat, keep))
        self._announce_withdrawal(kept=keep)
        return State.WITHDRAWN

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
        seat = self._new_party(button, press)
        if seat is None:
            return self._state
        session.consents.append(seat)
        session.missing_shown = False
        self._emit(RecordConsent(seat), Flash(Colour.GREEN), PlayTone(Tone.ACK))
        if len(session.consents) < session.headcount:
            return State.COLLECTING
        self._emit(PlayTone(Tone.ALL_CONSENTED))
        return State.READY

    def _new_party(self, button: Button | None, press: _Press | None) -> int | None:
        """The seat (or, with a shared button, the party's number) this press adds, None if it adds none."""
        session = self._require_session()
        assert isinstance(button, ConsentButton) and press is not None
        if not self.shared_consent:
            return None if button.seat in session.consents else button.seat
        # One button passed around: presses closer together than the gap are the same person's.
        last = session.last_counted_tap
        if last is not None and press.at - last < self.policy.shared_tap_gap:
            return None
        session.last_counted_tap = press.at
        return len(session.consents) + 1

    def _join(self, *, button: Button | None, press: _Press | None, **_: object) -> State:
        session = self._require_session()
        if session.headcount >= self.party_limit:
            return self._refuse(Refusal.TOO_MANY_PARTIES)
        seat = self._new_party(button, press)
        if seat is None:
            return self._state
        session.headcount += 1
        session.consents.append(seat)
        self._emit(SetHeadcount(session.headcount), RecordConsent(seat), Flash(Colour.GREEN), PlayTone(Tone.ACK))
        return self._state

    def _refuse_unconsented(self, **_: object) -> State:
        self._require_session().missing_shown = True
        return self._refuse(Refusal.NOT_EVERYONE_CONSENTED)

    def _lower_or_cancel(self, **_: object) -> State:
        session = self._require_session()
        if not session.consents:
            return self._cancel_setup()
        session.headcount = len(session.consents)
        session.missing_shown = False
        self._emit(SetHeadcount(session.headcount), Flash(Colour.AMBER, session.headcount),
                   PlayTone(Tone.ALL_CONSENTED))
        return State.READY

    def _cancel_setup(self, **_: object) -> State:
        return self._finish(EndReason.CANCELLED, keep=True, tone=Tone.END, target=State.IDLE)

    def _start_capture(self, **_: object) -> State:
        session = self._require_session()
        if self._problems:
            return self._refuse(worst(self._problems))
        if len(session.consents) != session.headcount:
            raise AssertionError("capture requested without everyone's consent")
        resume = session.started
        session.capture_since = self._now
        session.paused_since = None
        if self.policy.cue_every:
            session.next_cue = self._now + self.policy.cue_every * 60
        self._rec_led = True
        self._capturing = True
        self._emit(RecLed(True), OpenCapture(resume), PlayTone(Tone.START))
        if any(isinstance(button, ConsentButton) for button in self._presses):
            self._hold_back_audio()  # a CONSENT press still down may yet be a withdrawal
        return State.RECORDING

    def _warn_withdrawal(self, **_: object) -> State:
        self._emit(PlayTone(Tone.HOLD_TO_WITHDRAW))
        if self._capturing:
            self._hold_back_audio()
        return self._state

    def _remind(self, **_: object) -> State:
        session = self._require_session()
        assert session.next_cue is not None
        session.next_cue += self.policy.cue_every * 60
        self._emit(PlayTone(Tone.REMINDER))
        return self._state

    def _pause(self, **_: object) -> State:
        self._stop_capture(pause=True)
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
        self._announce_withdrawal(kept=keep and self._require_session().started)
        return self._finish(EndReason.WITHDRAWN, keep=keep, tone=None, target=State.WITHDRAWN)

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
        self._finished = None
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
        colour = Colour.RED if isinstance(reason, Problem) else Colour.AMBER
        self._emit(Refuse(reason), Flash(colour, reason.code), PlayTone(Tone.REFUSED))
        return self._state

    def _announce_withdrawal(self, *, kept: bool) -> None:
        """Say what happened to the words: destroyed (red, falling triple) or kept and marked (amber)."""
        self._withdrawal_kept = kept
        if kept:
            self._emit(Flash(Colour.AMBER, 3), PlayTone(Tone.WITHDRAWN_KEPT))
        else:
            self._emit(Flash(Colour.RED, 3), PlayTone(Tone.WITHDRAWN))

    def _hold_back_audio(self) -> None:
        if self._held_since is None:
            self._held_since = self._now
            self._emit(HoldBackAudio())

    def _write_held_audio(self) -> None:
        """Once no CONSENT button is down any more, audio held back since a press is written after all."""
        if self._held_since is None or any(isinstance(button, ConsentButton) for button in self._presses):
            return
        self._held_since = None
        self._emit(WriteHeldAudio())

    def _stop_capture(self, *, pause: bool = False) -> None:
        session = self._require_session()
        if not self._capturing:
            return
        assert session.capture_since is not None
        # Audio held back since a CONSENT press is dropped with the capture: it was never recorded.
        until = self._now if self._held_since is None else self._held_since
        session.recorded += until - session.capture_since
        session.capture_since = None
        session.next_cue = None
        self._held_since = None
        self._capturing = False
        self._rec_led = False
        self._emit(CloseCapture(pause), RecLed(False))

    def _finish(self, reason: EndReason, *, keep: bool, tone: Tone | None, target: State) -> State:
        session = self._require_session()
        self._stop_capture()
        self._emit(EndSession(reason, keep))
        if tone is not None:
            self._emit(PlayTone(tone))
        if keep and session.started and reason is not EndReason.WITHDRAWN:
            self._finished = _Finished(frozenset(session.consents), self._now)
        self._session = None  # consents never outlive their session
        return target

    def _show_status(self) -> None:
        session = self._session
        awaiting = session.headcount - len(session.consents) if session else 0
        pattern = status_pattern(self._state, self._problems, awaiting, withdrawal_kept=self._withdrawal_kept)
        if pattern != self._shown:
            self._shown = pattern
            self._emit(ShowStatus(pattern))

    def _show_seats(self) -> None:
        """Each seat's LED lit while its consent holds; the missing ones blink after a refused RECORD hold."""
        session = self._session
        if session is None or self._state is State.WITHDRAWN:
            seats = SeatLights()
        elif self.shared_consent:
            seats = SeatLights(lit=frozenset({1}) if session.consents else frozenset(),
                               blinking=frozenset({1}) if session.missing_shown else frozenset())
        else:
            lit = frozenset(session.consents)
            missing = frozenset(range(1, self.seats + 1)) - lit if session.missing_shown else frozenset()
            seats = SeatLights(lit=lit, blinking=missing)
        if seats != self._seats_shown:
            self._seats_shown = seats
            self._emit(seats)
