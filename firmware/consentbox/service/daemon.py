"""`consentbox run`: the box itself, on real pins, a real ALSA device and the mounted card."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero.pins import Factory

from consentbox.hw.panel import GpioPanel
from consentbox.hw.pins import SimulatedFactory
from consentbox.service.clock import RealClock
from consentbox.service.config import Config
from consentbox.service.wiring import assemble_box

#: How often the card and keys are checked while nothing else happens.
READINESS_SECONDS = 1.0


def log(entry: dict[str, Any]) -> None:
    """One structured line a timeline entry, on stderr (journald captures it under systemd)."""
    print(json.dumps(entry, separators=(",", ":")), file=sys.stderr, flush=True)


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
                       audio_device=config.audio_device, report=log)

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        clock.wake()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping.is_set():
        box.check_readiness()
        box.run_until(clock.now() + READINESS_SECONDS)
    box.shut_down()
