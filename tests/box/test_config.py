"""The box's configuration: shipped defaults, one TOML file over them, one-line errors naming keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentbox.box.config import load_config
from consentbox.core.errors import PolicyError
from consentbox.core.policy import OnWithdrawal


def test_defaults_load():
    config = load_config()
    assert config.panel.seats == 3 and not config.panel.shared_consent
    assert config.policy.default_parties == 2 and config.recipients == ()
    assert config.state_dir == Path("/var/lib/consentbox")
    assert config.require_mount and config.card_file_systems == {"exfat", "vfat"}  # deploy/README.md's fstab line


def test_a_file_overrides_only_what_it_names(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('[policy]\non_withdrawal = "keep"\n[panel]\nconsent_mode = "shared"\n[card]\npath = "/srv/card"\n'
                    'file_systems = ["ext4"]\n[box]\nstate_dir = "/srv/box"\n')
    config = load_config(path)
    assert config.policy.on_withdrawal is OnWithdrawal.KEEP and config.policy.rate == 48_000
    assert config.panel.shared_consent and config.panel.seats == 1
    assert str(config.card_path) == "/srv/card" and config.state_dir == Path("/srv/box")
    assert config.card_file_systems == {"ext4"} and config.require_mount


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sound]\nx = 1\n", "unknown section [sound]"),
        ("[panel]\nled = 1\n", "unknown key panel.led"),
        ("[policy]\nrate = 0\n", "key rate: 0 is out of range"),
        ("[policy]\nmystery = 1\n", "unknown key 'mystery'"),
        ('[panel]\nconsent_mode = "both"\n', "key panel.consent_mode: expected 'separate' or 'shared'"),
        ("[panel]\nconsent_pins = []\n", "key panel.consent_pins: needs at least one"),
        ('[panel]\nstatus_pins = ["GPIO6"]\n', "key panel.status_pins: needs exactly 3 pins"),
        ("[panel]\nbounce_time = 3\n", "key panel.bounce_time: expected 0 to 0.5 seconds"),
        ('[card]\nrequire_mount = "yes"\n', "key card.require_mount: expected true or false"),
        ("[card]\nfile_systems = []\n", "key card.file_systems: expected at least one file system type"),
        ('[card]\nfile_systems = "exfat"\n', "key card.file_systems: expected a list of strings"),
        ('[keys]\nrecipients = ["age1nope"]\n', "key keys.recipients: age recipient 'age1nope' is not valid"),
        ("[box]\nstate_dir = 3\n", "key box.state_dir: expected a non-empty string"),
        ("[box]\nledger = 1\n", "unknown key box.ledger"),
        ("[policy\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_one_line_error_naming_file_and_key(tmp_path: Path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)
    assert "\n" not in str(caught.value)
