"""A policy the box's panel cannot run is never put in force: more `default_parties` than the panel has
separate CONSENT buttons (a shared button takes any number). Provisioning refuses such a bundle (code
`invalid`) and installs nothing; a bundle installed before the panel was rewired is not obeyed at start
(the box is then not provisioned, code 6, rather than failing at every start). The session machine's own
check is tests/core/test_policy.py; tests/system/test_provisioning.py shows the refusal from a real stick.
"""

from __future__ import annotations

import calendar
import dataclasses
from pathlib import Path

import pytest

from consentbox.box.config import load_config
from consentbox.box.settings import load_settings
from consentbox.core.policy import Policy
from consentbox.core.provisioning import BundleRefusal
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import Kind, verify
from consentbox.ledger.entry import Entry
from consentbox.ledger.writer import Ledger
from consentbox.provisioning.bundle import seal
from consentbox.provisioning.installed import install
from consentbox.provisioning.provision import Provisioner
from consentbox.state.clock_floor import TrustedClock
from consentbox.state.files import INSTALLED_BUNDLE

BUILT = float(calendar.timegm((2026, 6, 1, 0, 0, 0)))  # before the bundles' creation day (conftest.py)
WALL = float(calendar.timegm((2026, 11, 2, 0, 0, 0)))  # the day after it

# (separate CONSENT buttons, or 1 shared; whether shared; the bundle's default_parties; refused)
FITS = [
    (3, False, 4, True),  # a fourth party would have no button of their own
    (3, False, 3, False),
    (1, True, 4, False),  # one button passed around: four taps a gap apart
]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


@pytest.mark.parametrize(("seats", "shared", "parties", "refused"), FITS)
def test_provisioning_refuses_a_policy_the_panel_cannot_run_and_installs_nothing(
        tmp_path, state, org, org_pub, make_bundle, seats, shared, parties, refused):
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "consentbox.cbundle").write_bytes(seal(make_bundle(1, policy=Policy(default_parties=parties)), org))
    with Ledger.open(state / "ledger.jsonl", None, DeviceSigningKey.generate(secret=bytes(32))) as ledger:
        provisioner = Provisioner(state, org_pub, Policy(), ledger, TrustedClock(state, built=BUILT, wall=lambda: WALL),
                                  seats=seats, shared_consent=shared)
        result = provisioner.provision(stick)

    if not refused:
        assert result.refusal is None and (state / INSTALLED_BUNDLE).exists()
        return
    assert result.refusal is BundleRefusal.INVALID and result.version is None
    assert result.detail.startswith("invalid contents: this box's panel cannot run the policy: policy key "
                                    f"default_parties: {parties} parties cannot consent on {seats} separate CONSENT")
    assert not (state / INSTALLED_BUNDLE).exists()
    verify(state / "ledger.jsonl")
    lines = (state / "ledger.jsonl").read_bytes().splitlines()
    kinds = [Entry.parse(line, f"line {n}").kind for n, line in enumerate(lines, start=1)]
    assert Kind.PROVISIONING_REFUSED in kinds and Kind.PROVISIONING not in kinds


@pytest.mark.parametrize(("seats", "shared", "parties", "refused"), FITS)
def test_a_bundle_the_panel_can_no_longer_run_is_not_obeyed(state, org, org_pub, make_bundle, identity, seats, shared,
                                                           parties, refused):
    # Installed while the panel had more buttons (as provisioning checks it then); the panel rewired since.
    install(state, seal(make_bundle(4, policy=Policy(default_parties=parties)), org))
    shipped = load_config()
    panel = dataclasses.replace(shipped.panel, consent_pins=shipped.panel.consent_pins[:seats], shared_consent=shared)
    settings = load_settings(dataclasses.replace(shipped, state_dir=state, org_key=org_pub, panel=panel))

    if not refused:
        assert (settings.policy.default_parties, settings.recipients, settings.version) == (
            parties, (identity.recipient,), 4)
        return
    assert settings.recipients == () and settings.version == 0, "no recipients: the box must not record"
    assert settings.problem.startswith("installed bundle not obeyed: this panel cannot run it: policy key "
                                       f"default_parties: {parties} parties cannot consent on {seats} separate")
