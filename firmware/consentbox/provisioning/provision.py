"""Provisioning from a stick, start to end: lock, read, verify, judge, install, record, report.

Nothing on the stick is trusted until the organisation's signature over it verifies; nothing is
installed unless every check passes; and every attempt, installed or refused, gets a ledger entry
and a result the running box shows on its panel. docs/provisioning.md tells the whole story.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consentbox.core.errors import PolicyError
from consentbox.core.policy import Policy
from consentbox.core.provisioning import BundleRefusal, Refused, check_acceptable
from consentbox.core.session import SessionMachine
from consentbox.core.timekeeping import floor_from_bundle
from consentbox.crypto.signing import OrgPublicKey, SigningKeyError
from consentbox.ledger import Kind
from consentbox.ledger.writer import Ledger, LedgerWriteError
from consentbox.provisioning.bundle import Bundle, Verified, open_sealed
from consentbox.provisioning.installed import InstalledBundleError, Result, install, read_installed, write_result
from consentbox.provisioning.stick import read_bundle, shown_name
from consentbox.retention.index import Expiry, RetentionIndex
from consentbox.state.clock_floor import TrustedClock
from consentbox.state.session_lock import SessionLock


@dataclass(frozen=True)
class Provisioner:
    """What provisioning needs of the box: its state directory, its organisation key file, the policy
    in force (for how far ahead a bundle may be dated), its ledger and its trusted clock."""

    state_dir: Path
    org_key_path: Path
    policy: Policy
    ledger: Ledger
    clock: TrustedClock
    seats: int  # the panel's CONSENT buttons: a bundle's policy must fit them
    shared_consent: bool

    def provision(self, source: Path) -> Result:
        """Try to install the bundle on `source` (a stick's block device or a directory)."""
        return self.provision_with(lambda: read_bundle(source), SessionLock(self.state_dir))

    def provision_with(self, read: Callable[[], tuple[str, bytes]], lock: SessionLock) -> Result:
        """Try to install the bundle that `read` gives (its name and bytes, or `Refused`), holding `lock`
        (taken here unless the caller holds it already); `read` is not called while a session is open."""
        try:
            result = self._attempt(read, lock)
        finally:
            lock.release()
        write_result(self.state_dir, result)
        return result

    def _attempt(self, read: Callable[[], tuple[str, bytes]], lock: SessionLock) -> Result:
        digest: str | None = None
        try:
            if not lock.acquire(wait=False):
                raise Refused(BundleRefusal.SESSION_IN_PROGRESS, "end the session, then insert the stick again")
            org_key = self._org_key()
            name, data = read()
            digest = hashlib.sha256(data).hexdigest()
            verified = open_sealed(data, org_key)
            self._check(verified, org_key)
            # Before the install: a power cut between the two must not leave the new policy in force
            # with the recordings it shortens still kept longer.
            moved = RetentionIndex(self.state_dir).shorten(_existing_limit(verified.bundle))
            unrecorded_expiries = self._record_expiries(moved)
            install(self.state_dir, data)
        except Refused as refused:
            unrecorded = self._record(Kind.PROVISIONING_REFUSED, reason=refused.reason, bundle_sha256=digest)
            return Result(refused.reason, str(refused) + unrecorded, None)
        bundle = verified.bundle
        self.clock.floor.raise_to(floor_from_bundle(bundle.created, self.clock.built))
        unrecorded = self._record(Kind.PROVISIONING, bundle_version=bundle.version,
                                  recipients=len(bundle.recipients), bundle_sha256=verified.sha256)
        return Result(None, f"installed {shown_name(name)}: version {bundle.version}, "
                      f"{len(bundle.recipients)} recipient(s){unrecorded or unrecorded_expiries}", bundle.version)

    def _org_key(self) -> OrgPublicKey:
        try:
            return OrgPublicKey.read(self.org_key_path)
        except FileNotFoundError:
            raise Refused(BundleRefusal.NO_ORG_KEY, f"install the organisation key at {self.org_key_path}") from None
        except (OSError, SigningKeyError) as error:
            raise Refused(BundleRefusal.NO_ORG_KEY, str(error)) from None

    def _check(self, verified: Verified, org_key: OrgPublicKey) -> None:
        try:
            installed = read_installed(self.state_dir, org_key)
        except InstalledBundleError:
            installed = None  # replaced only by a bundle that verifies now; there is no version to hold to
        check_acceptable(version=verified.bundle.version, created=verified.bundle.created,
                         installed_version=0 if installed is None else installed.bundle.version,
                         trusted_now=self.clock.reading().now, ahead_limit_days=self.policy.bundle_ahead_days,
                         built=self.clock.built)
        try:  # the rules the box applies at start: a policy its panel cannot run would stop it for good
            SessionMachine(verified.bundle.policy, seats=self.seats, shared_consent=self.shared_consent)
        except PolicyError as error:
            raise Refused(BundleRefusal.INVALID, f"this box's panel cannot run the policy: {error}") from None

    def _record(self, kind: Kind, session: str | None = None, /, **fields: Any) -> str:
        """Append to the ledger; "" when done, else words for the result (the install stands either way)."""
        try:
            self.ledger.append(kind, session, **fields)
        except LedgerWriteError as error:
            return f"; not recorded in the ledger: {error}"
        return ""

    def _record_expiries(self, moved: Mapping[str, Expiry]) -> str:
        """An `expiry` entry for each session whose expiry the bundle moved; as `_record`, for the first failure."""
        failures = [self._record(Kind.EXPIRY, session, expires=expiry.due, reason="bundle")
                    for session, expiry in moved.items()]
        return next((failure for failure in failures if failure), "")


def _existing_limit(bundle: Bundle) -> int:
    """How many days from their start recordings already made may be kept under `bundle`."""
    days = bundle.policy.retention_days
    return days if bundle.existing_days is None else min(days, bundle.existing_days)
