"""`consentbox run`: the box itself, on real pins, a real ALSA device and the mounted card."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

from gpiozero.pins import Factory

from consentbox.hw.panel import GpioPanel
from consentbox.sim.pins import SimulatedFactory
from consentbox.service.box import Box
from consentbox.service.clock import RealClock
from consentbox.service.config import Config
from consentbox.service.logs import choose_report
from consentbox.service.notify import Notifier
from consentbox.service.wiring import assemble_box

#: How often the card and keys are checked, and systemd's watchdog is fed, while nothing else happens.
READINESS_SECONDS = 1.0


def _factory(config: Config, clock: Callable[[], float]) -> Factory | None:
    # "mock" leaves the pins to a simulated front panel; "default" is gpiozero's choice on a Pi.
    return SimulatedFactory(clock) if config.panel.pin_factory == "mock" else None


def panel_off(config: Config) -> None:
    """Turn the REC LED, the STATUS LED and the buzzer off, and let go of the pins: systemd runs this
    after the box stops, so a box that crashed never leaves REC lit. gpiozero starts outputs off."""
    GpioPanel(config.panel, pin_factory=_factory(config, time.monotonic), clock=time.monotonic,
              on_event=lambda event: None).close()


def run(config: Config) -> None:
    """Finish what a previous run left open, run the box until SIGTERM or SIGINT, then finalise what is
    open and release the hardware."""
    clock = RealClock()
    stopping = threading.Event()
    box = assemble_box(config, clock=clock, pin_factory=_factory(config, clock.now),
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
