"""Every deadline the machine reports is cleared or moved past the time of the `Tick` that reaches it.

The box's loop (`Box.run_until`) posts `Tick(now)` whenever `next_deadline() <= now`. Were a deadline
left at or before the tick that fired it, the loop would post ticks forever (or, inside the machine,
`handle` would fire the same gesture forever). Random traces tick exactly at each deadline and a little
after it, in every state that has one: the hold thresholds, the consent timeout, the pause timeout,
the session limit and the notice timeout.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentbox.core.events import RECORD, Button, ConsentButton, Event, Pressed, ReadinessChanged, Released, Tick
from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem
from consentbox.core.session import SessionMachine
from consentbox.core.table import State

# One `handle` takes microseconds of CPU: a second means it fires gestures forever. CPU time, not time on
# the wall, so a loaded machine cannot fail the test.
HANDLE_LIMIT_CPU_SECONDS = 1.0
HOLD = "hold threshold"

# What each example's ticks reached, to show the traces reach every kind of deadline.
reached: set[State | str] = set()


class Hung(Exception):
    """`handle` did not return: it keeps firing a deadline that does not move."""


@contextlib.contextmanager
def bounded(event: Event) -> Iterator[None]:
    """Fail with `Hung` instead of hanging when handling `event` does not return."""

    def hung(signum: int, frame: object) -> None:
        raise Hung(f"handling {event} did not return in {HANDLE_LIMIT_CPU_SECONDS} s of CPU")

    previous = signal.signal(signal.SIGVTALRM, hung)
    signal.setitimer(signal.ITIMER_VIRTUAL, HANDLE_LIMIT_CPU_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


@st.composite
def policies(draw: st.DrawFn, parties: int) -> Policy:
    """Policies of up to `parties` parties, with thresholds and timeouts anywhere in their ranges' short ends."""
    record_hold = draw(st.floats(0.2, 3.0))
    return Policy(
        default_parties=draw(st.integers(1, parties)),
        record_hold=record_hold,
        end_hold=draw(st.floats(record_hold, 6.0, exclude_min=True)),
        withdraw_hold=draw(st.floats(0.2, 3.0)),
        shared_tap_gap=draw(st.floats(0.1, 2.0)),
        consent_timeout=draw(st.floats(10.0, 40.0)),
        pause_timeout=draw(st.floats(10.0, 40.0)),
        max_session=draw(st.floats(60.0, 90.0)),
        notice_timeout=draw(st.floats(1.0, 10.0)),
    )


# One step of a trace: a time gap, then a whole tap, a whole hold (to its first threshold), a button going down or up,
# a session started as the clinic starts one, a readiness check (mostly
# ready), or a tick at the next deadline (exactly at it, or just after). Taps and ticks dominate, so that
# sessions reach every state and run on into their timeouts.
TAP_SECONDS = 0.1  # shorter than any hold threshold
steps = st.tuples(
    st.sampled_from(
        ["session", "tap", "tap", "tap", "hold", "hold", "down", "up", "ready", "deadline", "deadline", "deadline"]
    ),
    st.one_of(st.sampled_from([0.0, 1e-9, TAP_SECONDS]), st.floats(0.0, 4.0)),
    st.integers(0, 2),  # which button
    st.integers(0, 4),  # a readiness check finds the card missing only at 0
)


def tick_past_deadline(machine: SessionMachine, at: float, thresholds: dict[Button, tuple[float, ...]]) -> None:
    """Tick at `at`, past the machine's next deadline, and check that deadline moved past `at`."""
    deadline = machine.next_deadline()
    assert deadline is not None and deadline <= at
    reached.add(HOLD if any(deadline in dues for dues in thresholds.values()) else machine.state)
    with bounded(Tick(at)):
        machine.handle(Tick(at))
    after = machine.next_deadline()
    assert after is None or after > at, (
        f"after Tick({at}) in {machine.state.value} the next deadline is {after}: the box would tick forever"
    )


@given(
    seats=st.integers(1, 2),
    shared=st.booleans(),
    trace=st.lists(steps, min_size=1, max_size=40),
    data=st.data(),
)
def check_trace(seats: int, shared: bool, trace: list[tuple[str, float, int, int]], data: st.DataObject) -> None:
    policy = data.draw(policies(2 if shared else seats), label="policy")
    machine = SessionMachine(policy, seats=seats, shared_consent=shared)
    buttons: list[Button] = [RECORD, *(ConsentButton(seat) for seat in range(1, seats + 1))]
    # When each button held down would reach each of its hold thresholds, to tell holds from timeouts.
    thresholds: dict[Button, tuple[float, ...]] = {}
    now = 0.0

    def feed(event: Event) -> None:
        if isinstance(event, Pressed):  # as the machine: the first press of a button already down stands
            holds = (policy.record_hold, policy.end_hold) if event.button == RECORD else (policy.withdraw_hold,)
            thresholds.setdefault(event.button, tuple(event.at + hold for hold in holds))
        elif isinstance(event, Released):
            thresholds.pop(event.button, None)
        with bounded(event):
            machine.handle(event)
        # Whatever the event, time alone must move the machine on: a deadline due now fires on one tick.
        if (deadline := machine.next_deadline()) is not None and deadline <= event.at:
            tick_past_deadline(machine, event.at, thresholds)

    def tap(button: Button) -> None:
        nonlocal now
        feed(Pressed(button, now))
        now += TAP_SECONDS
        feed(Released(button, now))

    def hold(button: Button) -> None:
        nonlocal now
        feed(Pressed(button, now))
        now += policy.record_hold if button == RECORD else policy.withdraw_hold
        if (deadline := machine.next_deadline()) is not None and deadline <= now:
            tick_past_deadline(machine, now, thresholds)
        feed(Released(button, now))

    for kind, gap, which, card in trace:
        button = buttons[which % len(buttons)]
        if kind == "deadline":
            if (deadline := machine.next_deadline()) is not None:
                now = max(now, deadline + gap)
                tick_past_deadline(machine, now, thresholds)
            continue
        now += gap
        if kind == "session":  # RECORD tapped, each party's consent a gap apart, RECORD held
            tap(RECORD)
            for seat in [1] * policy.default_parties if shared else range(1, policy.default_parties + 1):
                now += policy.shared_tap_gap
                tap(ConsentButton(seat))
            hold(RECORD)
        elif kind == "tap":
            tap(button)
        elif kind == "hold":
            hold(button)
        elif kind == "down":
            feed(Pressed(button, now))
        elif kind == "up":
            feed(Released(button, now))
        else:
            feed(ReadinessChanged(frozenset({Problem.NO_CARD}) if card == 0 else frozenset(), now))


def test_a_tick_at_or_after_a_deadline_moves_it_past_the_tick():
    reached.clear()
    settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])(check_trace)()
    wanted = {HOLD, State.COLLECTING, State.READY, State.RECORDING, State.PAUSED, State.WITHDRAWN}
    assert wanted <= reached, f"the traces never ticked a deadline in {wanted - reached}"
