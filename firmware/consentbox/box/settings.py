"""The box's policy and recipients: from the installed bundle once there is one, else from its configuration.

The configuration's `[policy]` and `[keys] recipients` serve a box that was never provisioned (a
development or simulated box); once a bundle is installed, it alone decides. An installed bundle
that no longer verifies is not obeyed, and the box is then not provisioned: it does not fall back
to the configuration, so removing the organisation key cannot swap the recipients.

The running box watches the state directory: a new installed bundle is taken up when the box is idle,
and a new provisioning result is shown on the panel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from consentbox.box.config import Config
from consentbox.core.errors import PolicyError
from consentbox.core.policy import Policy
from consentbox.core.provisioning import Refused
from consentbox.core.session import SessionMachine
from consentbox.crypto import Recipient
from consentbox.crypto.signing import OrgPublicKey, SigningKeyError
from consentbox.hw.ports import AudioSource, Card
from consentbox.provisioning.installed import Result, read_installed
from consentbox.state.files import INSTALLED_BUNDLE, PROVISIONING_RESULT

#: The parts of a box that depend on its policy, made anew when the policy changes (at a given time).
Parts = Callable[[Policy, float], tuple[SessionMachine, AudioSource, Card]]


@dataclass(frozen=True)
class Settings:
    """What sessions are recorded under."""

    policy: Policy
    recipients: tuple[Recipient, ...]
    version: int  # the installed bundle's version; 0 when the configuration's own settings are used
    problem: str = ""  # why an installed bundle is not obeyed, if it is not
    bundle_sha256: str | None = None  # the installed bundle file's digest, when it is obeyed
    auditors: tuple[Recipient, ...] = ()  # the bundle's: they read the ledger extracts, not the audio

    @property
    def ledger_readers(self) -> tuple[Recipient, ...]:
        """Whom the card's ledger extracts are encrypted to (see `ledger_readers`)."""
        return ledger_readers(self.recipients, self.auditors)


def ledger_readers(recipients: Sequence[Recipient],
                   auditors: Sequence[Recipient]) -> tuple[Recipient, ...]:
    """The recipients and the auditors, each once: a supervisor may read the record of the sessions they
    can hear anyway, and an auditor the record alone."""
    return tuple(dict.fromkeys((*recipients, *auditors)))


def load_settings(config: Config) -> Settings:
    """The settings in force now (see the module's words)."""
    if not (config.state_dir / INSTALLED_BUNDLE).exists():
        return Settings(config.policy, config.recipients, 0)
    try:
        verified = read_installed(config.state_dir, OrgPublicKey.read(config.org_key))
    except (OSError, SigningKeyError, Refused) as error:
        detail = getattr(error, "strerror", None) or str(error)
        return Settings(config.policy, (), 0, f"installed bundle not obeyed: {detail}")
    assert verified is not None
    bundle = verified.bundle
    try:  # provisioning refuses such a bundle; a panel rewired since must not stop the box for good
        SessionMachine(bundle.policy, seats=config.panel.seats, shared_consent=config.panel.shared_consent)
    except PolicyError as error:
        return Settings(config.policy, (), 0, f"installed bundle not obeyed: this panel cannot run it: {error}")
    return Settings(bundle.policy, bundle.recipients, bundle.version, bundle_sha256=verified.sha256,
                    auditors=bundle.auditors)


class StateWatch:
    """Notices a file in the state directory being replaced (each replacement is a new inode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self._identity()

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_mtime_ns, status.st_size

    def changed(self) -> bool:
        """Whether the file was replaced (or appeared, or went) since the last call."""
        now = self._identity()
        if now == self._seen:
            return False
        self._seen = now
        return True


class ProvisioningFeed:
    """What the running box learns from provisioning: new settings to take up, and results to show."""

    def __init__(self, config: Config, parts: Parts) -> None:
        self._config = config
        self.parts = parts
        self._installed = StateWatch(config.state_dir / INSTALLED_BUNDLE)
        self._results = StateWatch(config.state_dir / PROVISIONING_RESULT)

    def new_settings(self) -> Settings | None:
        """The settings now in force, if the installed bundle was replaced since the last call."""
        return load_settings(self._config) if self._installed.changed() else None

    def new_result(self) -> Result | None:
        """The latest provisioning result, if there is a new one since the last call."""
        if not self._results.changed():
            return None
        try:
            return Result.from_json(self._results.path.read_bytes())
        except (OSError, ValueError, KeyError):
            return None
