"""Putting a box together from its configuration: the one assembly that `run` and `simulate` share.

At start the box opens its consent ledger (creating its device key on first start), finishes what a
previous run left open on the card, and only then builds the panel and the session machine.
"""

from __future__ import annotations

from gpiozero.pins import Factory

from consentbox.core.session import SessionMachine
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.audio import AlsaSource
from consentbox.hw.card import CardDirectory
from consentbox.hw.panel import GpioPanel
from consentbox.ledger import Kind, Ledger
from consentbox.recording.journal import Journal
from consentbox.recording.recovery import recover_interrupted
from consentbox.service.box import Box, Report
from consentbox.service.clock import Clock
from consentbox.service.config import Config
from consentbox.service.timeline import journal_entry, recovered_entry

DEVICE_KEY = "device.key"
LEDGER = "ledger.jsonl"


def assemble_box(config: Config, *, clock: Clock, pin_factory: Factory | None, audio_device: str,
                 report: Report) -> Box:
    """A box for `config`, its previous run's open sessions finished, ready for `check_readiness`."""
    card = CardDirectory(config.card_path, config.policy, require_mount=config.require_mount)
    config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = DeviceSigningKey.load_or_create(config.state_dir / DEVICE_KEY)
    ledger = Ledger.open(config.state_dir / LEDGER, card, key, monotonic=clock.now)
    journal = Journal(config.state_dir, on_failure=lambda error: report(journal_entry(clock.now(), error)))
    for recovered in recover_interrupted(card, journal, config.recipients):
        report(recovered_entry(clock.now(), recovered))
        ledger.append(Kind.END, recovered.session, reason=recovered.end_reason, kept=not recovered.destroyed)
    machine = SessionMachine(config.policy, seats=config.panel.seats, shared_consent=config.panel.shared_consent)
    box: Box
    panel = GpioPanel(config.panel, pin_factory=pin_factory, clock=clock.now, on_event=lambda e: box.post(e))
    box = Box(
        machine=machine, panel=panel, audio=AlsaSource(audio_device, config.policy), card=card,
        recipients=config.recipients, policy=config.policy, clock=clock, journal=journal, ledger=ledger,
        report=report,
    )
    return box
