"""The session's transition table: every state, every gesture, and what each gesture may lead to.

This is the one place the front panel's rules live (docs/product.md, "Front panel"). `SessionMachine` dispatches on it
and checks at run time that a handler only reaches the targets its row declares; docs/session.md is
drawn from it by `consentbox.core.diagram`, so the picture cannot drift from the code.
A gesture with no row in a state is ignored there (a consent tap while recording, say).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.Enum):
    """Where the box is in a session's life."""

    IDLE = "IDLE"
    COLLECTING = "COLLECTING"
    READY = "READY"
    RECORDING = "RECORDING"
    PAUSED = "PAUSED"
    WITHDRAWN = "WITHDRAWN"


#: States in which a session exists (set up, possibly recorded); consents belong to it.
SESSION_STATES = frozenset({State.COLLECTING, State.READY, State.RECORDING, State.PAUSED})


class Gesture(enum.Enum):
    """What the session machine reacts to, recognised from button edges and the passing of time."""

    TAP_RECORD = "tap RECORD"
    HOLD_RECORD = "hold RECORD ≥ record_hold"
    LONG_HOLD_RECORD = "hold RECORD ≥ end_hold"
    TAP_CONSENT = "tap CONSENT"
    HOLD_CONSENT = "hold CONSENT ≥ withdraw_hold"
    CONSENT_TIMEOUT = "no activity for consent_timeout"
    PAUSE_TIMEOUT = "paused for pause_timeout"
    SESSION_LIMIT = "recorded for max_session"
    NOTICE_TIMEOUT = "notice_timeout passed"
    FAULT = "fault"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class Outcome:
    """One possible result of a row: the target state and when it is reached."""

    target: State
    when: str = ""


@dataclass(frozen=True)
class Row:
    """In `source`, `gesture` runs the machine's handler named `action`, which reaches one of `outcomes`."""

    source: State
    gesture: Gesture
    action: str
    outcomes: tuple[Outcome, ...]


def _rows(sources: tuple[State, ...], gesture: Gesture, action: str, *outcomes: Outcome) -> list[Row]:
    return [Row(source, gesture, action, outcomes) for source in sources]


_REFUSED_NOT_READY = "box not ready: refused"

TRANSITIONS: tuple[Row, ...] = tuple(
    _rows((State.IDLE,), Gesture.TAP_RECORD, "open_setup",
          Outcome(State.COLLECTING, "box ready; headcount = default_parties"),
          Outcome(State.IDLE, _REFUSED_NOT_READY))
    + _rows((State.WITHDRAWN,), Gesture.TAP_RECORD, "open_setup",
            Outcome(State.COLLECTING, "box ready; headcount = default_parties"),
            Outcome(State.WITHDRAWN, _REFUSED_NOT_READY))
    + _rows((State.COLLECTING,), Gesture.TAP_RECORD, "add_party",
            Outcome(State.COLLECTING, "no consent yet: headcount + 1; else refused"))
    + _rows((State.COLLECTING,), Gesture.TAP_CONSENT, "consent",
            Outcome(State.COLLECTING, "a new seat consents"),
            Outcome(State.READY, "consents == headcount"))
    + _rows((State.COLLECTING,), Gesture.HOLD_RECORD, "refuse_unconsented",
            Outcome(State.COLLECTING, "not everyone consented: refused"))
    + _rows((State.READY,), Gesture.HOLD_RECORD, "start_capture",
            Outcome(State.RECORDING, "box ready: REC LED on, then capture"),
            Outcome(State.READY, _REFUSED_NOT_READY))
    + _rows((State.RECORDING,), Gesture.TAP_RECORD, "pause",
            Outcome(State.PAUSED, "capture off, then REC LED off"))
    + _rows((State.PAUSED,), Gesture.TAP_RECORD, "start_capture",
            Outcome(State.RECORDING, "box ready: REC LED on, then capture"),
            Outcome(State.PAUSED, _REFUSED_NOT_READY))
    + _rows((State.RECORDING, State.PAUSED), Gesture.LONG_HOLD_RECORD, "end",
            Outcome(State.IDLE, "session ends, files finalised"))
    + _rows((State.COLLECTING, State.READY, State.RECORDING, State.PAUSED), Gesture.HOLD_CONSENT, "withdraw",
            Outcome(State.WITHDRAWN, "capture stops at once; audio destroyed (or kept, marked)"))
    + _rows((State.COLLECTING, State.READY), Gesture.CONSENT_TIMEOUT, "time_out_setup",
            Outcome(State.IDLE, "set-up cancelled"))
    + _rows((State.PAUSED,), Gesture.PAUSE_TIMEOUT, "end_on_timeout",
            Outcome(State.IDLE, "session ends"))
    + _rows((State.RECORDING,), Gesture.SESSION_LIMIT, "end_on_timeout",
            Outcome(State.IDLE, "session ends"))
    + _rows((State.RECORDING, State.PAUSED), Gesture.FAULT, "end_on_fault",
            Outcome(State.IDLE, "capture stops, what was written is kept"))
    + _rows((State.WITHDRAWN,), Gesture.NOTICE_TIMEOUT, "clear_notice",
            Outcome(State.IDLE))
    + _rows((State.COLLECTING, State.READY, State.RECORDING, State.PAUSED, State.WITHDRAWN),
            Gesture.SHUTDOWN, "shut_down",
            Outcome(State.IDLE, "what is open is finalised"))
)

ROWS: dict[tuple[State, Gesture], Row] = {(row.source, row.gesture): row for row in TRANSITIONS}
