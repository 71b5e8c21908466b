"""The session machine takes only its own events: anything else is refused by name, before time moves."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from consentbox.core.errors import ConsentBoxError, UnknownEvent
from consentbox.core.events import RECORD, Pressed
from consentbox.core.policy import Policy
from consentbox.core.session import SessionMachine
from consentbox.core.table import State
from consentbox.sim.script import UsbStep


@dataclass(frozen=True)
class LookalikePress:
    """Has every field of `Pressed` (and would tap RECORD if the machine went by shape) but is not one."""

    button: object
    at: float


@dataclass(frozen=True)
class LookalikeTick:
    """Has the one field of `Tick`: taken for one, it would run every hold and timeout up to `at`."""

    at: float


@pytest.mark.parametrize(
    ("thing", "name"),
    [
        (object(), "builtins.object"),
        ("5 tap record", "builtins.str"),
        (None, "builtins.NoneType"),
        (LookalikePress(RECORD, 5.0), f"{__name__}.LookalikePress"),
        (LookalikeTick(9999.0), f"{__name__}.LookalikeTick"),
        (UsbStep("stick", 5.0, line=1), "consentbox.sim.script.UsbStep"),  # a script step is not an event
    ],
)
def test_anything_but_an_event_is_refused_naming_its_type_and_nothing_moves(thing, name):
    machine = SessionMachine(Policy(), seats=2)
    machine.handle(Pressed(RECORD, 1.0))  # a press pending: a moved clock would make it a hold
    with pytest.raises(UnknownEvent) as caught:
        machine.handle(thing)
    message = str(caught.value)
    assert message.startswith(f"{name} is not a session event: ") and "\n" not in message
    assert "Pressed" in message and "Tick" in message, "the message lists what the machine takes"
    assert isinstance(caught.value, ConsentBoxError) and isinstance(caught.value, TypeError)
    assert (machine.now, machine.state) == (1.0, State.IDLE)
