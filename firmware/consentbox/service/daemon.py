"""`consentbox run`: the box itself, on real pins, a real ALSA device and the mounted card."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

from consentbox.hw.pins import SimulatedFactory
from consentbox.service.clock import RealClock
from consentbox.service.config import Config
from consentbox.service.wiring import assemble_box

#: How often the card and keys are checked while nothing else happens.
READINESS_SECONDS = 1.0


def log(entry: dict[str, Any]) -> None:
    """One structured line a timeline entry, on stderr (journald captures it under systemd)."""
    print(json.dumps(entry, separators=(",", ":")), file=sys.stderr, flush=True)


def run(config: Config) -> None:
    """Finish what a previous run left open, run the box until SIGTERM or SIGINT, then finalise what is
    open and release the hardware."""
    clock = RealClock()
    stopping = threading.Event()
    # "mock" leaves the pins to a simulated front panel; "default" is gpiozero's choice on a Pi.
    factory = SimulatedFactory(clock.now) if config.panel.pin_factory == "mock" else None
    box = assemble_box(config, clock=clock, pin_factory=factory, audio_device=config.audio_device, report=log)

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        clock.wake()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping.is_set():
        box.check_readiness()
        box.run_until(clock.now() + READINESS_SECONDS)
    box.shut_down()
