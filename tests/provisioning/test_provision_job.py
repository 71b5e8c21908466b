"""`consentbox provision` (jobs/provision.py) on a box whose installed bundle no longer verifies: the
configuration's policy never stands in for the bundle, not even for how far ahead a new bundle may be dated.
Its exit statuses; and the reminders of a refusal, written until the stick is gone or for at most the cap."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from consentbox.box.config import load_config
from consentbox.box.settings import StateWatch
from consentbox.cli.consentbox import main
from consentbox.core.provisioning import REMIND_EVERY_SECONDS, BundleRefusal
from consentbox.jobs.provision import provision_from, remind_until_removed
from consentbox.provisioning.bundle import seal
from consentbox.provisioning.installed import Result
from consentbox.state.files import PROVISIONING_RESULT

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


def test_the_command_exits_0_installed_2_refused_and_1_on_any_other_error(tmp_path: Path, org, org_pub, make_bundle,
                                                                           capsys):
    stick, card, state = tmp_path / "stick", tmp_path / "card", tmp_path / "state"
    stick.mkdir()
    card.mkdir()
    (stick / "consentbox.cbundle").write_bytes(seal(make_bundle(1), org))
    config = tmp_path / "config.toml"
    config.write_text(f'[card]\npath = "{card}"\nrequire_mount = false\n[box]\nstate_dir = "{state}"\n'
                      f'[keys]\norg_key = "{org_pub}"\n')

    assert main(["provision", "--config", str(config), str(stick)]) == 0
    said = capsys.readouterr()
    assert said.out.startswith("consentbox: installed 'consentbox.cbundle': version 1") and said.err == ""
    assert main(["provision", "--config", str(config), str(stick)]) == 2  # the same version again
    said = capsys.readouterr()
    assert said.err.startswith("consentbox: provisioning refused (code 3): ") and said.err.count("\n") == 1
    # Neither installed nor refused: the box's state directory cannot be used (here a file stands there).
    config.write_text(config.read_text().replace(str(state), str(stick / "consentbox.cbundle")))
    assert main(["provision", "--config", str(config), str(stick)]) == 1
    said = capsys.readouterr()
    assert said.err.startswith("consentbox: ") and "refused" not in said.err and said.err.count("\n") == 1


def test_a_refusal_is_written_again_as_a_reminder_until_the_stick_is_gone(tmp_path: Path):
    state, stick = tmp_path / "state", tmp_path / "stick"
    state.mkdir()
    stick.mkdir()
    refused = Result(BundleRefusal.NO_BUNDLE, "no bundle on the stick", None)
    watch = StateWatch(state / PROVISIONING_RESULT)  # as the running box watches it
    written: list[Result] = []

    def sleep(seconds: float) -> None:
        assert seconds == REMIND_EVERY_SECONDS
        time.sleep(0.05)  # a file system's times are coarse; the reminders come seconds apart
        if watch.changed():
            written.append(Result.from_json(watch.path.read_bytes()))
        if len(written) == 3:
            stick.rmdir()  # pulled out

    remind_until_removed(state, stick, refused, sleep=sleep)
    assert written == [dataclasses.replace(refused, reminder=True)] * 3


def test_the_reminders_stop_after_the_cap_if_the_stick_never_goes(tmp_path: Path):
    state, stick = tmp_path / "state", tmp_path / "stick"
    state.mkdir()
    stick.mkdir()
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    remind_until_removed(state, stick, Result(BundleRefusal.NOT_NEWER, "again", None), every=10.0, cap=60.0,
                         monotonic=lambda: now[0], sleep=sleep)
    assert now[0] == 60.0 and len(sleeps) == 6
    assert Result.from_json((state / PROVISIONING_RESULT).read_bytes()).reminder
