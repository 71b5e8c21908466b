"""A fault that stops a recording stands on the STATUS LED and refuses new sessions (docs/status-codes.md): a card
fault for as long as the card still looks as it did at the fault, an audio fault for `notice_timeout`. The rule
is the core's, so the Hypothesis machine and these tests cover it; the shell only reports what it sees."""

from __future__ import annotations

import pytest

from consentbox.core.commands import Refuse, ShowStatus
from consentbox.core.events import RECORD, Fault, ReadinessChanged, Tick
from consentbox.core.feedback import Colour, Pattern, Rhythm
from consentbox.core.reasons import Problem
from consentbox.core.table import State
from tests.core.test_not_ready import POLICY, paused_box, press, ready_box

NO_CARD, CARD_LOST, CARD_FULL = frozenset({Problem.NO_CARD}), Problem.CARD_LOST, Problem.CARD_FULL


def recording_box():
    """A box recording from t = 5."""
    machine = ready_box()
    press(machine, RECORD, 4.0, held=1.5)
    assert machine.state is State.RECORDING
    return machine


@pytest.mark.parametrize(("card_then", "card_later", "stands"), [
    (NO_CARD, NO_CARD, True),  # still out: "card lost" (4), not "no card" (1)
    (NO_CARD, frozenset(), False),  # back in the slot
    (NO_CARD, frozenset({Problem.CARD_READ_ONLY}), False),  # another card, or the same one changed
], ids=["still out", "back", "changed"])
def test_a_card_fault_stands_while_the_card_looks_as_it_did(card_then, card_later, stands):
    machine = recording_box()
    machine.handle(Fault(CARD_LOST, 10.0, card=card_then))
    assert machine.state is State.IDLE and machine.problems == {CARD_LOST}
    machine.handle(ReadinessChanged(card_later, 11.0))
    assert (CARD_LOST in machine.problems) is stands
    assert machine.problems == ({CARD_LOST} if stands else card_later)
    refused = press(machine, RECORD, 12.0)
    assert (Refuse(CARD_LOST) in refused) is stands


def test_a_card_fault_keeps_other_problems_beside_it():
    machine = recording_box()
    machine.handle(Fault(CARD_FULL, 10.0, card=frozenset({Problem.CARD_FULL})))
    machine.handle(ReadinessChanged(frozenset({Problem.CARD_FULL, Problem.CLOCK_UNTRUSTED}), 11.0))
    assert machine.problems == {CARD_FULL, Problem.CLOCK_UNTRUSTED}


def test_an_audio_fault_stands_for_notice_timeout_then_the_next_session_tries_again():
    machine = recording_box()
    machine.handle(Fault(Problem.AUDIO_LOST, 10.0))
    machine.handle(ReadinessChanged(frozenset(), 11.0))  # the shell sees nothing wrong: the device is closed
    assert machine.problems == {Problem.AUDIO_LOST}
    until = 10.0 + POLICY.notice_timeout
    assert machine.next_deadline() == until, "the shell is woken when the fault stops standing"
    machine.handle(Tick(until - 0.01))
    assert machine.problems == {Problem.AUDIO_LOST}
    assert ShowStatus(Pattern(Colour.GREEN, Rhythm.STEADY)) in machine.handle(Tick(until))
    assert machine.problems == frozenset() and machine.next_deadline() is None
    press(machine, RECORD, until + 1)
    assert machine.state is State.COLLECTING


def test_a_fault_while_paused_lasts_only_until_the_next_readiness_check():
    machine = paused_box()
    machine.handle(Fault(Problem.AUDIO_LOST, 10.0))
    assert machine.state is State.IDLE and machine.problems == {Problem.AUDIO_LOST}
    machine.handle(ReadinessChanged(frozenset(), 11.0))
    assert machine.problems == frozenset()

