"""The page's fingers: a press on the page drives the same gpiozero mock pin a finger would.

Down drives the pin to its pressed level, up to its released level; gpiozero turns the edges into
`Pressed` and `Released` events stamped with the box's clock, and the core tells taps from holds by
those times, so the page obeys the same hold times as the hardware.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from consentbox.core.errors import ConsentBoxError
from consentbox.core.events import RECORD, Button, ConsentButton
from consentbox.hw.gpio import GpioPanel
from consentbox.sim.pins import drive_button

#: Beyond the bounce time, the shortest a press or a gap between presses is made to last.
_EDGE_MARGIN = 0.01


class UnknownButton(ConsentBoxError, KeyError):
    """The page named a button the panel does not have."""


def button_id(button: Button) -> str:
    """The button's name on the page: `record`, `consent-1`, …"""
    return str(button).replace(" ", "-")


@dataclass(frozen=True)
class ButtonFace:
    """How the page draws one button."""

    id: str
    label: str
    kind: str  # "record" or "consent"
    led: bool = False  # a seat LED beside it


class PanelButtons:
    """Drives the panel's button pins for the page, one edge at a time."""

    def __init__(self, panel: GpioPanel, *, pull_up: bool, bounce_time: float, shared_consent: bool) -> None:
        self._buttons = {button_id(button): device for button, device in panel.buttons.items()}
        self._pull_up = pull_up
        # The simulated pins drop an edge within the bounce time of the last one, as gpiozero's
        # bounce_time does: a release that came sooner (a quick click) would be lost and the press
        # would run on into a hold. No finger is that quick, so such edges wait out the bounce time.
        self._gap = bounce_time + _EDGE_MARGIN
        self._last_edge = -float("inf")
        self._lock = threading.Lock()
        seat_leds = 0 if panel.seat_leds is None else len(panel.seat_leds)
        self.faces = tuple(self._face(button, shared_consent, seat_leds) for button in panel.buttons)

    def drive(self, name: str, pressed: bool) -> None:
        """Press (`pressed`) or release the button called `name`; UnknownButton if there is none."""
        device = self._buttons.get(name)
        if device is None:
            raise UnknownButton(f"no button {name!r} on this panel")
        with self._lock:
            time.sleep(max(0.0, self._last_edge + self._gap - time.monotonic()))
            drive_button(device.pin, pressed=pressed, pull_up=self._pull_up)
            self._last_edge = time.monotonic()

    @staticmethod
    def _face(button: Button, shared_consent: bool, seat_leds: int) -> ButtonFace:
        if button == RECORD:
            return ButtonFace(button_id(button), "RECORD", "record")
        assert isinstance(button, ConsentButton)
        return ButtonFace(button_id(button), "CONSENT" if shared_consent else f"CONSENT {button.seat}", "consent",
                          led=button.seat <= seat_leds)
