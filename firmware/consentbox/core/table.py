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
    """What the session machine reacts to, recognised from button edges and the passing of time.

    A tap is a press released before `record_hold`, for every button; a hold fires when its threshold passes
    while the button is still down. A press that completes no gesture does nothing (see `SessionMachine`).
    """

    TAP_RECORD = "tap RECORD"
    HOLD_RECORD = "hold RECORD ≥ record_hold"
    LONG_HOLD_RECORD = "hold RECORD ≥ end_hold"
    PRESS_CONSENT = "press CONSENT"
    TAP_CONSENT = "tap CONSENT"
    HOLD_CONSENT = "hold CONSENT ≥ withdraw_hold"
    CONSENT_TIMEOUT = "no activity for consent_timeout"
    PAUSE_TIMEOUT = "paused for pause_timeout"
    SESSION_LIMIT = "recorded for max_session"
    CUE_DUE = "recording for cue_every"
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
    """In `source`, `gesture` runs the machine's handler named `action`, which reaches one of `outcomes`.

    A `cue` row answers a press without completing it: the same press can still complete a later gesture
    (the refusal at record_hold in COLLECTING, then the end_hold that lowers the headcount).
    """

    source: State
    gesture: Gesture
    action: str
    outcomes: tuple[Outcome, ...]
    cue: bool = False


def _rows(sources: tuple[State, ...], gesture: Gesture, action: str, *outcomes: Outcome,
          cue: bool = False) -> list[Row]:
    return [Row(source, gesture, action, outcomes, cue) for source in sources]


_REFUSED_NOT_READY = "box not ready: refused"
_SET_UP = (State.COLLECTING, State.READY)
_CONSENTED = (State.READY, State.RECORDING, State.PAUSED)
_RECORDED = (State.RECORDING, State.PAUSED)

TRANSITIONS: tuple[Row, ...] = tuple(
    _rows((State.IDLE,), Gesture.TAP_RECORD, "open_setup",
          Outcome(State.COLLECTING, "box ready; headcount = default_parties"),
          Outcome(State.IDLE, _REFUSED_NOT_READY))
    + _rows((State.WITHDRAWN,), Gesture.TAP_RECORD, "open_setup",
            Outcome(State.COLLECTING, "box ready; headcount = default_parties"),
            Outcome(State.WITHDRAWN, _REFUSED_NOT_READY))
    + _rows((State.IDLE,), Gesture.PRESS_CONSENT, "offer_withdrawal",
            Outcome(State.IDLE, "a seat that consented to the last session, within withdraw_window: hold to withdraw"),
            cue=True)
    + _rows((State.IDLE,), Gesture.HOLD_CONSENT, "withdraw_finished",
            Outcome(State.WITHDRAWN, "that session destroyed (or kept, marked)"))
    + _rows((State.COLLECTING,), Gesture.TAP_RECORD, "add_party",
            Outcome(State.COLLECTING, "no consent yet: headcount + 1; else refused"))
    + _rows((State.COLLECTING,), Gesture.PRESS_CONSENT, "consent",
            Outcome(State.COLLECTING, "a new seat consents, however long the press"),
            Outcome(State.READY, "consents == headcount"))
    + _rows((State.COLLECTING,), Gesture.HOLD_RECORD, "refuse_unconsented",
            Outcome(State.COLLECTING, "refused: the missing seats blink"), cue=True)
    + _rows((State.COLLECTING,), Gesture.LONG_HOLD_RECORD, "lower_or_cancel",
            Outcome(State.READY, "someone consented: headcount = consents"),
            Outcome(State.IDLE, "nobody consented: set-up cancelled"))
    + _rows((State.READY,), Gesture.TAP_RECORD, "cancel_setup",
            Outcome(State.IDLE, "set-up cancelled"))
    + _rows((State.READY,), Gesture.HOLD_RECORD, "start_capture",
            Outcome(State.RECORDING, "box ready: REC LED on, then capture"),
            Outcome(State.READY, _REFUSED_NOT_READY))
    + _rows((State.READY,), Gesture.PRESS_CONSENT, "warn_withdrawal",
            Outcome(State.READY, "hold to withdraw"), cue=True)
    + _rows((State.RECORDING,), Gesture.PRESS_CONSENT, "warn_withdrawal",
            Outcome(State.RECORDING, "hold to withdraw; audio held back from the press"), cue=True)
    + _rows((State.PAUSED,), Gesture.PRESS_CONSENT, "warn_withdrawal",
            Outcome(State.PAUSED, "a seat that consented: hold to withdraw"), cue=True)
    + _rows((State.RECORDING,), Gesture.TAP_RECORD, "pause",
            Outcome(State.PAUSED, "capture off, then REC LED off"))
    + _rows((State.PAUSED,), Gesture.TAP_RECORD, "start_capture",
            Outcome(State.RECORDING, "box ready: REC LED on, then capture"),
            Outcome(State.PAUSED, _REFUSED_NOT_READY))
    + _rows((State.PAUSED,), Gesture.TAP_CONSENT, "join",
            Outcome(State.PAUSED, "a seat that has not consented: headcount + 1, it consents"))
    + _rows(_RECORDED, Gesture.LONG_HOLD_RECORD, "end",
            Outcome(State.IDLE, "session ends, files finalised"))
    + _rows(_CONSENTED, Gesture.HOLD_CONSENT, "withdraw",
            Outcome(State.WITHDRAWN, "capture stops at once; audio since the press began dropped; "
                                     "the rest destroyed (or kept, marked)"))
    + _rows(_SET_UP, Gesture.CONSENT_TIMEOUT, "time_out_setup",
            Outcome(State.IDLE, "set-up cancelled"))
    + _rows((State.PAUSED,), Gesture.PAUSE_TIMEOUT, "end_on_timeout",
            Outcome(State.IDLE, "session ends"))
    + _rows((State.RECORDING,), Gesture.SESSION_LIMIT, "end_on_timeout",
            Outcome(State.IDLE, "session ends"))
    + _rows((State.RECORDING,), Gesture.CUE_DUE, "remind",
            Outcome(State.RECORDING, "a soft reminder tone"))
    + _rows(_RECORDED, Gesture.FAULT, "end_on_fault",
            Outcome(State.IDLE, "capture stops, what was written is kept"))
    + _rows((State.WITHDRAWN,), Gesture.NOTICE_TIMEOUT, "clear_notice",
            Outcome(State.IDLE))
    + _rows((*_SET_UP, *_RECORDED, State.WITHDRAWN), Gesture.SHUTDOWN, "shut_down",
            Outcome(State.IDLE, "what is open is finalised"))
)

ROWS: dict[tuple[State, Gesture], Row] = {(row.source, row.gesture): row for row in TRANSITIONS}
