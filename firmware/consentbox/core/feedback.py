"""What the STATUS LED and the buzzer say, decided in one pure place.

The panel adapter only renders these values; the meaning of every colour and blink lives here so that
docs/status-codes.md and the code cannot disagree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from consentbox.core.reasons import Problem, worst
from consentbox.core.table import State


class Colour(enum.Enum):
    """A STATUS LED colour (an RGB LED, or one of three single-colour LEDs)."""

    OFF = "off"
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


class Rhythm(enum.Enum):
    """How the STATUS LED shows its colour."""

    STEADY = "steady"
    SLOW = "slow blink"  # 1 Hz
    FAST = "fast blink"  # 4 Hz
    CODE = "code"  # `count` short blinks, a pause, repeat


@dataclass(frozen=True)
class Pattern:
    """A steady STATUS LED pattern, shown until the next one."""

    colour: Colour
    rhythm: Rhythm
    count: int = 0


class Tone(enum.Enum):
    """Buzzer cues, so the panel is usable without looking at it."""

    ACK = "ack"  # short high beep: a press counted
    ALL_CONSENTED = "all consented"  # rising triple
    REFUSED = "refused"  # low buzz
    START = "start"  # rising pair
    PAUSE = "pause"  # single mid beep
    END = "end"  # falling pair
    WITHDRAWN = "withdrawn"  # falling triple: the session's audio is destroyed
    WITHDRAWN_KEPT = "withdrawn, kept"  # falling pair, then a long low note: kept, marked withdrawn
    FAULT = "fault"  # long low buzz
    HOLD_TO_WITHDRAW = "hold to withdraw"  # two soft low beeps: a CONSENT press heard; keep holding to withdraw
    HOLD_LONGER = "hold longer"  # one soft low beep: a press longer than a tap completed nothing
    REMINDER = "reminder"  # one soft beep while recording, every cue_every minutes
    SILENCE = "silence"  # three short low beeps: the microphone hears nothing, recording goes on


def status_pattern(state: State, problems: frozenset[Problem], awaiting: int, *, withdrawal_kept: bool = False
                   ) -> Pattern:
    """The steady STATUS pattern for a state; `awaiting` is how many consents are still missing, and
    `withdrawal_kept` whether the last withdrawal kept the audio (marked) rather than destroying it."""
    if state is State.IDLE:
        if problems:
            return Pattern(Colour.RED, Rhythm.CODE, worst(problems).code)
        return Pattern(Colour.GREEN, Rhythm.STEADY)
    if state is State.COLLECTING:
        return Pattern(Colour.AMBER, Rhythm.CODE, awaiting)
    if state is State.WITHDRAWN and withdrawal_kept:
        return Pattern(Colour.AMBER, Rhythm.SLOW)
    return _STATE_PATTERNS[state]


#: While recording, when the microphone has heard nothing for `silence_alert`: amber code 11 (recording goes on).
SILENT = Pattern(Colour.AMBER, Rhythm.CODE, Problem.MICROPHONE_SILENT.code)

_STATE_PATTERNS = {
    State.READY: Pattern(Colour.GREEN, Rhythm.FAST),
    State.RECORDING: Pattern(Colour.GREEN, Rhythm.SLOW),
    State.PAUSED: Pattern(Colour.AMBER, Rhythm.STEADY),
    State.WITHDRAWN: Pattern(Colour.RED, Rhythm.SLOW),
}
