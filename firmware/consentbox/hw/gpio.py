"""The front panel on gpiozero: RECORD and CONSENT buttons in, REC LED, STATUS LED and buzzer out.

The pin factory decides what the pins are: gpiozero's default on a Pi, `SimulatedFactory` in a
simulation. Button edges become core events stamped with the box's clock; telling taps from holds
is the core's job, not gpiozero's hold thread.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import assert_never

from gpiozero import LED, RGBLED, Button, Buzzer, LEDBoard
from gpiozero.pins import Factory

from consentbox.core.commands import Flash, PlayTone, RecLed, ShowStatus
from consentbox.core.events import RECORD, ConsentButton, Event, Pressed, Released
from consentbox.core.events import Button as ButtonId
from consentbox.core.feedback import Colour, Pattern, Rhythm, Tone
from consentbox.hw.ports import PanelCommand, PanelConfig, StatusLeds

#: The STATUS LED's animation runs in frames of this many seconds.
FRAME_SECONDS = 0.125

# (on seconds, off seconds, beeps) per buzzer cue.
_TONES = {
    Tone.ACK: (0.05, 0.05, 1),
    Tone.ALL_CONSENTED: (0.08, 0.06, 3),
    Tone.REFUSED: (0.4, 0.1, 1),
    Tone.START: (0.1, 0.08, 2),
    Tone.PAUSE: (0.15, 0.1, 1),
    Tone.END: (0.25, 0.1, 2),
    Tone.WITHDRAWN: (0.25, 0.1, 3),
    Tone.FAULT: (1.0, 0.1, 1),
}


class GpioPanel:
    """A front panel on GPIO pins; `on_event` receives each button edge as a core event."""

    def __init__(
        self,
        config: PanelConfig,
        *,
        pin_factory: Factory | None,
        clock: Callable[[], float],
        on_event: Callable[[Event], None],
    ) -> None:
        self._clock = clock
        self._on_event = on_event
        options = {"pull_up": config.pull_up, "bounce_time": config.bounce_time or None, "pin_factory": pin_factory}
        consent_pins = config.consent_pins[:1] if config.shared_consent else config.consent_pins
        self.buttons: dict[ButtonId, Button] = {RECORD: Button(config.record_pin, **options)}
        for seat, pin in enumerate(consent_pins, start=1):
            self.buttons[ConsentButton(seat)] = Button(pin, **options)
        for identity, button in self.buttons.items():
            button.when_pressed = self._edge(Pressed, identity)
            button.when_released = self._edge(Released, identity)
        self.rec_led = LED(config.rec_led_pin, pin_factory=pin_factory)
        self._three_leds = config.status_leds is StatusLeds.THREE
        if self._three_leds:
            self.status: LEDBoard | RGBLED = LEDBoard(*config.status_pins, pin_factory=pin_factory)
        else:
            self.status = RGBLED(*config.status_pins, pwm=False, pin_factory=pin_factory)
        self.buzzer = Buzzer(config.buzzer_pin, pin_factory=pin_factory) if config.buzzer_pin else None
        self._steady: list[tuple[int, int, int]] = [self.levels(Colour.OFF)]

    def _edge(self, kind: type[Pressed] | type[Released], identity: ButtonId) -> Callable[[], None]:
        return lambda: self._on_event(kind(identity, self._clock()))

    def show(self, command: PanelCommand) -> None:
        """Render one LED, flash or tone command on the pins."""
        if isinstance(command, RecLed):
            self.rec_led.value = command.on
        elif isinstance(command, ShowStatus):
            self._steady = self._frames(command.pattern)
            self._animate(itertools.cycle(self._steady))
        elif isinstance(command, Flash):
            on, off = self.levels(command.colour), self.levels(Colour.OFF)
            flash = [on, on, off, off] * command.count
            self._animate(itertools.chain(flash, itertools.cycle(self._steady)))
        elif isinstance(command, PlayTone):
            if self.buzzer is not None:  # a panel built without a buzzer has nothing to sound
                on_time, off_time, beeps = _TONES[command.tone]
                self.buzzer.beep(on_time, off_time, n=beeps, background=True)
        else:
            assert_never(command)  # mypy: a panel command the core gains must be shown here, not dropped

    def close(self) -> None:
        """Release every pin."""
        # Stop (and join) the STATUS animation first: its thread could otherwise set a closed LED.
        self.status.source = None
        for device in (*self.buttons.values(), self.rec_led, self.status, self.buzzer):
            if device is not None:
                device.close()

    def _animate(self, frames: Iterator[tuple[int, int, int]]) -> None:
        first = next(frames)
        self.status.source = None
        self.status.value = first
        self.status.source_delay = FRAME_SECONDS
        self.status.source = frames

    def levels(self, colour: Colour) -> tuple[int, int, int]:
        """Pin levels for a colour: (red, green, blue) on an RGB LED, (green, amber, red) on three."""
        if self._three_leds:
            return {Colour.OFF: (0, 0, 0), Colour.GREEN: (1, 0, 0), Colour.AMBER: (0, 1, 0),
                    Colour.RED: (0, 0, 1)}[colour]
        return {Colour.OFF: (0, 0, 0), Colour.GREEN: (0, 1, 0), Colour.AMBER: (1, 1, 0), Colour.RED: (1, 0, 0)}[colour]

    def _frames(self, pattern: Pattern) -> list[tuple[int, int, int]]:
        on, off = self.levels(pattern.colour), self.levels(Colour.OFF)
        if pattern.rhythm is Rhythm.STEADY:
            return [on]
        if pattern.rhythm is Rhythm.SLOW:
            return [on] * 4 + [off] * 4
        if pattern.rhythm is Rhythm.FAST:
            return [on, off]
        return [on, on, off, off] * pattern.count + [off] * 8  # CODE: count blinks, then a pause
