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
    """Open the audio device and start writing encrypted audio: the session's first interval, or, with
    `resume`, a new one after a pause."""

    resume: bool = False


@dataclass(frozen=True)
class CloseCapture:
    """Stop capturing and close the audio device. What was written is sealed and kept; audio still held
    back (`HoldBackAudio`) is discarded, never written. With `pause`, the session goes on paused."""

    pause: bool = False


@dataclass(frozen=True)
class HoldBackAudio:
    """A CONSENT button went down while capturing: keep the audio captured from now on in memory, unwritten,
    until `WriteHeldAudio` (the press ended without a withdrawal) or `CloseCapture` (discarded)."""


@dataclass(frozen=True)
class WriteHeldAudio:
    """The CONSENT presses that held audio back ended without a withdrawal: write what was held, and go on."""


@dataclass(frozen=True)
class ShowStatus:
    """Show a steady STATUS LED pattern until the next one."""

    pattern: Pattern


@dataclass(frozen=True)
class SeatLights:
    """Light each seat's CONSENT LED: `lit` while that seat's consent holds, `blinking` for seats whose
    consent is missing when RECORD was held too early. Seats in neither are dark."""

    lit: frozenset[int] = frozenset()
    blinking: frozenset[int] = frozenset()


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
class WithdrawFinished:
    """A party withdrew consent from the session that ended last, within `withdraw_window`: record the
    withdrawal under that session and, unless `keep`, destroy its files (cause `withdrawn`)."""

    seat: int | None
    keep: bool


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
    RecLed | OpenCapture | CloseCapture | HoldBackAudio | WriteHeldAudio | ShowStatus | SeatLights | Flash
    | PlayTone | OpenSession | SetHeadcount | RecordConsent | RecordWithdrawal | WithdrawFinished | Refuse
    | EndSession
)
