"""Outputs of the session machine: what the shell must do, in the order given.

Order matters: on starting, `RecLed(True)` comes before `OpenCapture`; on stopping, `CloseCapture`
comes before `RecLed(False)`, so the REC LED is never off while audio is captured.
"""

from __future__ import annotations

from dataclasses import dataclass

from consentbox.core.feedback import Colour, Pattern, Tone
from consentbox.core.reasons import EndReason, Problem, Refusal


@dataclass(frozen=True)
class RecLed:
    """Turn the red REC LED on or off."""

    on: bool


@dataclass(frozen=True)
class OpenCapture:
    """Open the audio device and start writing encrypted audio."""


@dataclass(frozen=True)
class CloseCapture:
    """Stop capturing and close the audio device; everything captured so far is sealed and kept."""


@dataclass(frozen=True)
class ShowStatus:
    """Show a steady STATUS LED pattern until the next one."""

    pattern: Pattern


@dataclass(frozen=True)
class Flash:
    """Flash the STATUS LED `count` times, then return to the steady pattern."""

    colour: Colour
    count: int = 1


@dataclass(frozen=True)
class PlayTone:
    """Sound a buzzer cue (ignored when the panel has no buzzer)."""

    tone: Tone


@dataclass(frozen=True)
class OpenSession:
    """A session set-up begins, expecting `headcount` parties."""

    headcount: int


@dataclass(frozen=True)
class SetHeadcount:
    """The therapist changed the expected number of parties."""

    headcount: int


@dataclass(frozen=True)
class RecordConsent:
    """The party at `seat` consented (with a shared button, `seat` is the party's number)."""

    seat: int


@dataclass(frozen=True)
class RecordWithdrawal:
    """A party withdrew consent by holding the CONSENT button of `seat`; None with a shared button,
    which cannot tell who holds it."""

    seat: int | None


@dataclass(frozen=True)
class Refuse:
    """A gesture was refused; nothing was started."""

    reason: Refusal | Problem


@dataclass(frozen=True)
class EndSession:
    """The session is over: finalise its recording (`keep`) or destroy it. Consents are forgotten."""

    reason: EndReason
    keep: bool


Command = (
    RecLed | OpenCapture | CloseCapture | ShowStatus | Flash | PlayTone
    | OpenSession | SetHeadcount | RecordConsent | RecordWithdrawal | Refuse | EndSession
)
