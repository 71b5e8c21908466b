"""Fixtures for the provisioning tests: a fixed organisation key pair (and another organisation's), its
public key file as IT installs it on a box, bundles to seal, and signing of hand-made payloads."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.crypto.signing import OrgSigningKey
from consentbox.provisioning.bundle import Bundle
from tests.support.bundles import signed_bundle

#: When the test bundles were made (POSIX seconds): 2026-11-01T00:00:00Z.
CREATED = calendar.timegm((2026, 11, 1, 0, 0, 0))
#: The bundle layout of docs/formats.md, written out here so the tests hold the code to the document.


@pytest.fixture(scope="session")
def org() -> OrgSigningKey:
    """The organisation's signing key, fixed so that failures reproduce."""
    return OrgSigningKey.generate(secret=bytes(range(64, 96)))


@pytest.fixture(scope="session")
def other_org() -> OrgSigningKey:
    """Another organisation's key: its bundles must never install."""
    return OrgSigningKey.generate(secret=bytes(range(160, 192)))


@pytest.fixture
def org_pub(tmp_path: Path, org: OrgSigningKey) -> Path:
    """The organisation's public key file, as `consentbox-admin init-org` writes it and IT installs it."""
    path = tmp_path / "org.pub"
    path.write_text(f"# ConsentBox organisation public key\n{org.public_key.to_string()}\n")
    return path


@pytest.fixture
def make_bundle(identity: X25519Identity) -> Callable[..., Bundle]:
    """`make_bundle(version=…, …)`: a bundle to the supervisor's key under the default policy."""

    def make(version: int = 1, *, created: int = CREATED, recipients: tuple = (), policy: Policy = Policy(),
             existing_days: int | None = None) -> Bundle:
        return Bundle(version, created, recipients or (identity.recipient,), policy, existing_days)

    return make


@pytest.fixture(scope="session")
def sign(org: OrgSigningKey) -> Callable[..., bytes]:
    """`sign(payload, key=org)`: a bundle file of any payload bytes, validly signed (for hostile contents)."""

    def signed(payload: bytes, key: OrgSigningKey = org) -> bytes:
        return signed_bundle(payload, key)

    return signed
