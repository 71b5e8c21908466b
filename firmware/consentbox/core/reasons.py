"""Why the box is not ready, why a gesture was refused, and why a session ended.

Each `Problem` has a fixed blink code: the STATUS LED blinks red that many times, and
docs/status-codes.md lists them. The numbers are part of the product: never renumber one.
"""

from __future__ import annotations

import enum


class Problem(enum.Enum):
    """A reason the box cannot record, with its STATUS blink code and its words."""

    NO_CARD = (1, "no card")
    CARD_READ_ONLY = (2, "card read-only")
    CARD_FULL = (3, "card full")
    CARD_LOST = (4, "card lost")
    CARD_WRITE_ERROR = (5, "card write error")
    NOT_PROVISIONED = (6, "not provisioned")
    NO_AUDIO_DEVICE = (7, "no audio device")
    AUDIO_LOST = (8, "audio lost")
    CLOCK_UNTRUSTED = (9, "clock untrusted")
    #: A card mounted with a file system the box was not set up for (an ext4 or NTFS card): never written to.
    CARD_WRONG_FORMAT = (10, "card wrong format")
    #: While recording, the microphone heard nothing for `silence_alert` seconds: shown in amber, recording
    #: goes on. Never a reason the box cannot record, and not among FAULTS.
    MICROPHONE_SILENT = (11, "microphone silent")
    # 12 is taken: no pin driver (core.errors.PinDriverMissing), only ever written out, since no LED can show it.

    def __init__(self, code: int, text: str) -> None:
        self.code = code
        self.text = text


#: Problems that can stop a recording in progress (the rest are only found before a session starts).
#: NO_AUDIO_DEVICE is one because the device is opened only once everyone has consented.
FAULTS = frozenset(
    {Problem.CARD_FULL, Problem.CARD_LOST, Problem.CARD_WRITE_ERROR, Problem.NO_AUDIO_DEVICE, Problem.AUDIO_LOST}
)


#: Problems of the card itself, as its readiness check reports them.
CARD_PROBLEMS = frozenset({Problem.NO_CARD, Problem.CARD_READ_ONLY, Problem.CARD_FULL, Problem.CARD_LOST,
                           Problem.CARD_WRITE_ERROR, Problem.CARD_WRONG_FORMAT})

#: Faults of the microphone: after one stops a recording it stands for `notice_timeout`, then the next session
#: tries the device again.
AUDIO_FAULTS = frozenset({Problem.AUDIO_LOST, Problem.NO_AUDIO_DEVICE})


def worst(problems: frozenset[Problem]) -> Problem:
    """The problem the STATUS LED shows when there are several: the lowest code, so the card's own problems
    (fixed at the panel) before those for IT or the microphone (docs/status-codes.md)."""
    return min(problems, key=lambda p: p.code)


class Refusal(enum.Enum):
    """Why a gesture was refused while the box itself is ready, with the code flashed in amber."""

    NOT_EVERYONE_CONSENTED = "not everyone has consented"
    TOO_MANY_PARTIES = "no more parties than consent seats"
    HEADCOUNT_FIXED = "consent has begun: the headcount is fixed"

    @property
    def text(self) -> str:
        """The words shown for this refusal (as `Problem.text`)."""
        return self.value

    @property
    def code(self) -> int:
        """The number of amber flashes that says which refusal it was (docs/status-codes.md)."""
        return list(Refusal).index(self) + 1


class EndReason(enum.Enum):
    """Why a session (set-up or recording) ended."""

    ENDED = "ended"
    WITHDRAWN = "withdrawn"
    CONSENT_TIMEOUT = "consent timeout"
    PAUSE_TIMEOUT = "pause timeout"
    MAX_SESSION = "max session"
    CARD_FULL = "card full"
    CARD_LOST = "card lost"
    CARD_WRITE_ERROR = "card write error"
    NO_AUDIO_DEVICE = "no audio device"
    AUDIO_LOST = "audio lost"
    SHUTDOWN = "shutdown"
    #: The therapist cancelled the set-up before recording began (nobody withdrew).
    CANCELLED = "cancelled"
    #: Written only by the box's start-up recovery: the box stopped (power cut, crash) mid-session.
    INTERRUPTED = "interrupted"

    @classmethod
    def for_fault(cls, fault: Problem) -> EndReason:
        """The end reason of a session stopped by `fault` (one of `FAULTS`)."""
        return cls[fault.name]
