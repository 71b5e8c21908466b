"""The transition table is well formed and every row has a handler."""

from __future__ import annotations

import pytest

from consentbox.core.session import SessionMachine
from consentbox.core.table import ROWS, TRANSITIONS, Gesture, State


def test_one_row_per_state_and_gesture():
    assert len(ROWS) == len(TRANSITIONS)


@pytest.mark.fresh_clone
def test_every_row_names_an_existing_handler():
    for row in TRANSITIONS:
        assert callable(getattr(SessionMachine, "_" + row.action, None)), row


def test_every_state_is_reachable_and_left():
    targets = {outcome.target for row in TRANSITIONS for outcome in row.outcomes}
    sources = {row.source for row in TRANSITIONS}
    assert targets == sources == set(State)


def test_every_gesture_is_used():
    assert {row.gesture for row in TRANSITIONS} == set(Gesture)
