"""`consentbox provision`: the job systemd starts when a USB stick appears, beside the running box."""

from __future__ import annotations

import time
from pathlib import Path

from consentbox.clock_floor import TrustedClock
from consentbox.hw.card import CardDirectory
from consentbox.provisioning.installed import Result
from consentbox.provisioning.provision import Provisioner
from consentbox.service.config import Config
from consentbox.service.settings import load_settings
from consentbox.service.wiring import open_ledger


def provision_from(config: Config, source: Path) -> Result:
    """Provision the box of `config` from `source`; its ledger records the attempt (and no boot)."""
    settings = load_settings(config)
    card = CardDirectory(config.card_path, settings.policy, require_mount=config.require_mount)
    clock = TrustedClock(config.state_dir)
    ledger = open_ledger(config, card, clock, monotonic=time.monotonic, boot=False)
    try:
        provisioner = Provisioner(config.state_dir, config.org_key, settings.policy, ledger, clock,
                                  seats=config.panel.seats, shared_consent=config.panel.shared_consent)
        return provisioner.provision(source)
    finally:
        ledger.close(shutdown=False)
