"""The scenario runner plays the session machine alone: a step it cannot carry out is refused, never skipped."""

from __future__ import annotations

import pytest

from consentbox.core.policy import Policy
from consentbox.core.session import SessionMachine
from consentbox.sim.runner import run_scenario
from consentbox.sim.script import ScriptError, parse_script


@pytest.mark.parametrize(
    ("script", "named"),
    [
        ("0 usb sticks/ok\n", "script line 1: 'usb sticks/ok' at 0 s "),
        ("0 tap record\n# the supervisor arrives\n2 tap consent 1\n\n5 usb sticks/ok\n9 end\n",
         "script line 5: 'usb sticks/ok' at 5 s "),
        ("5 usb sticks/ok\n0 tap record\n", "script line 1: 'usb sticks/ok' at 5 s "),  # line, not place in time
    ],
)
def test_a_usb_step_is_refused_with_a_one_line_error_naming_it_and_its_line(script, named):
    machine = SessionMachine(Policy(), seats=2)
    with pytest.raises(ScriptError) as caught:
        run_scenario(machine, parse_script(script))
    message = str(caught.value)
    assert message.startswith(named) and "\n" not in message
    assert "consentbox simulate" in message, "the message says what to do instead"


def test_an_advance_step_is_refused_as_it_needs_the_card_s_wipe():
    with pytest.raises(ScriptError) as caught:
        run_scenario(SessionMachine(Policy(), seats=2), parse_script("0 tap record\n5 advance 31d\n"))
    message = str(caught.value)
    assert message.startswith("script line 2: 'advance' at 5 s ") and "consentbox simulate" in message
