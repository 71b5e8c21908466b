"""The front panel on gpiozero: RECORD and CONSENT buttons in, REC LED, STATUS LED, seat LEDs and buzzer out.

The pin factory decides what the pins are: gpiozero's default on a Pi, `SimulatedFactory` in a
simulation. Button edges become core events stamped with the box's clock; telling taps from holds
is the core's job, not gpiozero's hold thread.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator
from typing import Any, assert_never

from gpiozero import LED, RGBLED, Button, Buzzer, LEDBoard
from gpiozero.exc import PinFactoryFallback
from gpiozero.pins import Factory

from consentbox.core.commands import Flash, PlayTone, RecLed, SeatLights, ShowStatus
from consentbox.core.errors import PinDriverMissing
from consentbox.core.events import RECORD, ConsentButton, Event, Pressed, Released
from consentbox.core.events import Button as ButtonId
from consentbox.core.feedback import Colour, Pattern, Rhythm, Tone
from consentbox.core.level import LEVEL_LIT_DBFS
from consentbox.hw.ports import PanelCommand, PanelConfig, StatusLeds

#: The STATUS LED's and the seat LEDs' animations run in frames of this many seconds.
FRAME_SECONDS = 0.125
#: A blinking seat LED is lit this many frames, then dark as many: 2 Hz.
SEAT_BLINK_FRAMES = 2

# (on seconds, off seconds, beeps) per buzzer cue.
_TONES = {
    Tone.ACK: (0.05, 0.05, 1),
    Tone.ALL_CONSENTED: (0.08, 0.06, 3),
    Tone.REFUSED: (0.4, 0.1, 1),
    Tone.START: (0.1, 0.08, 2),
    Tone.PAUSE: (0.15, 0.1, 1),
    Tone.END: (0.25, 0.1, 2),
    Tone.WITHDRAWN: (0.25, 0.1, 3),
    Tone.WITHDRAWN_KEPT: (0.5, 0.1, 2),
    Tone.FAULT: (1.0, 0.1, 1),
    Tone.HOLD_TO_WITHDRAW: (0.05, 0.25, 2),
    Tone.HOLD_LONGER: (0.04, 0.04, 4),
    Tone.REMINDER: (0.02, 0.1, 1),
    Tone.SILENCE: (0.1, 0.4, 3),  # slow, unlike the quick triple of all consented
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
        options: dict[str, Any] = {"pull_up": config.pull_up, "bounce_time": config.bounce_time or None,
                                   "pin_factory": pin_factory}
        consent_pins = config.consent_pins[:1] if config.shared_consent else config.consent_pins
        self.buttons: dict[ButtonId, Button] = {RECORD: _first_button(config.record_pin, options)}
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
        # One board for all the seat LEDs: the seats that blink blink together, on one animation thread.
        seat_pins = config.seat_leds
        self.seat_leds = LEDBoard(*seat_pins, pin_factory=pin_factory) if seat_pins else None
        self._steady: list[tuple[int, int, int]] = [self.levels(Colour.OFF)]
        self._level: float | None = None  # the input level, while the STATUS LED shows it (`show_level`)

    def _edge(self, kind: type[Pressed] | type[Released], identity: ButtonId) -> Callable[[], None]:
        return lambda: self._on_event(kind(identity, self._clock()))

    def show(self, command: PanelCommand) -> None:
        """Render one LED, flash or tone command on the pins."""
        if isinstance(command, RecLed):
            self.rec_led.value = command.on
        elif isinstance(command, ShowStatus):
            self._steady = self._frames(command.pattern)
            if self._level is None:  # else shown once the input level no longer is
                self._animate(self.status, itertools.cycle(self._steady))
        elif isinstance(command, SeatLights):
            if self.seat_leds is not None:  # a panel wired without seat LEDs shows the seats nowhere
                self._show_seats(self.seat_leds, command)
        elif isinstance(command, Flash):
            on, off = self.levels(command.colour), self.levels(Colour.OFF)
            flash = [on, on, off, off] * command.count
            self._animate(self.status, itertools.chain(flash, self._resting()))
        elif isinstance(command, PlayTone):
            if self.buzzer is not None:  # a panel built without a buzzer has nothing to sound
                on_time, off_time, beeps = _TONES[command.tone]
                self.buzzer.beep(on_time, off_time, n=beeps, background=True)
        else:
            assert_never(command)  # mypy: a panel command the core gains must be shown here, not dropped

    def show_level(self, dbfs: float | None) -> None:
        """Let the STATUS LED flicker with the input level in place of its steady pattern: each frame green
        while the latest period's peak `dbfs` is at least LEVEL_LIT_DBFS, dark below; None: the steady
        pattern again."""
        showing, self._level = self._level is not None, dbfs
        if showing != (dbfs is not None):
            self._animate(self.status, self._resting())

    def _resting(self) -> Iterator[tuple[int, int, int]]:
        """The STATUS LED's frames when nothing flashes: the input level while it is shown, else the steady
        pattern."""
        return itertools.cycle(self._steady) if self._level is None else self._level_frames()

    def _level_frames(self) -> Iterator[tuple[int, int, int]]:
        on, off = self.levels(Colour.GREEN), self.levels(Colour.OFF)
        while (level := self._level) is not None:  # read once: the box sets it from another thread
            yield on if level >= LEVEL_LIT_DBFS else off

    def close(self) -> None:
        """Release every pin."""
        # Stop (and join) the animations first: their threads could otherwise set a closed LED.
        for animated in (self.status, self.seat_leds):
            if animated is not None:
                animated.source = None
        for device in (*self.buttons.values(), self.rec_led, self.status, self.seat_leds, self.buzzer):
            if device is not None:
                device.close()

    @staticmethod
    def _animate(leds: LEDBoard | RGBLED, frames: Iterator[tuple[int, ...]]) -> None:
        first = next(frames)
        leds.source = None
        leds.value = first
        leds.source_delay = FRAME_SECONDS
        leds.source = frames

    def _show_seats(self, leds: LEDBoard, lights: SeatLights) -> None:
        frames = seat_frames(lights, len(leds))
        if len(frames) == 1:  # nothing blinks: no animation thread
            leds.source = None
            leds.value = frames[0]
        else:
            self._animate(leds, itertools.cycle(frames))

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


def _first_button(pin: str, options: dict[str, Any]) -> Button:
    """The panel's first device (RECORD): making it loads gpiozero's pin factory (when none is given), so a box
    without a pin driver fails here, with the one-line error that names what to install."""
    # gpiozero warns of each factory it falls back from: on failure they go in the one error line, not a
    # dozen more; when a factory loads, they are warned as ever.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PinFactoryFallback)
        try:
            button = Button(pin, **options)
        except ImportError as error:  # gpiozero's BadPinFactory is one, as is a named factory's missing library
            tried = "".join(f"; {warning.message}" for warning in caught
                            if issubclass(warning.category, PinFactoryFallback))
            raise PinDriverMissing(
                f"no GPIO pin driver: gpiozero could not load a pin factory ({error}{tried}); install "
                f"python3-lgpio (or python3-rpi.gpio) and restart the box (status code {PinDriverMissing.code})"
            ) from error
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return button


def seat_frames(lights: SeatLights, seats: int) -> list[tuple[int, ...]]:
    """The seat LEDs' levels (seat 1 first), one frame of FRAME_SECONDS each, repeated: one steady frame,
    or, when seats blink, SEAT_BLINK_FRAMES with them lit, then as many with them dark. A seat both lit and
    blinking (a shared button, some consents given) blinks: what is missing is the news."""
    steady = tuple(int(seat in lights.lit and seat not in lights.blinking) for seat in range(1, seats + 1))
    if not lights.blinking:
        return [steady]
    lit = tuple(int(seat in lights.lit or seat in lights.blinking) for seat in range(1, seats + 1))
    return [lit] * SEAT_BLINK_FRAMES + [steady] * SEAT_BLINK_FRAMES
