"""What the page shows, sampled from the running box and pushed when it changes.

The LEDs and the buzzer are read from the panel's gpiozero devices (so from their pins) every 20 ms,
never inferred from the timeline: the page shows what a person in the room would see, blinks and all.
The timeline (each entry in words, by `timeline.describe`), the STATUS pattern, what each seat LED
shows (lit, blinking or dark) and the last tone come from the box's report; the status in words from
the machine's state and that pattern; the level from the meter; the card's files from its directory.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

from gpiozero import GPIOZeroError

from consentbox.box.box import Box
from consentbox.box.timeline import describe
from consentbox.core.events import ConsentButton
from consentbox.core.feedback import Colour, Rhythm
from consentbox.core.policy import OnWithdrawal, Policy
from consentbox.core.reasons import Problem
from consentbox.core.table import State
from consentbox.hw.gpio import GpioPanel
from consentbox.sim.web.buttons import button_id
from consentbox.sim.web.level import LevelMeter
from consentbox.storage.card_files import listed_names, look, open_directory

#: How often the pins are read: faster than the shortest blink or beep (50 ms).
SAMPLE_SECONDS = 0.02
#: How often the level meter is read (a period is 21 ms; the eye needs far fewer).
LEVEL_SECONDS = 0.1
#: How often the card's directory is listed.
CARD_SECONDS = 0.5
#: The most files of the card the panel lists.
CARD_FILES_SHOWN = 1000
#: Timeline entries kept for pages that connect later.
TIMELINE_KEPT = 500

_PROBLEMS = {problem.code: problem for problem in Problem}


class Timeline:
    """The box's report, kept for the page: each entry in words, the STATUS pattern, the seat LEDs, the last
    tone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._count = 0  # entries ever added; the first kept one is number count - len(lines)
        self.pattern: dict[str, Any] | None = None  # the latest `status` entry
        self.seats: dict[str, Any] | None = None  # the latest `seats` entry
        self.tone: dict[str, Any] | None = None  # the latest `tone` entry

    def add(self, entry: dict[str, Any]) -> None:
        """Keep one timeline entry (the box's report callback)."""
        with self._lock:
            self._lines.append(describe(entry))
            del self._lines[:-TIMELINE_KEPT]
            self._count += 1
            if entry["event"] == "status":
                self.pattern = entry
            elif entry["event"] == "seats":
                self.seats = entry
            elif entry["event"] == "tone":
                self.tone = entry

    @property
    def count(self) -> int:
        """How many entries were ever added."""
        return self._count

    def since(self, seen: int) -> tuple[list[str], int]:
        """The lines after the first `seen` (those still kept), and the new count."""
        with self._lock:
            kept_from = self._count - len(self._lines)
            return self._lines[max(0, seen - kept_from):], self._count


def status_words(state: State, pattern: dict[str, Any] | None, policy: Policy) -> str:
    """What the STATUS LED is saying, in words (docs/status-codes.md)."""
    count = pattern["count"] if pattern else 0
    if state is State.IDLE:
        if pattern and pattern["colour"] == Colour.RED.value and pattern["rhythm"] == Rhythm.CODE.value:
            problem = _PROBLEMS.get(count)
            return f"cannot record: code {count}, {problem.text if problem else 'unknown'}"
        return "ready: tap RECORD to set up a session"
    if state is State.COLLECTING:
        return (f"setting up: {count} consent{'' if count == 1 else 's'} still missing"
                " (tap RECORD before the first consent to add a party; hold it"
                f" {policy.end_hold:g} s to lower the headcount to the consents so far, or with none to cancel)")
    if state is State.READY:
        return f"everyone has consented: hold RECORD {policy.record_hold:g} s to record, tap it to cancel set-up"
    if state is State.RECORDING:
        if pattern and pattern["colour"] == Colour.AMBER.value and pattern["rhythm"] == Rhythm.CODE.value:
            return (f"recording, but the microphone hears nothing (code {count}): check it; recording goes on,"
                    " and the alert ends when it hears sound")
        return f"recording: tap RECORD to pause, hold it {policy.end_hold:g} s to end the session"
    if state is State.PAUSED:
        return (f"paused: tap RECORD to resume, hold it {policy.end_hold:g} s to end the session; a late arrival"
                " taps a CONSENT button that has not consented")
    kept = "kept, marked withdrawn" if policy.on_withdrawal is OnWithdrawal.KEEP else "destroyed"
    return f"consent withdrawn: capture stopped, the session's audio {kept}"


def seat_patterns(entry: dict[str, Any] | None, seats: int) -> dict[str, str]:
    """What each of the first `seats` seat LEDs shows by the latest `seats` entry (docs/status-codes.md),
    by its CONSENT button's name on the page: `lit`, `blinking` (it blinks even if also lit) or `dark`."""
    lit = set(entry["lit"]) if entry else set()
    blinking = set(entry["blinking"]) if entry else set()
    return {button_id(ConsentButton(seat)): "blinking" if seat in blinking else "lit" if seat in lit else "dark"
            for seat in range(1, seats + 1)}


def status_colours(panel: GpioPanel) -> dict[tuple[int, ...], str]:
    """Which STATUS pin levels mean which colour, as the panel itself drives them."""
    return {panel.levels(colour): colour.value for colour in Colour}


def read_lights(panel: GpioPanel, colours: dict[tuple[int, ...], str]) -> dict[str, Any]:
    """The REC LED, the STATUS LED (its pin levels and, by `status_colours`, its colour), the seat LEDs (by
    their CONSENT button's name; none on a panel without them), the buzzer and the buttons, as their pins are
    now."""
    levels = tuple(int(value) for value in panel.status.value)
    seat_leds = () if panel.seat_leds is None else panel.seat_leds
    return {
        "rec": bool(panel.rec_led.value),
        "status": {"colour": colours.get(levels, "mixed"), "levels": list(levels)},
        "seats": {button_id(ConsentButton(seat)): bool(led.value) for seat, led in enumerate(seat_leds, start=1)},
        "buzzer": None if panel.buzzer is None else bool(panel.buzzer.value),
        "buttons": {button_id(button): bool(device.is_pressed) for button, device in panel.buttons.items()},
    }


def card_files(card: Path) -> list[list[Any]] | None:
    """[name, bytes] of each regular file on the card (at most CARD_FILES_SHOWN of them), by name; None when
    there is no card directory. Looked at as the box looks at its card (storage/card_files.py): no link
    is followed, and a card with millions of names costs no more memory than one with a few."""
    try:
        directory = open_directory(card)
    except FileNotFoundError:
        return None
    except OSError:
        return []
    try:
        shown = []
        for name in listed_names(directory, lambda name: not name.startswith("."), limit=CARD_FILES_SHOWN):
            status = look(directory, name)
            if status is not None and stat.S_ISREG(status.st_mode):
                shown.append([name, status.st_size])
        return sorted(shown)
    except OSError:
        return []  # the card failed while it was listed: the next listing shows it
    finally:
        os.close(directory)


class _Settled:
    """A reading taken only once two samples in a row agree. The STATUS LED's pins change one after
    another, so a sample between them could show a colour the LED never showed."""

    def __init__(self, first: Any) -> None:
        self.value = first
        self._last = first

    def update(self, reading: Any) -> Any:
        if reading == self._last:
            self.value = reading
        self._last = reading
        return self.value


class PanelFeed:
    """Samples the box for the page and wakes the pages' event streams when something changed."""

    def __init__(self, box: Box, timeline: Timeline, meter: LevelMeter, card: Path) -> None:
        if not isinstance(box.panel, GpioPanel):
            raise TypeError("the page draws a GpioPanel (on mock pins)")
        self._box = box
        self._panel = box.panel
        self._timeline = timeline
        self._meter = meter
        self._card = card
        self._colours = status_colours(self._panel)
        self._seat_leds = 0 if self._panel.seat_leds is None else len(self._panel.seat_leds)
        self._status_led = _Settled(read_lights(self._panel, self._colours)["status"])
        self._changed = threading.Condition()
        self._version = 0
        self._sections: dict[str, Any] = {}
        self._stopped = False
        self._closing = threading.Event()
        self._sample(level=True, card=True)
        self._thread = threading.Thread(target=self._run, name="panel-feed", daemon=True)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def close(self) -> None:
        """Stop sampling and tell every page the box has stopped."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join()
        self._stop()

    @property
    def panel(self) -> GpioPanel:
        """The panel the feed reads."""
        return self._panel

    @property
    def timeline(self) -> Timeline:
        """The timeline the feed shows."""
        return self._timeline

    def wait(self, seen: int, timeout: float) -> tuple[int, dict[str, Any], bool]:
        """Wait until the version passes `seen` (or `timeout`); return it, the sections, and whether the box stopped."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != seen or self._stopped, timeout)
            return self._version, dict(self._sections), self._stopped

    def _run(self) -> None:
        next_level = next_card = time.monotonic()
        while not self._closing.wait(SAMPLE_SECONDS):
            now = time.monotonic()
            level, card = now >= next_level, now >= next_card
            next_level += LEVEL_SECONDS if level else 0
            next_card += CARD_SECONDS if card else 0
            try:
                self._sample(level=level, card=card)
            except GPIOZeroError:  # the box closed its panel: it has shut down
                break
        self._stop()

    def _sample(self, *, level: bool, card: bool) -> None:
        sections = dict(self._sections)
        lights = read_lights(self._panel, self._colours)
        lights["status"] = self._status_led.update(lights["status"])
        sections["lights"] = lights
        state = self._box.machine.state
        tone = self._timeline.tone
        sections["status"] = {
            "state": state.value,
            "words": status_words(state, self._timeline.pattern, self._box.policy),
            "pattern": _pattern_words(self._timeline.pattern),
            "seats": seat_patterns(self._timeline.seats, self._seat_leds),
            "tone": None if tone is None else {"name": tone["tone"], "t": tone["t"]},
            "timeline": self._timeline.count,
        }
        if level:
            dbfs = self._meter.dbfs
            sections["level"] = {"capturing": dbfs is not None, "dbfs": None if dbfs is None else round(dbfs)}
        if card:
            sections["card"] = {"files": card_files(self._card)}
        if sections != self._sections:
            with self._changed:
                self._sections = sections
                self._version += 1
                self._changed.notify_all()

    def _stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()


def _pattern_words(pattern: dict[str, Any] | None) -> str:
    if pattern is None:
        return "not set yet"
    if pattern["rhythm"] == Rhythm.CODE.value:
        return f"{pattern['colour']}, {pattern['count']} blinks then a pause"
    return f"{pattern['colour']}, {pattern['rhythm']}"
