"""`consentbox run`: the box itself, on real pins, a real ALSA device and the mounted card."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

from consentbox.core.session import SessionMachine
from consentbox.hw.audio import AlsaSource
from consentbox.hw.card import CardDirectory
from consentbox.hw.panel import GpioPanel
from consentbox.hw.pins import SimulatedFactory
from consentbox.recording.journal import Journal
from consentbox.recording.recovery import recover_interrupted
from consentbox.service.box import Box
from consentbox.service.clock import RealClock
from consentbox.service.config import Config
from consentbox.service.timeline import journal_entry, recovered_entry

#: How often the card and keys are checked while nothing else happens.
READINESS_SECONDS = 1.0


def log(entry: dict[str, Any]) -> None:
    """One structured line a timeline entry, on stderr (journald captures it under systemd)."""
    print(json.dumps(entry, separators=(",", ":")), file=sys.stderr, flush=True)


def run(config: Config) -> None:
    """Finish what a previous run left open, run the box until SIGTERM or SIGINT, then finalise what is
    open and release the hardware."""
    clock = RealClock()
    card = CardDirectory(config.card_path, config.policy, require_mount=config.require_mount)
    journal = Journal(config.state_dir, on_failure=lambda error: log(journal_entry(clock.now(), error)))
    for recovered in recover_interrupted(card, journal, config.recipients):
        log(recovered_entry(clock.now(), recovered))
    stopping = threading.Event()
    # "mock" leaves the pins to a simulated front panel; "default" is gpiozero's choice on a Pi.
    factory = SimulatedFactory(clock.now) if config.panel.pin_factory == "mock" else None
    machine = SessionMachine(config.policy, seats=config.panel.seats, shared_consent=config.panel.shared_consent)
    box: Box
    panel = GpioPanel(config.panel, pin_factory=factory, clock=clock.now, on_event=lambda e: box.post(e))
    box = Box(
        machine=machine, panel=panel, audio=AlsaSource(config.audio_device, config.policy), card=card,
        recipients=config.recipients, policy=config.policy, clock=clock, journal=journal, report=log,
    )

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        clock.wake()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping.is_set():
        box.check_readiness()
        box.run_until(clock.now() + READINESS_SECONDS)
    box.shut_down()
