"""`consentbox panel-off` (box/daemon.panel_off), which systemd runs after the box stops: the LEDs (seat LEDs
too) and the buzzer that a crashed box left on are turned off (issue 22).

A crash leaves the pins as the box last drove them, and panel-off, a new process, finds them so. Here one
gpiozero mock factory stands for the Pi's pins: the crashed box's outputs are left driven high on it, held
by no device (a dead process reserves nothing), and panel_off runs on that same factory, as `consentbox
panel-off` does through the CLI's pin factory.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from consentbox.box.config import load_config
from consentbox.box.daemon import panel_off
from consentbox.hw.gpio import GpioPanel
from consentbox.hw.ports import PanelConfig, StatusLeds
from consentbox.sim.pins import SimulatedFactory


def outputs(panel: PanelConfig) -> list[str]:
    """Every pin the box drives: the REC LED, the STATUS LED's three, the seat LEDs and the buzzer."""
    return [panel.rec_led_pin, *panel.status_pins, *panel.seat_leds, panel.buzzer_pin]


@pytest.mark.parametrize("status_leds", list(StatusLeds))
def test_panel_off_turns_off_every_led_and_the_buzzer_that_a_crash_left_on(status_leds: StatusLeds) -> None:
    config = load_config()
    config = dataclasses.replace(config, panel=dataclasses.replace(config.panel, status_leds=status_leds))
    pins = SimulatedFactory(time.monotonic)
    for name in outputs(config.panel):  # as the box left them: REC lit, every STATUS colour and seat on, buzzing
        pins.pin(name).output_with_state(True)
    assert [pins.pin(name).state for name in outputs(config.panel)] == [True] * 8

    panel_off(config, lambda clock: pins)

    assert {name: pins.pin(name).state for name in outputs(config.panel)} == dict.fromkeys(outputs(config.panel), False)
    # It let go of the pins: the restarted box can take them.
    GpioPanel(config.panel, pin_factory=pins, clock=time.monotonic, on_event=lambda event: None).close()
