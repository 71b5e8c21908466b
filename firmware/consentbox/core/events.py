"""Inputs to the session machine. Every event carries `at`: seconds on the shell's monotonic clock.

The core never reads a clock; time moves only when an event says so. `Tick` exists only to move it.
"""

from __future__ import annotations

from dataclasses import dataclass

from consentbox.core.reasons import Problem


@dataclass(frozen=True)
class RecordButton:
    """The therapist's RECORD button."""

    def __str__(self) -> str:
        return "record"


@dataclass(frozen=True)
class ConsentButton:
    """A CONSENT button. Seats are numbered from 1; with one shared button it is seat 1."""

    seat: int

    def __str__(self) -> str:
        return f"consent {self.seat}"


Button = RecordButton | ConsentButton
RECORD = RecordButton()


@dataclass(frozen=True)
class Pressed:
    """A button went down (after the hardware layer's debouncing)."""

    button: Button
    at: float


@dataclass(frozen=True)
class Released:
    """A button came up."""

    button: Button
    at: float


@dataclass(frozen=True)
class Tick:
    """Time has advanced to `at`; hold thresholds and timeouts up to then take effect."""

    at: float


@dataclass(frozen=True)
class ReadinessChanged:
    """The shell's latest readiness check: the complete set of problems its adapters see now (empty: ready).
    The machine adds the faults that stand after stopping a recording (see `SessionMachine.problems`)."""

    problems: frozenset[Problem]
    at: float


@dataclass(frozen=True)
class Fault:
    """A fault hit the recording (card pulled or full, write error, audio device lost). `card` is what the
    card's own readiness check says at that moment: a card fault stands for as long as the card still
    looks like that (until it is changed or fixed)."""

    problem: Problem
    at: float
    card: frozenset[Problem] = frozenset()


@dataclass(frozen=True)
class Shutdown:
    """The box is stopping: end whatever is open, keeping what was recorded."""

    at: float


Event = Pressed | Released | Tick | ReadinessChanged | Fault | Shutdown
