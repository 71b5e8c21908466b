"""Putting a box together from its configuration: the one assembly that `run` and `simulate` share.

At start the box reads its settings (the installed provisioning bundle, else its configuration), opens
its consent ledger (creating its device key on first start), finishes what a previous run left open on
the card, and only then builds the panel and the session machine.
"""

from __future__ import annotations

from collections.abc import Callable

from gpiozero.pins import Factory

from consentbox.box.box import Box, Report, record_seal
from consentbox.box.config import Config
from consentbox.box.settings import ProvisioningFeed, Settings, ledger_readers, load_settings
from consentbox.box.timeline import foreign_entry, journal_entry, recovered_entry, settings_entry
from consentbox.core.policy import Policy
from consentbox.core.session import SessionMachine
from consentbox.crypto import Recipient
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.alsa import AlsaSource
from consentbox.hw.card import CardDirectory
from consentbox.hw.gpio import GpioPanel
from consentbox.hw.ports import Clock
from consentbox.ledger import Kind
from consentbox.ledger.card_extracts import Readers
from consentbox.ledger.writer import Ledger
from consentbox.recording.journal import Journal
from consentbox.recording.recovery import Recovered, recover_interrupted
from consentbox.retention.index import RetentionIndex
from consentbox.state.clock_floor import TrustedClock
from consentbox.state.files import DEVICE_KEY, LEDGER
from consentbox.state.session_lock import SessionLock


def open_card(config: Config, policy: Policy) -> CardDirectory:
    """The card of `config`: its path, whether it must be a mount, and the file systems it may have."""
    return CardDirectory(config.card_path, policy, require_mount=config.require_mount,
                         file_systems=config.card_file_systems)


def open_ledger(config: Config, card: CardDirectory, clock: TrustedClock, *, monotonic: Callable[[], float],
                boot: bool, readers: Readers) -> Ledger:
    """The box's ledger, with its device key (made on the box's first start), its entries stamped with
    the trusted clock (each raising the clock floor); `boot` as `Ledger.open`; the card's extracts
    encrypted to `readers()`, the recipients and auditors in force."""
    config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = DeviceSigningKey.load_or_create(config.state_dir / DEVICE_KEY)
    return Ledger.open(config.state_dir / LEDGER, card, key, wall_clock=clock.now, monotonic=monotonic, boot=boot,
                       readers=readers)


def assemble_box(config: Config, *, clock: Clock, pin_factory: Factory | None, audio_device: str,
                 report: Report, audio_tap: Callable[[memoryview], None] | None = None,
                 trusted_clock: TrustedClock | None = None) -> Box:
    """A box for `config`, its previous run's open sessions finished, ready for `check_readiness`.

    `audio_tap`, if given, sees captured audio after it is encrypted, a block of periods at a time (for a level meter).
    `trusted_clock` is the box's wall clock against its floor: the system's unless given (a simulation's).
    """
    settings = load_settings(config)
    report(settings_entry(clock.now(), settings))
    card = open_card(config, settings.policy)
    trusted = TrustedClock(config.state_dir) if trusted_clock is None else trusted_clock
    running: list[Box] = []  # the box, once it is made: it takes up new settings when idle

    def readers() -> tuple[Recipient, ...]:
        return ledger_readers(running[0].recipients, running[0].auditors) if running else settings.ledger_readers

    ledger = open_ledger(config, card, trusted, monotonic=clock.now, boot=True,  # the boot raises the floor
                         readers=readers)
    journal = Journal(config.state_dir, on_failure=lambda error: report(journal_entry(clock.now(), error)))
    retention = RetentionIndex(config.state_dir)
    recovered_sessions = recover_interrupted(
        card, journal, settings.recipients,
        on_seal=lambda session, seal: record_seal(ledger, report, session, seal, at=clock.now()),
        on_foreign=lambda found: report(foreign_entry(clock.now(), found)))
    for recovered in recovered_sessions:
        report(recovered_entry(clock.now(), recovered))
        ledger.append(Kind.END, recovered.session, reason=recovered.end_reason, kept=not recovered.destroyed)
        if recovered.destroyed:
            _receipt_recovered_withdrawal(ledger, retention, recovered)
            retention.remove(recovered.session)
    _record_unrecorded_install(ledger, settings)

    def parts(policy: Policy, now: float) -> tuple[SessionMachine, AlsaSource, CardDirectory]:
        machine = SessionMachine(policy, seats=config.panel.seats, shared_consent=config.panel.shared_consent,
                                 start=now)
        return machine, AlsaSource(audio_device, policy), open_card(config, policy)

    machine, audio, card = parts(settings.policy, clock.now())
    box: Box
    panel = GpioPanel(config.panel, pin_factory=pin_factory, clock=clock.now, on_event=lambda e: box.post(e))
    box = Box(
        machine=machine, panel=panel, audio=audio, card=card, recipients=settings.recipients,
        auditors=settings.auditors, policy=settings.policy, clock=clock, journal=journal, ledger=ledger,
        session_lock=SessionLock(config.state_dir), provisioning=ProvisioningFeed(config, parts),
        retention=retention, trusted_clock=trusted, audio_tap=audio_tap, self_testing=True, report=report,
    )
    running.append(box)
    return box


def _record_unrecorded_install(ledger: Ledger, settings: Settings) -> None:
    """Record the installed bundle if its ledger entry is missing: a power cut came between the two."""
    digest = settings.bundle_sha256
    if digest is not None and not ledger.has_entry(Kind.PROVISIONING, bundle_sha256=digest):
        ledger.append(Kind.PROVISIONING, bundle_version=settings.version, recipients=len(settings.recipients),
                      bundle_sha256=digest)


def _receipt_recovered_withdrawal(ledger: Ledger, retention: RetentionIndex, recovered: Recovered) -> None:
    """The destruction receipt of a withdrawal that a power cut interrupted and recovery finished; none if
    the box had written it before the power went."""
    if ledger.has_entry(Kind.DESTRUCTION, recovered.session):
        return
    expiry = retention.entries().get(recovered.session)
    due = expiry.due if expiry is not None else recovered.expires
    ledger.append(Kind.DESTRUCTION, recovered.session, files=recovered.destroyed_files, cause="withdrawn", due=due)
