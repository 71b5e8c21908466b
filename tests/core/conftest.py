"""Fixtures for the session core tests: play a script through a fresh machine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem
from consentbox.core.session import SessionMachine
from consentbox.sim.runner import run_scenario
from consentbox.sim.script import parse_script

Timeline = list[dict[str, Any]]


@pytest.fixture
def play() -> Callable[..., Timeline]:
    """`play(script, policy=…, seats=…, shared=…, problems=…)` returns the timeline of the run."""

    def run(
        script: str,
        *,
        policy: Policy = Policy(),
        seats: int = 3,
        shared: bool = False,
        problems: frozenset[Problem] = frozenset(),
    ) -> Timeline:
        machine = SessionMachine(policy, seats=seats, shared_consent=shared, problems=problems)
        ids = iter(f"session{n}" for n in range(1, 100))
        return run_scenario(machine, parse_script(script), new_session_id=lambda: next(ids))

    return run

