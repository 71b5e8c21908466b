"""`consentbox wipe`: the retention job (a systemd timer, at boot, and when the card is mounted)."""

from __future__ import annotations

import time

from consentbox.box.config import Config
from consentbox.box.settings import load_settings
from consentbox.box.wiring import open_card, open_ledger
from consentbox.core.reasons import worst
from consentbox.hw.ports import UNUSABLE
from consentbox.retention.wipe import Wiper, WipeReport
from consentbox.state.clock_floor import TrustedClock


def wipe_card(config: Config, *, wait: bool) -> WipeReport:
    """Destroy the expired sessions on the card of `config`'s box (see `Wiper`)."""
    settings = load_settings(config)
    card = open_card(config, settings.policy)
    problems = card.problems() & UNUSABLE
    if problems:
        return WipeReport(stopped=f"{worst(problems).text} at {config.card_path}")
    clock = TrustedClock(config.state_dir)
    ledger = open_ledger(config, card, clock, monotonic=time.monotonic, boot=False,
                         readers=lambda: settings.ledger_readers)
    try:
        # A bundle that no longer verifies is not obeyed, and the configuration never stands in for it.
        limit = None if settings.problem else settings.policy.retention_days
        report = Wiper(config.card_path, config.state_dir, ledger, clock, limit).run(wait=wait)
        report.untrusted_policy = settings.problem
        return report
    finally:
        ledger.close(shutdown=False)
