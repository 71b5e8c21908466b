"""A shutdown from every state with a session: IDLE, and what is open is finalised, in the right order
(docs/product.md, the front-panel table's `shutdown` rows)."""

from __future__ import annotations

import pytest

from consentbox.core.commands import CloseCapture, EndSession, PlayTone, RecLed, SeatLights, ShowStatus
from consentbox.core.events import RECORD, Button, ConsentButton, Event, Pressed, Released, Shutdown, Tick
from consentbox.core.feedback import Tone
from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason
from consentbox.core.session import SessionMachine
from consentbox.core.table import State


def tap(button: Button, at: float) -> list[Event]:
    return [Pressed(button, at), Released(button, at + 0.1)]


COLLECTING = tap(RECORD, 0)
READY = COLLECTING + tap(ConsentButton(1), 1) + tap(ConsentButton(2), 2)
RECORDING = READY + [Pressed(RECORD, 3), Tick(4.5), Released(RECORD, 4.6)]  # capture opens at 4.0
PAUSED = RECORDING + tap(RECORD, 10)
WITHDRAWN = RECORDING + [Pressed(ConsentButton(1), 10), Tick(12.5), Released(ConsentButton(1), 12.6)]

ENDED = [EndSession(EndReason.SHUTDOWN, keep=True), PlayTone(Tone.END)]


@pytest.mark.parametrize(
    ("events", "state", "finalising"),
    [
        (COLLECTING, State.COLLECTING, ENDED),
        (READY, State.READY, ENDED),
        (RECORDING, State.RECORDING, [CloseCapture(), RecLed(False), *ENDED]),
        (PAUSED, State.PAUSED, ENDED),  # the pause closed the capture already
        (WITHDRAWN, State.WITHDRAWN, []),  # the withdrawal ended the session already
    ],
    ids=["collecting", "ready", "recording", "paused", "withdrawn"],
)
def test_a_shutdown_leaves_the_box_idle_with_what_was_open_finalised(events, state, finalising):
    machine = SessionMachine(Policy(), seats=2)
    for event in events:
        machine.handle(event)
    assert machine.state is state, "the set-up reached the state under test"

    commands = machine.handle(Shutdown(20.0))

    assert machine.state is State.IDLE
    assert [c for c in commands if not isinstance(c, (ShowStatus, SeatLights))] == finalising
    assert isinstance(commands[-1], ShowStatus), "the panel shows IDLE's pattern last"
    assert machine.headcount == 0 and machine.handle(Shutdown(21.0)) == (), "nothing is left open"
