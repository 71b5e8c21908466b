"""The ports: what the box needs of its hardware, as interfaces in the standard library only.

The adapters beside this module (`gpio`, `alsa`, `card`) implement them on gpiozero, ALSA and a
directory; the simulation and the test doubles implement them too. Importing this module loads no
hardware library, so the core's tests and the workstation tool never do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from consentbox.core.commands import Flash, PlayTone, RecLed, SeatLights, ShowStatus
from consentbox.core.reasons import Problem

PanelCommand = RecLed | ShowStatus | SeatLights | Flash | PlayTone


class StatusLeds(enum.Enum):
    """How the STATUS LED is built."""

    RGB = "rgb"  # one RGB LED: pins are red, green, blue
    THREE = "three"  # three LEDs: pins are green, amber, red


@dataclass(frozen=True)
class PanelConfig:
    """Which GPIO pins the front panel uses, and how."""

    pin_factory: str
    record_pin: str
    consent_pins: tuple[str, ...]
    seat_led_pins: tuple[str, ...]  # the LED beside each CONSENT button, in the same order; () if none is wired
    shared_consent: bool
    pull_up: bool
    bounce_time: float
    rec_led_pin: str
    status_leds: StatusLeds
    status_pins: tuple[str, str, str]
    buzzer_pin: str

    @property
    def seats(self) -> int:
        """How many consent seats the panel has (1 with a shared button)."""
        return 1 if self.shared_consent else len(self.consent_pins)

    @property
    def seat_leds(self) -> tuple[str, ...]:
        """The pins of the seat LEDs the panel drives: one per seat, or none."""
        return self.seat_led_pins[:self.seats]


class Panel(Protocol):
    """What the box needs of a front panel: show the machine's panel commands, and close."""

    def show(self, command: PanelCommand) -> None:
        """Render one LED (REC, STATUS, seats), flash or tone command."""

    def show_level(self, dbfs: float | None) -> None:
        """Let the STATUS LED flicker with the input level, `dbfs` the latest period's peak, in place of its
        steady pattern; None: the steady pattern again (core/level.py says when it is lit)."""

    def close(self) -> None:
        """Release the pins."""


class AudioSource(Protocol):
    """What the box needs of a microphone: open, read whole periods, close."""

    @property
    def overruns(self) -> int:
        """How many overruns (lost audio the source recovered from) there were since the last open()."""

    def open(self) -> None:
        """Start capturing (afresh if already open); AudioUnavailable if the device cannot be opened."""

    def read(self) -> bytes:
        """Block until a period is captured; return its period_frames * frame_bytes bytes. AudioLost on failure."""

    def close(self) -> None:
        """Stop capturing and drop any audio held; closing a closed source does nothing."""


#: Problems that make a card take no writes at all: an empty mount point is not the card (the root
#: file system would fill), a read-only or failing card takes nothing, and a card of the wrong format
#: is refused whole, not half-used. A full card is not among them: a small write (a ledger entry, a
#: wipe's truncation) may still fit.
UNUSABLE = frozenset({Problem.NO_CARD, Problem.CARD_READ_ONLY, Problem.CARD_WRITE_ERROR, Problem.CARD_WRONG_FORMAT})


class Card(Protocol):
    """Where sessions are written, and what keeps the box from writing one there."""

    @property
    def path(self) -> Path:
        """The directory that session files go into."""
        ...

    def problems(self) -> frozenset[Problem]:
        """Why a session cannot be recorded on the card now; empty when it can."""
        ...


class Clock(Protocol):
    """Monotonic seconds since start, and the two ways time passes for the box."""

    def now(self) -> float:
        """Seconds since the box started."""

    def sleep_until(self, moment: float) -> None:
        """Wait until `moment`, or until `wake()` is called, whichever comes first."""

    def wake(self) -> None:
        """Cut a `sleep_until` short: an event has arrived."""

    def pace(self, seconds: float) -> None:
        """Account for `seconds` of audio captured; a clock that runs ahead of real time waits here."""
