"""Scenario scripts: timed button presses and faults, for `consentbox simulate`, tests and training.

One step a line, times in seconds from the start, `#` starts a comment:

    <t> tap record | tap consent <seat>            press at t, release at t + 0.1
    <t> hold record <s> | hold consent <seat> <s>  press at t, release at t + s
    <t> press <button> | release <button>          button = record | consent <seat>
    <t> card remove | card full | audio lost       faults
    <t> usb <DIR>                                  a USB stick holding DIR's files is inserted (a path
                                                   without spaces, relative to the script's directory)
    <t> advance <n>d | <n>h | <n>m                 the simulated clock jumps on n days, hours or minutes
                                                   (n whole); the steps after it come that much later
    <t> end                                        stop: finalise what is open, as on shutdown

Parsing turns each line into button edges or a fault, sorted by time (stable for equal times).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from consentbox.core.errors import ConsentBoxError
from consentbox.core.events import RECORD, Button, ConsentButton, Pressed, Released
from consentbox.core.reasons import Problem

TAP_SECONDS = 0.1


class ScriptError(ConsentBoxError, ValueError):
    """A scenario script line that cannot be understood, or that the player it is given cannot carry out;
    the message names the line."""


class ScriptFault(enum.Enum):
    """Faults a script can inject into the simulated hardware."""

    CARD_REMOVE = "card remove"
    CARD_FULL = "card full"
    AUDIO_LOST = "audio lost"

    @property
    def problem(self) -> Problem:
        """What the box is told when this fault happens."""
        return _FAULT_PROBLEMS[self]


_FAULT_PROBLEMS = {
    ScriptFault.CARD_REMOVE: Problem.CARD_LOST,
    ScriptFault.CARD_FULL: Problem.CARD_FULL,
    ScriptFault.AUDIO_LOST: Problem.AUDIO_LOST,
}


@dataclass(frozen=True)
class FaultStep:
    """Inject `fault` at `at`."""

    fault: ScriptFault
    at: float


@dataclass(frozen=True)
class UsbStep:
    """Insert a provisioning stick whose files are those of directory `path` at `at`; from script line `line`."""

    path: str
    at: float
    line: int  # so a runner that cannot insert a stick can say which line asked it to


@dataclass(frozen=True)
class AdvanceStep:
    """Move the simulated clock on by `seconds` at `at` (script time); from script line `line`."""

    seconds: int
    at: float
    line: int  # so a player that cannot advance the clock, or not then, can say which line asked it to


@dataclass(frozen=True)
class EndStep:
    """Stop the run at `at`, finalising whatever is open."""

    at: float


Step = Pressed | Released | FaultStep | UsbStep | AdvanceStep | EndStep


def parse_script(text: str, *, source: str = "script") -> list[Step]:
    """Parse a scenario script into steps in time order; a bad line raises `ScriptError`."""
    steps: list[Step] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        try:
            steps.extend(_parse_line(words, number))
        except ScriptError as error:
            raise ScriptError(f"{source} line {number}: {error} in {raw.strip()!r}") from None
    return sorted(steps, key=lambda step: step.at)


def _parse_line(words: list[str], number: int) -> list[Step]:
    at = _seconds(words[0], "time")
    verb, rest = (words[1] if len(words) > 1 else ""), words[2:]
    if verb == "tap":
        button, rest = _button(rest)
        _no_more(rest)
        return [Pressed(button, at), Released(button, at + TAP_SECONDS)]
    if verb == "hold":
        button, rest = _button(rest)
        if len(rest) != 1:
            raise ScriptError("hold needs a duration in seconds")
        return [Pressed(button, at), Released(button, at + _seconds(rest[0], "duration"))]
    if verb in ("press", "release"):
        button, rest = _button(rest)
        _no_more(rest)
        return [Pressed(button, at) if verb == "press" else Released(button, at)]
    if verb == "end":
        _no_more(rest)
        return [EndStep(at)]
    if verb == "usb":
        if len(rest) != 1:
            raise ScriptError("usb needs one directory (a path without spaces)")
        return [UsbStep(rest[0], at, number)]
    if verb == "advance":
        if len(rest) != 1:
            raise ScriptError("advance needs one length: <n>d, <n>h or <n>m")
        return [AdvanceStep(_length(rest[0]), at, number)]
    phrase = " ".join(words[1:])
    for fault in ScriptFault:
        if phrase == fault.value:
            return [FaultStep(fault, at)]
    raise ScriptError(f"unknown step {phrase!r}")


def _button(words: list[str]) -> tuple[Button, list[str]]:
    if words[:1] == ["record"]:
        return RECORD, words[1:]
    if words[:1] == ["consent"] and len(words) >= 2:
        seat = words[1]
        if not seat.isdigit() or int(seat) < 1:
            raise ScriptError(f"seat {seat!r} is not a number from 1")
        return ConsentButton(int(seat)), words[2:]
    raise ScriptError("expected a button: record, or consent <seat>")


def _seconds(word: str, what: str) -> float:
    try:
        value = float(word)
    except ValueError:
        raise ScriptError(f"{what} {word!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ScriptError(f"{what} {word!r} must be zero or more seconds")
    return value


#: The units of an `advance` step, in seconds.
_UNITS = {"d": 86_400, "h": 3_600, "m": 60}
#: The longest one `advance` step may be: the longest retention a policy allows (3650 days).
MAX_ADVANCE_SECONDS = 3650 * 86_400


def _length(word: str) -> int:
    count, unit = word[:-1], word[-1:]
    if unit not in _UNITS or not count.isascii() or not count.isdigit() or int(count) < 1:
        raise ScriptError(f"length {word!r} is not a whole number of days, hours or minutes (31d, 12h, 20m)")
    seconds = int(count) * _UNITS[unit]
    if seconds > MAX_ADVANCE_SECONDS:
        raise ScriptError(f"length {word!r} is more than {MAX_ADVANCE_SECONDS // 86_400} days")
    return seconds


def _no_more(words: list[str]) -> None:
    if words:
        raise ScriptError(f"unexpected {' '.join(words)!r}")
