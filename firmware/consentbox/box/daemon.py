"""`consentbox run`: the box itself, on real pins, a real ALSA device and the mounted card."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from gpiozero.pins import Factory

from consentbox.box.box import Box
from consentbox.box.clock import RealClock
from consentbox.box.config import Config
from consentbox.box.logs import choose_report
from consentbox.box.notify import Notifier
from consentbox.box.wiring import assemble_box
from consentbox.core.errors import PinDriverMissing
from consentbox.hw.gpio import GpioPanel

#: How often the card and keys are checked, and systemd's watchdog is fed, while nothing else happens.
READINESS_SECONDS = 1.0


#: Makes the pin factory from the clock that stamps pin edges; None is gpiozero's own choice on a Pi.
PinFactoryMaker = Callable[[Callable[[], float]], Factory | None]


def panel_off(config: Config, pin_factory: PinFactoryMaker) -> None:
    """Turn the REC LED, the STATUS LED, the seat LEDs and the buzzer off, and let go of the pins: systemd
    runs this after the box stops, so a box that crashed never leaves REC (or a seat) lit. gpiozero starts
    outputs off."""
    GpioPanel(config.panel, pin_factory=pin_factory(time.monotonic), clock=time.monotonic,
              on_event=lambda event: None).close()


class StopRequest:
    """Whether the main loop has been asked to stop, by SIGTERM or SIGINT or by another thread.

    Asking takes no lock (threading.Event.set takes one): a signal handler runs in the main thread
    between any two bytecodes, so also while that thread holds the very lock, and a second signal runs
    it again inside the first; a lock there would hang the box until systemd killed it.
    """

    def __init__(self, clock: RealClock) -> None:
        self._clock = clock
        self._requested = False

    @property
    def requested(self) -> bool:
        """Whether `request` was called."""
        return self._requested

    def request(self) -> None:
        """Ask the main loop to stop, waking it (safe from signal handlers and other threads)."""
        self._requested = True
        self._clock.wake()

    def on_signals(self) -> None:
        """Make SIGTERM (systemd stopping the box) and SIGINT (Ctrl+C) ask the main loop to stop."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: self.request())


def run(config: Config, pin_factory: PinFactoryMaker) -> None:
    """Finish what a previous run left open, run the box until SIGTERM or SIGINT, then finalise what is
    open and release the hardware."""
    clock = RealClock()
    notifier = Notifier()
    try:
        box = assemble_box(config, clock=clock, pin_factory=pin_factory(clock.now),
                           audio_device=config.audio_device, report=choose_report())
    except PinDriverMissing as error:
        # No LED can say it: `systemctl status consentbox` can, besides the error line in the journal.
        notifier.status(f"cannot start: {error}")
        raise
    stop = StopRequest(clock)
    stop.on_signals()
    serve(box, clock, notifier, stop)


def serve(box: Box, clock: RealClock, notifier: Notifier, stop: StopRequest) -> None:
    """The main loop: self-test and readiness checked, then READY=1; each turn feeds the watchdog; until
    `stop` is requested."""
    box.start()
    box.check_readiness()
    box.pump()
    status = box.status_line()
    notifier.ready(status)
    while not stop.requested:
        notifier.watchdog()
        box.check_readiness()
        if box.status_line() != status:
            status = box.status_line()
            notifier.status(status)
        box.run_until(clock.now() + READINESS_SECONDS)
    notifier.stopping()
    box.shut_down()
