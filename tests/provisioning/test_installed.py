"""The installed configuration: `provisioned.cbundle` in the state directory, verified again at every
start, and what the box records under (the bundle once there is one, never the configuration's own).

Real keys and files; the state directory is a fresh temporary one.
"""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from consentbox.box.config import load_config
from consentbox.box.settings import ProvisioningFeed, load_settings
from consentbox.core.policy import Policy
from consentbox.core.provisioning import BundleRefusal, Refused
from consentbox.provisioning.bundle import seal
from consentbox.provisioning.installed import InstalledBundleError, Result, install, read_installed, write_result
from consentbox.state.files import INSTALLED_BUNDLE, PROVISIONING_RESULT


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def config(state, org_pub, other_identity):
    """A box configured (before provisioning) with its own policy and the other supervisor's key."""
    return dataclasses.replace(load_config(), state_dir=state, org_key=org_pub, policy=Policy(retention_days=60),
                               recipients=(other_identity.recipient,))


def test_nothing_installed_reads_as_none(state, org):
    assert read_installed(state, org.public_key) is None


def test_an_installed_bundle_is_read_back_verified(state, org, make_bundle):
    data = seal(make_bundle(4), org)
    install(state, data)
    assert (state / INSTALLED_BUNDLE).read_bytes() == data
    assert read_installed(state, org.public_key).bundle == make_bundle(4)
    assert stat.S_IMODE((state / INSTALLED_BUNDLE).stat().st_mode) == 0o640
    assert sorted(p.name for p in state.iterdir()) == [INSTALLED_BUNDLE], "no temporary file is left behind"


def test_install_replaces_the_bundle_whole(state, org, make_bundle):
    install(state, seal(make_bundle(4), org))
    newer = seal(make_bundle(5), org)
    install(state, newer)
    assert (state / INSTALLED_BUNDLE).read_bytes() == newer
    assert sorted(p.name for p in state.iterdir()) == [INSTALLED_BUNDLE]


@pytest.mark.parametrize("damage", ["a payload byte", "a signature byte", "cut short", "another organisation"])
def test_an_installed_bundle_that_no_longer_verifies_is_refused(state, org, other_org, make_bundle, damage):
    data = bytearray(seal(make_bundle(4), other_org if damage == "another organisation" else org))
    if damage == "a payload byte":
        data[-3] ^= 1
    elif damage == "a signature byte":
        data[40] = ord("A") if data[40] != ord("A") else ord("B")
    elif damage == "cut short":
        del data[-10:]
    (state / INSTALLED_BUNDLE).write_bytes(bytes(data))
    with pytest.raises(InstalledBundleError) as error:
        read_installed(state, org.public_key)
    assert isinstance(error.value, Refused) and error.value.reason is BundleRefusal.BAD_SIGNATURE
    assert str(state / INSTALLED_BUNDLE) in str(error.value)


@pytest.mark.parametrize("result", [
    Result(None, "installed consentbox-v4.cbundle: version 4, 2 recipient(s)", 4),
    *(Result(reason, f"{reason.text}: details", None) for reason in BundleRefusal),
    Result(BundleRefusal.NO_BUNDLE, "no bundle on the stick", None, reminder=True),
], ids=lambda result: "installed" if result.refusal is None else result.refusal.name + "-reminder" * result.reminder)
def test_a_result_round_trips_through_its_file(state, result):
    write_result(state, result)
    assert Result.from_json((state / PROVISIONING_RESULT).read_bytes()) == result
    assert stat.S_IMODE((state / PROVISIONING_RESULT).stat().st_mode) == 0o640


def test_an_unprovisioned_box_records_under_its_configuration(config, other_identity):
    settings = load_settings(config)
    assert (settings.policy, settings.recipients, settings.version, settings.problem) == (
        Policy(retention_days=60), (other_identity.recipient,), 0, "")


def test_once_a_bundle_is_installed_the_configurations_policy_and_recipients_are_not_used(
        config, state, org, make_bundle, identity):
    install(state, seal(make_bundle(4, policy=Policy(retention_days=7)), org))
    settings = load_settings(config)
    assert (settings.policy, settings.recipients, settings.version, settings.problem) == (
        Policy(retention_days=7), (identity.recipient,), 4, "")


@pytest.mark.parametrize("tamper", ["bundle edited", "org key replaced", "org key removed"])
def test_an_installed_bundle_that_no_longer_verifies_is_not_obeyed_and_not_replaced_by_the_configuration(
        config, state, org, other_org, make_bundle, tamper):
    data = seal(make_bundle(4), org)
    install(state, data)
    if tamper == "bundle edited":
        (state / INSTALLED_BUNDLE).write_bytes(data.replace(b'"retention_days":30', b'"retention_days":99'))
    elif tamper == "org key replaced":
        config.org_key.write_text(other_org.public_key.to_string() + "\n")
    else:
        config.org_key.unlink()
    settings = load_settings(config)
    assert settings.recipients == () and settings.version == 0, "no recipients: the box must not record"
    assert settings.problem.startswith("installed bundle not obeyed: ")


def test_the_running_box_sees_each_new_install_and_each_new_result_once(config, state, org, make_bundle, identity):
    feed = ProvisioningFeed(config, parts=lambda policy, now: None)
    assert feed.new_settings() is None and feed.new_result() is None
    install(state, seal(make_bundle(4), org))
    write_result(state, Result(None, "installed", 4))
    settings = feed.new_settings()
    assert settings is not None and settings.version == 4 and settings.recipients == (identity.recipient,)
    assert feed.new_result() == Result(None, "installed", 4)
    assert feed.new_settings() is None and feed.new_result() is None
    write_result(state, Result(BundleRefusal.NOT_NEWER, "again", None))  # a refusal installs nothing
    assert feed.new_settings() is None and feed.new_result() == Result(BundleRefusal.NOT_NEWER, "again", None)
    install(state, seal(make_bundle(5), org))
    assert feed.new_settings().version == 5
