"""A box that is not ready never records (docs/product.md, "Front panel"): it refuses to open a session
(tests/core/test_gestures.py), and just as much to start or resume capture when it stopped being ready
after everyone consented (a card pulled or locked, the clock found untrustworthy, the bundle no longer
obeyed). The machine is driven event by event, as the shell feeds it; tests/system/test_card_faults.py
shows the same through the whole box.
"""

from __future__ import annotations

import pytest

from consentbox.core.commands import Command, OpenCapture, RecLed, Refuse
from consentbox.core.events import RECORD, Button, ConsentButton, Pressed, ReadinessChanged, Released
from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem
from consentbox.core.session import SessionMachine
from consentbox.core.table import State

POLICY = Policy()  # record_hold 1 s, end_hold 2 s


def press(machine: SessionMachine, button: Button, at: float, held: float = 0.1) -> list[Command]:
    """Press `button` at `at` and let go `held` seconds later; the commands both edges gave."""
    return [*machine.handle(Pressed(button, at)), *machine.handle(Released(button, at + held))]


def ready_box() -> SessionMachine:
    """A box in READY at t = 3.1: a session set up for two parties, both of whom consented."""
    machine = SessionMachine(POLICY, seats=2)
    press(machine, RECORD, 0.0)
    press(machine, ConsentButton(1), 2.0)
    press(machine, ConsentButton(2), 3.0)
    assert machine.state is State.READY
    return machine


def paused_box() -> SessionMachine:
    """A box in PAUSED at t = 7.1: recorded from 5 s (after the 1 s hold) to 7 s."""
    machine = ready_box()
    press(machine, RECORD, 4.0, held=1.5)
    press(machine, RECORD, 7.0)
    assert machine.state is State.PAUSED and not machine.capturing
    return machine


#: How each state's gesture that (re)starts capture is made: READY holds RECORD, PAUSED taps it.
START = {State.READY: (ready_box, 1.5), State.PAUSED: (paused_box, 0.1)}


@pytest.mark.parametrize("problem", list(Problem), ids=lambda problem: problem.text)
@pytest.mark.parametrize("state", list(START), ids=lambda state: state.value)
def test_a_box_no_longer_ready_refuses_to_start_capture_and_starts_once_ready_again(state, problem):
    make, held = START[state]
    machine = make()
    machine.handle(ReadinessChanged(frozenset({problem}), 10.0))

    refused = press(machine, RECORD, 11.0, held)
    assert Refuse(problem) in refused
    assert RecLed(True) not in refused, "the REC LED lit on a box not ready"
    assert not any(isinstance(c, OpenCapture) for c in refused), "capture opened on a box not ready"
    assert (machine.state, machine.rec_led, machine.capturing) == (state, False, False)

    machine.handle(ReadinessChanged(frozenset(), 20.0))  # the card is back, the clock trusted again
    started = press(machine, RECORD, 21.0, held)
    assert started[started.index(RecLed(True)) + 1] == OpenCapture(resume=state is State.PAUSED)
    assert (machine.state, machine.rec_led, machine.capturing) == (State.RECORDING, True, True)
