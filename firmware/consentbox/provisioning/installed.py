"""The installed configuration: the last accepted bundle, kept whole and signed in the state directory.

`provisioned.cbundle` holds the exact bytes of the bundle that was installed, so the box verifies it
again with the organisation key at every start: a state directory edited by hand is not obeyed. It
is replaced atomically (write, fsync, rename, fsync the directory), so a power cut leaves the old
bundle or the new one, never a mix. Beside it, `provisioning-result.json` says how the last attempt
went, for the running box to show on its panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from consentbox.core.provisioning import BundleRefusal, Refused
from consentbox.crypto.signing import OrgPublicKey
from consentbox.provisioning.bundle import MAX_BUNDLE_BYTES, Verified, open_sealed
from consentbox.state.files import INSTALLED_BUNDLE, PROVISIONING_RESULT
from consentbox.storage import strict_json
from consentbox.storage.atomic import replace_file
from consentbox.storage.canonical import canonical_json

_MODE = 0o640


class InstalledBundleError(Refused):
    """The installed bundle no longer verifies (edited, or the organisation key was replaced)."""


def read_installed(state_dir: Path, org_key: OrgPublicKey) -> Verified | None:
    """The installed bundle, verified again; None if none was ever installed."""
    path = state_dir / INSTALLED_BUNDLE
    try:
        with open(path, "rb") as src:
            data = src.read(MAX_BUNDLE_BYTES + 1)
    except FileNotFoundError:
        return None
    try:
        return open_sealed(data, org_key)
    except Refused as refused:
        raise InstalledBundleError(refused.reason, f"the installed bundle {path} is refused: {refused}") from None


def install(state_dir: Path, data: bytes) -> None:
    """Make `data` the installed bundle, whole or not at all."""
    replace_file(state_dir, INSTALLED_BUNDLE, data, _MODE)


@dataclass(frozen=True)
class Result:
    """How a provisioning attempt went: `refusal` None when a bundle was installed. A `reminder` is the
    same result written again while the refused stick is still in, for the box to flash its code again."""

    refusal: BundleRefusal | None
    detail: str
    version: int | None
    reminder: bool = False

    def to_json(self) -> bytes:
        value = {"refused": None if self.refusal is None else self.refusal.name, "detail": self.detail,
                 "version": self.version}
        return canonical_json({**value, "reminder": True} if self.reminder else value)

    @classmethod
    def from_json(cls, data: bytes) -> Result:
        value = strict_json.loads(data)
        refusal = None if value["refused"] is None else BundleRefusal[value["refused"]]
        return cls(refusal, str(value["detail"]), value["version"], value.get("reminder") is True)


def write_result(state_dir: Path, result: Result) -> None:
    """Record the outcome of the last attempt, for the running box to show."""
    replace_file(state_dir, PROVISIONING_RESULT, result.to_json(), _MODE)
