"""Play a scenario through the session machine in virtual time and collect the timeline.

Time jumps straight from one step or deadline to the next, so a four-hour script runs in
milliseconds. Hold thresholds and timeouts fire at their exact times via `next_deadline()`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any, assert_never

from consentbox.box.timeline import command_entry, state_entry
from consentbox.core.commands import Command, OpenSession
from consentbox.core.events import Event, Fault, Pressed, Released, Shutdown, Tick
from consentbox.core.session import SessionMachine
from consentbox.sim.script import AdvanceStep, EndStep, FaultStep, ScriptError, Step, UsbStep


def run_scenario(
    machine: SessionMachine,
    steps: Iterable[Step],
    *,
    new_session_id: Callable[[], str] = lambda: secrets.token_hex(8),
) -> list[dict[str, Any]]:
    """Run `steps` (in time order) to the end, which is an `end` step or else the last step.

    A step that needs more than the session machine (a `usb` stick, an `advance` of the clock, whose wipe
    needs a card) raises `ScriptError` naming its line.
    """
    timeline: list[dict[str, Any]] = [state_entry(machine.now, machine.state)]
    session_id = ""

    def feed(event: Event) -> None:
        nonlocal session_id
        before = machine.state
        commands: tuple[Command, ...] = machine.handle(event)
        for command in commands:
            if isinstance(command, OpenSession):
                session_id = new_session_id()
            timeline.append(command_entry(event.at, command, session_id))
        if machine.state is not before:
            timeline.append(state_entry(event.at, machine.state))

    def advance(to: float) -> None:
        while (deadline := machine.next_deadline()) is not None and deadline <= to:
            feed(Tick(max(deadline, machine.now)))

    last = machine.now
    for step in steps:
        advance(step.at)
        last = step.at
        if isinstance(step, EndStep):
            break
        if isinstance(step, FaultStep):
            feed(Fault(step.fault.problem, step.at))
        elif isinstance(step, (Pressed, Released)):
            feed(step)
        elif isinstance(step, UsbStep):
            # Refused, not skipped: a test that skipped it would pass without the install it scripted.
            raise ScriptError(
                f"script line {step.line}: 'usb {step.path}' at {step.at:g} s needs the whole box (run_scenario "
                "plays the session machine alone): play the script with `consentbox simulate`"
            )
        elif isinstance(step, AdvanceStep):
            raise ScriptError(
                f"script line {step.line}: 'advance' at {step.at:g} s needs the whole box (the wipe runs as time "
                "passes, on the card): play the script with `consentbox simulate`"
            )
        else:
            assert_never(step)  # mypy: every kind of step is carried out or refused above
    feed(Shutdown(last))
    return timeline
