"""gpiozero pins for the simulated panel: MockFactory pins that live on the simulation's clock.

gpiozero's MockPin stamps edges with the real monotonic clock and does not implement bounce
filtering. The box runs simulations in virtual time, so these pins take their time from the
simulation clock, and drop edges that arrive within `bounce` seconds of the last reported one,
the way gpiozero's `bounce_time` is documented to behave. Works with gpiozero 1.6 and 2.0.
"""

from __future__ import annotations

from collections.abc import Callable

from gpiozero.pins.mock import MockFactory, MockPin, PinState


class SimulatedPin(MockPin):
    """A mock pin whose edges carry simulation time and whose input edges are debounced."""

    _state: bool  # set by MockPin.__init__; declared here because gpiozero has no type information

    def _now(self) -> float:
        return self.factory.ticks()

    def clear_states(self) -> None:
        """Forget the pin's history, starting it again at the simulation's now."""
        self._last_change = self._now()
        self._last_reported: float | None = None
        self.states = [PinState(0.0, self._state)]

    def _change_state(self, value: bool) -> bool:
        if self._state == value:
            return False
        now = self._now()
        self._state = value
        self.states.append(PinState(now - self._last_change, value))
        self._last_change = now
        return True

    def drive_high(self) -> None:
        """The input went high (a released button, with a pull-up)."""
        self._drive(True)

    def drive_low(self) -> None:
        """The input went low (a pressed button, with a pull-up)."""
        self._drive(False)

    def _drive(self, level: bool) -> None:
        now = self._now()
        bouncing = (
            self._bounce is not None
            and self._last_reported is not None
            and now - self._last_reported < self._bounce
        )
        if not self._change_state(level) or bouncing:
            return
        wanted = "rising" if level else "falling"
        if self._edges in ("both", wanted) and self._when_changed is not None:
            self._last_reported = now
            self._call_when_changed()


class SimulatedFactory(MockFactory):
    """A MockFactory of `SimulatedPin`s whose ticks are `clock()` (seconds, as MockFactory's)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        super().__init__(pin_class=SimulatedPin)

    def ticks(self) -> float:  # MockFactory's is a staticmethod reading time.monotonic()
        """The simulation's current time."""
        return self._clock()


def drive_button(pin: MockPin, *, pressed: bool, pull_up: bool) -> None:
    """Move a simulated button's pin as a finger would: with a pull-up, pressing pulls it low."""
    if pressed == pull_up:
        pin.drive_low()
    else:
        pin.drive_high()
