"""The consent invariants, checked after every step of random event sequences (Hypothesis stateful).

The machine under test is driven with random button edges on 1–6 seats, in both button modes,
random readiness and faults, and random time advances; a shadow of the panel is rebuilt from the
commands alone, so the checks are on what the hardware would actually be told to do.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from consentbox.core.commands import (
    CloseCapture,
    EndSession,
    HoldBackAudio,
    OpenCapture,
    OpenSession,
    PlayTone,
    RecLed,
    RecordConsent,
    RecordWithdrawal,
    SeatLights,
    SetHeadcount,
    ShowStatus,
    WithdrawFinished,
    WriteHeldAudio,
)
from consentbox.core.events import RECORD, ConsentButton, Fault, Pressed, ReadinessChanged, Released, Tick
from consentbox.core.feedback import Tone
from consentbox.core.policy import OnWithdrawal, Policy
from consentbox.core.reasons import AUDIO_FAULTS, CARD_PROBLEMS, FAULTS, EndReason, Problem
from consentbox.core.session import SessionMachine
from consentbox.core.table import SESSION_STATES, State

STEPS = 60
EXAMPLES = 800
LONG_RUNS_WANTED = 500  # some examples stop early when Hypothesis's data buffer fills
runs: list[int] = []  # steps taken by each example, to prove the run was as long as claimed

# Long enough that every hold has fired and every timeout has run out.
def longest_wait(policy: Policy) -> float:
    timeouts = (policy.consent_timeout, policy.pause_timeout, policy.notice_timeout, policy.end_hold)
    return max(timeouts) + policy.max_session


class ConsentRules(RuleBasedStateMachine):
    @initialize(
        seats=st.integers(1, 6),
        shared=st.booleans(),
        keep=st.booleans(),
        cue=st.booleans(),
        data=st.data(),
    )
    def set_up(self, seats, shared, keep, cue, data):
        limit = 6 if shared else seats
        parties = data.draw(st.integers(1, limit), label="default_parties")
        self.policy = Policy(
            default_parties=parties,
            max_parties=6,
            on_withdrawal=OnWithdrawal.KEEP if keep else OnWithdrawal.DESTROY,
            # Short timeouts so random time advances reach them often.
            consent_timeout=30.0, pause_timeout=40.0, max_session=120.0, notice_timeout=5.0,
            withdraw_window=60.0, cue_every=0.5 if cue else 0.0,
        )
        self.machine = SessionMachine(self.policy, seats=seats, shared_consent=shared)
        self.now = 0.0
        self.down: set = set()
        # The shadow panel, built only from commands.
        self.led = False
        self.capture = False
        self.headcount = 0
        self.consents: list[int] = []
        self.session_open = False
        self.problems: frozenset[Problem] = frozenset()  # why the box is not ready, as the shell told it
        # Faults that stopped a recording: the card's stands while the card looks as it did (`card_seen`),
        # the microphone's until `audio_until`.
        self.card_seen: frozenset[Problem] | None = None
        self.audio_until = 0.0
        # Shared button: the machine numbers the taps itself, so the shadow checks their times instead.
        self.pressed_at: dict = {}
        self.last_counted_tap: float | None = None
        # The audio as the shell would write it: each interval from `open_at`, held back from `held_from`;
        # what was written ends at `written_until`; `recorded` if the session has any audio at all.
        self.held_from: float | None = None
        self.held_from_open = False  # held back from the moment the interval opened: nothing written
        self.written_until = 0.0
        self.recorded = False
        self.presses = 0  # presses so far: each press's number tells it from another at the same time
        self.press_number: dict = {}
        self.consenting_presses: set = set()  # (button, press number) of presses that gave a consent
        # The session that ended last with audio kept, and who consented to it: who may withdraw after it.
        self.finished: tuple[frozenset[int], float] | None = None
        self.steps = -1  # the check after initialisation is not a step

    # -- rules ------------------------------------------------------------------------------------

    def feed(self, event) -> None:
        press_at = None
        if isinstance(event, Pressed):
            if event.button not in self.pressed_at:  # as the machine: the first press stands
                self.pressed_at[event.button] = event.at
                self.presses += 1
                self.press_number[event.button] = self.presses
            press_at = self.pressed_at[event.button]
        elif isinstance(event, Released):
            # The holds due by now fire on a tick of their own, so what the release does is seen alone.
            self.feed(Tick(event.at))
            press_at = self.pressed_at.pop(event.button, None)
        elif isinstance(event, ReadinessChanged):
            self.problems = event.problems
            if self.card_seen is not None and event.problems & CARD_PROBLEMS != self.card_seen:
                self.card_seen = None
        elif isinstance(event, Fault):
            if self.capture and event.problem in AUDIO_FAULTS:
                self.audio_until = event.at + self.policy.notice_timeout
            elif self.capture:
                self.card_seen = event.card
            else:
                self.problems |= {event.problem}  # until the next readiness check says otherwise
        before = self.machine.state
        commands = self.machine.handle(event)
        if isinstance(event, Released) and press_at is not None and event.at - press_at >= self.policy.record_hold:
            # A press longer than a tap that completed no gesture triggers none: it only says so.
            quiet = (PlayTone(Tone.HOLD_LONGER), WriteHeldAudio())
            assert all(c in quiet or isinstance(c, (ShowStatus, SeatLights)) for c in commands), \
                f"a press of {event.at - press_at:g} s that completed no gesture did {commands}"
        self.opened = False
        for index, command in enumerate(commands):
            self.check(command, commands[index + 1:], event, before, press_at)

    def check(self, command, following, event, before, press_at) -> None:
        """Follow one command on the shadow panel, asserting the consent rules as it goes."""
        if isinstance(command, OpenSession):
            assert not self.session_open and not self.consents, "consents carried over"
            self.session_open, self.headcount = True, command.headcount
            self.last_counted_tap = None
            self.finished = None
            self.recorded = False
        elif isinstance(command, SetHeadcount):
            assert self.session_open
            if self.consents and command.headcount > self.headcount:
                # Raised after consent began only for a late arrival in PAUSED, who consents in the same step.
                assert before is State.PAUSED and command.headcount == self.headcount + 1
                assert isinstance(following[0], RecordConsent), "a late arrival added without their consent"
            elif self.consents:
                assert before is State.COLLECTING and command.headcount == len(self.consents), \
                    "the headcount lowered below, or other than to, the consents given"
            self.headcount = command.headcount
        elif isinstance(command, RecordConsent):
            assert self.session_open and command.seat not in self.consents
            if self.machine.shared_consent:
                assert press_at is not None, "a shared-button consent without a press"
                last = self.last_counted_tap
                assert last is None or press_at - last >= self.policy.shared_tap_gap, \
                    "one person's taps less than shared_tap_gap apart counted as two consents"
                self.last_counted_tap = press_at
            self.consents.append(command.seat)
            if isinstance(event, Pressed):
                self.consenting_presses.add((event.button, self.press_number[event.button]))
        elif isinstance(command, RecLed):
            if command.on:
                assert isinstance(following[0], OpenCapture), "REC LED on must come right before capture"
            else:
                assert not self.capture, "REC LED off while capture open"
            self.led = command.on
        elif isinstance(command, OpenCapture):
            assert self.led, "capture opened before the REC LED was on"
            assert self.session_open and len(set(self.consents)) == self.headcount, \
                "capture without every current party's consent"
            assert not self.problems, f"capture opened on a box that is not ready: {set(self.problems)}"
            assert self.card_seen is None, "capture opened while a card fault stands (the card looks the same)"
            assert self.now >= self.audio_until, "capture opened while an audio fault stands"
            if before is State.PAUSED:
                assert isinstance(event, Released) and event.button == RECORD, "resumed other than by a tap"
                assert event.at - press_at < self.policy.record_hold, "resumed by a press longer than a tap"
            self.capture = True
            self.opened = True  # in this step
        elif isinstance(command, HoldBackAudio):
            assert self.capture and self.held_from is None
            assert any(isinstance(button, ConsentButton) for button in self.pressed_at), "held back without a press"
            self.held_from = self.now
            self.held_from_open = self.opened
        elif isinstance(command, WriteHeldAudio):
            assert self.capture and self.held_from is not None
            assert not any(isinstance(button, ConsentButton) for button in self.pressed_at), \
                "held-back audio written while a CONSENT button is still down"
            self.held_from = None
        elif isinstance(command, CloseCapture):
            assert isinstance(following[0], RecLed), "REC LED off must follow capture close"
            if self.held_from is None or not self.held_from_open:
                self.written_until = self.now if self.held_from is None else self.held_from
                self.recorded = True
            self.capture, self.held_from = False, None
        elif isinstance(command, RecordWithdrawal):
            self.check_withdrawal_press(command.seat)
        elif isinstance(command, WithdrawFinished):
            # (Its event may have ended that session first: a hold completing as the session ends.)
            assert self.finished is not None, "a withdrawal with no session to withdraw"
            seats, ended = self.finished
            press = self.pressed_at[ConsentButton(command.seat or 1)]
            assert press + self.policy.withdraw_hold <= ended + self.policy.withdraw_window, \
                "withdrawn after withdraw_window"
            assert command.seat is None if self.machine.shared_consent else command.seat in seats, \
                "a seat that did not consent withdrew someone else's session"
            assert command.keep is (self.policy.on_withdrawal is OnWithdrawal.KEEP)
            self.check_withdrawal_press(command.seat)
            self.finished = None
        elif isinstance(command, EndSession):
            assert not self.capture, "session ended with capture open"
            if command.reason is EndReason.WITHDRAWN:
                assert command.keep is (self.policy.on_withdrawal is OnWithdrawal.KEEP)
            if command.keep and command.reason is not EndReason.WITHDRAWN and self.recorded:
                self.finished = (frozenset(self.consents), self.now)
            self.session_open, self.consents, self.headcount = False, [], 0
        elif isinstance(command, PlayTone) and command.tone is Tone.REMINDER:
            assert self.capture and self.policy.cue_every, "a reminder tone while not recording"

    def check_withdrawal_press(self, seat: int | None) -> None:
        """No audio from the moment the withdrawing press began was written, or will be."""
        button = ConsentButton(seat or 1)
        press = self.pressed_at.get(button)
        assert press is not None, "a withdrawal without its button down"
        assert (button, self.press_number[button]) not in self.consenting_presses, \
            "a press that consented counted as a withdrawal"
        assert not self.capture and self.written_until <= press, \
            f"audio up to {self.written_until} s kept after a withdrawal pressed at {press} s"

    def button(self, data):
        seats = 1 if self.machine.shared_consent else self.machine.seats  # one shared button, passed around
        return data.draw(st.sampled_from([RECORD] + [ConsentButton(s) for s in range(1, seats + 1)]), label="button")

    @rule(data=st.data())
    def press(self, data):
        button = self.button(data)
        self.down.add(button)
        self.feed(Pressed(button, self.now))

    @rule(data=st.data())
    def release(self, data):
        button = self.button(data)
        self.down.discard(button)
        self.feed(Released(button, self.now))

    # Mostly short waits (holds, taps); sometimes long enough for a timeout.
    short = st.floats(0.0, 3.0)

    @rule(seconds=st.one_of(short, short, short, st.sampled_from([0.1, 1.0, 2.0, 31.0, 41.0, 130.0])))
    def wait(self, seconds):
        self.now += seconds
        self.feed(Tick(self.now))

    @rule(data=st.data(), hold=st.sampled_from([0.1, 0.5, 1.0, 1.5, 2.0, 2.5]))
    def tap_or_hold(self, data, hold):
        """A whole press: the common case, so random runs reach deep into sessions."""
        button = self.button(data)
        if button in self.down:
            return
        self.feed(Pressed(button, self.now))
        self.now += hold
        self.feed(Released(button, self.now))

    @precondition(lambda self: self.machine.state is State.COLLECTING)
    @rule(order=st.randoms(use_true_random=False))
    def everyone_consents(self, order):
        """Each missing party taps CONSENT once (a gap apart): random runs then reach READY often."""
        seats = list(range(1, self.machine.seats + 1))
        order.shuffle(seats)
        for seat in seats if not self.machine.shared_consent else [1] * self.machine.headcount:
            button = ConsentButton(seat)
            if button in self.down:
                continue
            self.now += self.policy.shared_tap_gap
            self.feed(Pressed(button, self.now))
            self.feed(Released(button, self.now + 0.1))
            self.now += 0.1

    @precondition(lambda self: self.machine.shared_consent and self.machine.state is State.COLLECTING)
    @rule(second=st.sampled_from([0.2, 0.5, 0.9]))
    def double_tap(self, second):
        """One person taps the shared button twice, less than the gap apart: at most one consent counts."""
        button = ConsentButton(1)
        if button in self.down:
            return
        before = len(self.consents)
        for _ in range(2):
            self.feed(Pressed(button, self.now))
            self.feed(Released(button, self.now + 0.1))
            self.now += second * self.policy.shared_tap_gap
        assert len(self.consents) <= before + 1, "a double tap counted as two consents"

    @rule()
    def hold_record(self):
        """Hold RECORD just long enough to start a recording (or be refused)."""
        if RECORD in self.down:
            return
        self.feed(Pressed(RECORD, self.now))
        self.now += self.policy.record_hold
        self.feed(Tick(self.now))
        self.now += 0.1
        self.feed(Released(RECORD, self.now))

    # Mostly ready: a box that is never ready never leaves IDLE, and tests nothing.
    @rule(problems=st.sampled_from([frozenset()] * 9 + [frozenset({p}) for p in Problem]))
    def readiness(self, problems):
        self.feed(ReadinessChanged(problems, self.now))

    @precondition(lambda self: self.machine.state in (State.RECORDING, State.PAUSED))
    @rule(fault=st.sampled_from(sorted(FAULTS, key=lambda p: p.code)),
          card=st.sampled_from([frozenset(), frozenset({Problem.NO_CARD}), frozenset({Problem.CARD_FULL})]))
    def fault(self, fault, card):
        self.feed(Fault(fault, self.now, card=card))
        assert self.machine.state is State.IDLE and not self.led and fault in self.machine.problems

    @rule()
    def withdraw(self):
        """Hold a CONSENT button for withdraw_hold: capture must close in the step that fires it."""
        seat = ConsentButton(1)
        in_session = self.machine.state in SESSION_STATES and seat not in self.down
        self.down.add(seat)
        self.feed(Pressed(seat, self.now))
        self.now += self.policy.withdraw_hold
        self.feed(Tick(self.now))
        if in_session and self.machine.state is State.WITHDRAWN:
            assert not self.capture and not self.led and not self.consents

    @precondition(lambda self: self.steps > 0)
    @rule()
    def everything_ends(self):
        """Let go of every button and wait: any session ends by its timeouts, whatever its state."""
        for button in sorted(self.down, key=str):
            self.feed(Released(button, self.now))
        self.down.clear()
        self.now += longest_wait(self.policy)
        self.feed(Tick(self.now))
        assert self.machine.state is State.IDLE, f"stuck in {self.machine.state}"
        assert not self.session_open and not self.led

    # -- invariants, after every step -------------------------------------------------------------

    @invariant()
    def count_step(self):
        """Invariants run after initialisation and after every rule: count the rules."""
        if hasattr(self, "machine"):
            self.steps += 1

    @invariant()
    def shadow_matches_machine(self):
        if not hasattr(self, "machine"):
            return
        assert self.led == self.machine.rec_led and self.capture == self.machine.capturing

    @invariant()
    def rec_led_only_when_recording_with_everyone(self):
        if not hasattr(self, "machine") or not self.led:
            return
        assert self.machine.state is State.RECORDING
        assert len(set(self.machine.consents)) == self.machine.headcount == self.headcount

    @invariant()
    def capture_if_and_only_if_rec_led(self):
        if hasattr(self, "machine"):
            assert self.capture == self.led

    @invariant()
    def something_pending_outside_idle(self):
        """Liveness: outside IDLE a deadline is always set, so time alone moves the box on."""
        if hasattr(self, "machine") and self.machine.state is not State.IDLE:
            assert self.machine.next_deadline() is not None

    def teardown(self):
        if hasattr(self, "steps"):
            runs.append(self.steps)


def test_consent_invariants_hold_over_many_long_random_runs():
    runs.clear()
    run_state_machine_as_test(
        ConsentRules,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    long_runs = sum(1 for steps in runs if steps >= 50)
    assert long_runs >= LONG_RUNS_WANTED, f"only {long_runs} of {len(runs)} examples ran 50 steps or more"
