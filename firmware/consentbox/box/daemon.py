"""`consentbox run`: the box itself, on real pins, a real ALSA device and the mounted card."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

from gpiozero.pins import Factory

from consentbox.box.box import Box
from consentbox.box.clock import RealClock
from consentbox.box.config import Config
from consentbox.box.logs import choose_report
from consentbox.box.notify import Notifier
from consentbox.box.wiring import assemble_box
from consentbox.hw.gpio import GpioPanel

#: How often the card and keys are checked, and systemd's watchdog is fed, while nothing else happens.
READINESS_SECONDS = 1.0


#: Makes the pin factory from the clock that stamps pin edges; None is gpiozero's own choice on a Pi.
PinFactoryMaker = Callable[[Callable[[], float]], Factory | None]


def panel_off(config: Config, pin_factory: PinFactoryMaker) -> None:
    """Turn the REC LED, the STATUS LED and the buzzer off, and let go of the pins: systemd runs this
    after the box stops, so a box that crashed never leaves REC lit. gpiozero starts outputs off."""
    GpioPanel(config.panel, pin_factory=pin_factory(time.monotonic), clock=time.monotonic,
              on_event=lambda event: None).close()


def run(config: Config, pin_factory: PinFactoryMaker) -> None:
    """Finish what a previous run left open, run the box until SIGTERM or SIGINT, then finalise what is
    open and release the hardware."""
    clock = RealClock()
    stopping = threading.Event()
    box = assemble_box(config, clock=clock, pin_factory=pin_factory(clock.now),
                       audio_device=config.audio_device, report=choose_report())

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        clock.wake()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    serve(box, clock, Notifier(), stopping)


def serve(box: Box, clock: RealClock, notifier: Notifier, stopping: threading.Event) -> None:
    """The main loop: self-test and readiness checked, then READY=1; each turn feeds the watchdog; until
    `stopping`."""
    box.start()
    box.check_readiness()
    box.pump()
    status = box.status_line()
    notifier.ready(status)
    while not stopping.is_set():
        notifier.watchdog()
        box.check_readiness()
        if box.status_line() != status:
            status = box.status_line()
            notifier.status(status)
        box.run_until(clock.now() + READINESS_SECONDS)
    notifier.stopping()
    box.shut_down()
