"""`consentbox wipe`: the retention job (a systemd timer, at boot, and when the card is mounted)."""

from __future__ import annotations

from collections.abc import Callable

from consentbox.box.config import Config
from consentbox.box.settings import load_settings
from consentbox.box.wiring import open_card, open_ledger
from consentbox.core.reasons import worst
from consentbox.hw.ports import UNUSABLE
from consentbox.retention.wipe import Wiper, WipeReport
from consentbox.state.clock_floor import TrustedClock


def wipe_card(config: Config, *, wait: bool, waiting: Callable[[], None] = lambda: None,
              clock: TrustedClock | None = None) -> WipeReport:
    """Destroy the expired sessions on the card of `config`'s box (see `Wiper`); `waiting` is called before
    waiting for an open session to end. `clock` is the box's trusted clock: the system's unless given (a
    simulation's, whose timer fires as its clock advances)."""
    settings = load_settings(config)
    card = open_card(config, settings.policy)
    problems = card.problems() & UNUSABLE
    if problems:
        return WipeReport(stopped=f"{worst(problems).text} at {config.card_path}")
    clock = TrustedClock(config.state_dir) if clock is None else clock
    ledger = open_ledger(config, card, clock, monotonic=clock.monotonic, boot=False,
                         readers=lambda: settings.ledger_readers)
    try:
        # A bundle that no longer verifies is not obeyed, and the configuration never stands in for it.
        limit = None if settings.problem else settings.policy.retention_days
        report = Wiper(config.card_path, config.state_dir, ledger, clock, limit).run(wait=wait, waiting=waiting)
        report.untrusted_policy = settings.problem
        return report
    finally:
        ledger.close(shutdown=False)
