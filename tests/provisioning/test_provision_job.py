"""`consentbox provision` (jobs/provision.py) on a box whose installed bundle no longer verifies: the
configuration's policy never stands in for the bundle, not even for how far ahead a new bundle may be dated."""

from __future__ import annotations

import time
from pathlib import Path

from consentbox.box.config import load_config
from consentbox.core.provisioning import BundleRefusal
from consentbox.jobs.provision import provision_from
from consentbox.provisioning.bundle import seal

DAY = 86_400


def test_a_box_whose_bundle_no_longer_verifies_dates_new_bundles_by_the_firmware_not_the_configuration(
        tmp_path: Path, org, other_org, org_pub, make_bundle):
    card, state = tmp_path / "card", tmp_path / "state"
    card.mkdir()
    config = tmp_path / "config.toml"
    # The configuration would take a bundle dated up to ten years ahead; the firmware's default is a year.
    config.write_text(f'[policy]\nbundle_ahead_days = 3650\n[card]\npath = "{card}"\nrequire_mount = false\n'
                      f'[box]\nstate_dir = "{state}"\n[keys]\norg_key = "{org_pub}"\n')

    def stick(name: str, data: bytes) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / "consentbox.cbundle").write_bytes(data)
        return tmp_path / name

    assert provision_from(load_config(config), stick("first", seal(make_bundle(1), org))).refusal is None
    org_pub.write_text(f"{other_org.public_key.to_string()}\n")  # the installed bundle no longer verifies
    ahead = make_bundle(2, created=int(time.time()) + 1000 * DAY)
    result = provision_from(load_config(config), stick("second", seal(ahead, other_org)))
    assert result.refusal is BundleRefusal.FROM_THE_FUTURE, result.detail
