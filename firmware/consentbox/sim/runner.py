"""Play a scenario through the session machine in virtual time and collect the timeline.

Time jumps straight from one step or deadline to the next, so a four-hour script runs in
milliseconds. Hold thresholds and timeouts fire at their exact times via `next_deadline()`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any

from consentbox.core.commands import Command, OpenSession
from consentbox.core.events import Event, Fault, Shutdown, Tick
from consentbox.core.reasons import Problem
from consentbox.core.session import SessionMachine
from consentbox.sim.script import EndStep, FaultStep, ScriptFault, Step
from consentbox.box.timeline import command_entry, state_entry

#: What each scripted fault looks like to the session machine when no hardware is simulated.
FAULT_PROBLEMS = {
    ScriptFault.CARD_REMOVE: Problem.CARD_LOST,
    ScriptFault.CARD_FULL: Problem.CARD_FULL,
    ScriptFault.AUDIO_LOST: Problem.AUDIO_LOST,
}


def run_scenario(
    machine: SessionMachine,
    steps: Iterable[Step],
    *,
    new_session_id: Callable[[], str] = lambda: secrets.token_hex(8),
) -> list[dict[str, Any]]:
    """Run `steps` (in time order) to the end, which is an `end` step or else the last step."""
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
            feed(Fault(FAULT_PROBLEMS[step.fault], step.at))
        else:
            feed(step)
    feed(Shutdown(last))
    return timeline
