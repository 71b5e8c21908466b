"""The simulated pins and the gpiozero panel: real gpiozero devices on simulation-clock mock pins."""

from __future__ import annotations

import dataclasses

import pytest

from consentbox.box.config import load_config
from consentbox.core.commands import Flash, RecLed, ShowStatus
from consentbox.core.events import RECORD, ConsentButton, Pressed, Released
from consentbox.core.feedback import Colour, Pattern, Rhythm
from consentbox.hw.gpio import GpioPanel
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
