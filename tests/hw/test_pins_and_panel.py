"""The simulated pins and the gpiozero panel: real gpiozero devices on simulation-clock mock pins."""

from __future__ import annotations

import dataclasses
import time

import pytest
from gpiozero import LED

from consentbox.box.config import load_config
from consentbox.core.commands import Flash, RecLed, SeatLights, ShowStatus
from consentbox.core.events import RECORD, ConsentButton, Pressed, Released
from consentbox.core.feedback import Colour, Pattern, Rhythm
from consentbox.core.level import LEVEL_LIT_DBFS
from consentbox.hw.gpio import FRAME_SECONDS, GpioPanel, seat_frames
from consentbox.hw.ports import StatusLeds
from consentbox.sim.pins import SimulatedFactory


class Sim:
    """A panel on simulated pins, with a hand-moved clock and the events it produced."""

    def __init__(self, **panel_changes):
        self.now = 0.0
        self.events = []
        config = load_config().panel
        self.config = dataclasses.replace(config, pin_factory="mock", **panel_changes)
        self.factory = SimulatedFactory(lambda: self.now)
        self.panel = GpioPanel(self.config, pin_factory=self.factory, clock=lambda: self.now,
                               on_event=self.events.append)

    def drive(self, button, at, pressed):
        self.now = at
        pin = self.panel.buttons[button].pin
        pin.drive_low() if pressed else pin.drive_high()


@pytest.fixture
def sim():
    made = []

    def build(**changes):
        made.append(Sim(**changes))
        return made[-1]

    yield build
    for one in made:
        one.panel.close()


def test_button_edges_become_core_events_on_the_simulation_clock(sim):
    box = sim()
    box.drive(RECORD, 5.0, True)
    box.drive(RECORD, 6.25, False)
    box.drive(ConsentButton(3), 7.0, True)
    assert box.events == [Pressed(RECORD, 5.0), Released(RECORD, 6.25), Pressed(ConsentButton(3), 7.0)]


def test_contact_bounce_within_bounce_time_counts_once(sim):
    box = sim()
    for at, level in [(1.000, True), (1.003, False), (1.006, True), (1.009, False), (1.012, True)]:
        box.drive(ConsentButton(1), at, level)
    for at, level in [(2.000, False), (2.004, True), (2.008, False)]:
        box.drive(ConsentButton(1), at, level)
    assert box.events == [Pressed(ConsentButton(1), 1.0), Released(ConsentButton(1), 2.0)]


def test_edges_further_apart_than_bounce_time_all_count(sim):
    box = sim(bounce_time=0.02)
    box.drive(RECORD, 1.0, True)
    box.drive(RECORD, 1.03, False)
    box.drive(RECORD, 1.06, True)
    assert [type(e).__name__ for e in box.events] == ["Pressed", "Released", "Pressed"]


def test_pin_history_is_in_simulation_time(sim):
    box = sim()
    box.drive(RECORD, 10.0, True)
    box.drive(RECORD, 12.5, False)
    states = box.panel.buttons[RECORD].pin.states
    assert [(round(s.timestamp, 6), s.state) for s in states[-2:]] == [(10.0, False), (2.5, True)]


def test_shared_consent_uses_one_button_as_seat_one(sim):
    box = sim(shared_consent=True)
    assert set(box.panel.buttons) == {RECORD, ConsentButton(1)}


def test_rec_led_follows_commands(sim):
    box = sim()
    pin = box.factory.pin(box.config.rec_led_pin)
    box.panel.show(RecLed(True))
    assert pin.state
    box.panel.show(RecLed(False))
    assert not pin.state


@pytest.mark.parametrize(
    ("leds", "colour", "levels"),
    [
        (StatusLeds.RGB, Colour.AMBER, (1, 1, 0)),
        (StatusLeds.RGB, Colour.GREEN, (0, 1, 0)),
        (StatusLeds.THREE, Colour.AMBER, (0, 1, 0)),
        (StatusLeds.THREE, Colour.RED, (0, 0, 1)),
    ],
)
def test_status_colours_on_rgb_and_three_leds(sim, leds, colour, levels):
    box = sim(status_leds=leds)
    box.panel.show(ShowStatus(Pattern(colour, Rhythm.STEADY)))
    pins = [box.factory.pin(name) for name in box.config.status_pins]
    assert tuple(int(pin.state) for pin in pins) == levels


def test_a_flash_starts_in_its_colour(sim):
    box = sim()
    box.panel.show(ShowStatus(Pattern(Colour.GREEN, Rhythm.STEADY)))
    box.panel.show(Flash(Colour.RED, 2))
    pins = [box.factory.pin(name) for name in box.config.status_pins]
    assert tuple(int(pin.state) for pin in pins) == (1, 0, 0)


# -- seat LEDs ---------------------------------------------------------------------------------------

#: The longest a test waits for the seat LEDs' animation thread to blink: only a hang takes this long.
BLINK_WAIT_SECONDS = 10.0


def seat_levels(box) -> list[bool]:
    """The seat LEDs' pins, seat 1 first."""
    return [box.factory.pin(name).state for name in box.config.seat_leds]


def test_seat_leds_light_the_seats_whose_consent_holds(sim):
    box = sim()
    assert len(box.config.seat_leds) == 3
    box.panel.show(SeatLights(lit=frozenset({1, 3})))
    assert seat_levels(box) == [True, False, True]
    box.panel.show(SeatLights(lit=frozenset({2})))
    assert seat_levels(box) == [False, True, False]
    box.panel.show(SeatLights())
    assert seat_levels(box) == [False, False, False]
    assert box.panel.seat_leds.source is None, "steady lights need no animation"


def test_a_blinking_seat_is_lit_two_frames_then_dark_two_a_lit_one_stays_lit():
    frames = seat_frames(SeatLights(lit=frozenset({1}), blinking=frozenset({3})), 3)
    assert frames == [(1, 0, 1), (1, 0, 1), (1, 0, 0), (1, 0, 0)]
    assert len(frames) * FRAME_SECONDS == 0.5, "one blink every half second: 2 Hz"
    assert seat_frames(SeatLights(lit=frozenset({2})), 3) == [(0, 1, 0)]
    assert seat_frames(SeatLights(lit=frozenset({1}), blinking=frozenset({1})), 1) == [(1,), (1,), (0,), (0,)]


def test_missing_seats_blink_together_on_the_pins_until_the_next_seat_lights(sim):
    box = sim()
    box.panel.show(SeatLights(lit=frozenset({1}), blinking=frozenset({2, 3})))
    first, second, third = (box.factory.pin(name) for name in box.config.seat_leds)
    deadline = time.monotonic() + BLINK_WAIT_SECONDS
    while len(third.states) < 5:  # lit, dark, lit, dark after the first level
        assert time.monotonic() < deadline, f"seat 3 did not blink: {third.states}"
        time.sleep(0.05)
    box.panel.show(SeatLights(lit=frozenset({1, 2, 3})))
    assert [state.state for state in third.states[:5]] == [False, True, False, True, False]
    assert [state.state for state in second.states[:5]] == [False, True, False, True, False], "in step"
    assert [state.state for state in first.states] == [False, True], "a lit seat never goes dark"
    assert seat_levels(box) == [True, True, True] and box.panel.seat_leds.source is None


def test_closing_a_blinking_panel_releases_the_seat_led_pins(sim):
    box = sim()
    box.panel.show(SeatLights(blinking=frozenset({1, 2, 3})))
    box.panel.close()
    for name in box.config.seat_leds:
        LED(name, pin_factory=box.factory).close()  # GPIOPinInUse if the panel still held it


def test_a_shared_button_has_one_seat_led(sim):
    box = sim(shared_consent=True)
    assert len(box.panel.seat_leds) == 1
    box.panel.show(SeatLights(lit=frozenset({1})))
    assert seat_levels(box) == [True]


def test_a_panel_wired_without_seat_leds_shows_seat_lights_nowhere(sim):
    box = sim(seat_led_pins=())
    assert box.panel.seat_leds is None
    box.panel.show(SeatLights(lit=frozenset({1}), blinking=frozenset({2})))
    for name in load_config().panel.seat_leds:
        LED(name, pin_factory=box.factory).close()  # the shipped seat LED pins were never claimed


# -- the input level on the STATUS LED (issue 17, point 5) -----------------------------------------------------


def status_levels(box) -> tuple[int, ...]:
    """The STATUS LED's pins, as the panel's `levels` gives a colour."""
    return tuple(int(box.factory.pin(name).state) for name in box.config.status_pins)


def wait_for_status(box, levels: tuple[int, ...]) -> None:
    """Wait for the STATUS animation's thread to show `levels`; only a hang takes BLINK_WAIT_SECONDS."""
    deadline = time.monotonic() + BLINK_WAIT_SECONDS
    while status_levels(box) != levels:
        assert time.monotonic() < deadline, f"the STATUS LED stayed {status_levels(box)}, not {levels}"
        time.sleep(0.01)


def test_the_status_led_flickers_with_the_input_level_then_shows_its_pattern_again(sim):
    box = sim()
    green, dark, red = (box.panel.levels(colour) for colour in (Colour.GREEN, Colour.OFF, Colour.RED))
    box.panel.show(ShowStatus(Pattern(Colour.AMBER, Rhythm.STEADY)))
    box.panel.show_level(LEVEL_LIT_DBFS)  # a voice near the box: lit at once
    assert status_levels(box) == green
    box.panel.show_level(LEVEL_LIT_DBFS - 0.1)  # the room between words: dark from the next frame
    wait_for_status(box, dark)
    box.panel.show_level(-12.0)
    wait_for_status(box, green)
    box.panel.show(Flash(Colour.RED, 1))  # a flash shows over the level, then the level again
    assert status_levels(box) == red
    wait_for_status(box, green)
    box.panel.show(ShowStatus(Pattern(Colour.RED, Rhythm.STEADY)))  # a new pattern waits for the level to go
    assert status_levels(box) == green
    box.panel.show_level(None)
    assert status_levels(box) == red, "the steady pattern again, the latest one"
