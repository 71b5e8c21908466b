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


def test_each_seat_has_its_led_or_none_has(tmp_path: Path):
    path = tmp_path / "config.toml"
    assert load_config().panel.seat_leds == ("GPIO24", "GPIO25", "GPIO12")
    path.write_text('[panel]\nconsent_pins = ["GPIO27", "GPIO22"]\n')  # seats the shipped pins outnumber
    assert load_config(path).panel.seat_leds == ("GPIO24", "GPIO25")
    path.write_text('[panel]\nconsent_mode = "shared"\n')
    assert load_config(path).panel.seat_leds == ("GPIO24",)
    path.write_text("[panel]\nseat_led_pins = []\n")  # a panel wired before seat LEDs
    assert load_config(path).panel.seat_leds == ()
    # A pin the panel does not use (a shared button's spare CONSENT pins) may be a seat LED's.
    path.write_text('[panel]\nconsent_mode = "shared"\nseat_led_pins = ["GPIO22"]\n')
    assert load_config(path).panel.seat_leds == ("GPIO22",)


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
        ('[panel]\nseat_led_pins = ["GPIO24"]\n', "key panel.seat_led_pins: 1 pin(s) for 3 CONSENT buttons"),
        ('[panel]\nseat_led_pins = "GPIO24"\n', "key panel.seat_led_pins: expected a list of strings"),
        ('[panel]\nseat_led_pins = ["GPIO24", "GPIO17", "GPIO12"]\n',
         "key panel.seat_led_pins[2]: GPIO17 is already panel.record_pin;"),
        ('[panel]\nseat_led_pins = ["BCM27", "GPIO25", "GPIO12"]\n',
         "key panel.seat_led_pins[1]: BCM27 is already panel.consent_pins[1];"),
        ('[panel]\nbuzzer_pin = "25"\n', "key panel.buzzer_pin: 25 is already panel.seat_led_pins[2];"),
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


def test_recipients_of_every_type_are_taken_and_never_post_quantum_with_classic(tmp_path: Path, pq_identity,
                                                                                 other_pq_identity, identity):
    path = tmp_path / "config.toml"
    post_quantum = [pq_identity.recipient, other_pq_identity.recipient]
    path.write_text(f"[keys]\nrecipients = {[key.to_string() for key in post_quantum]}\n".replace("'", '"'))
    assert load_config(path).recipients == tuple(post_quantum)
    path.write_text(f'[keys]\nrecipients = ["{pq_identity.recipient.to_string()}", '
                    f'"{identity.recipient.to_string()}"]\n')
    with pytest.raises(PolicyError, match=r"config.toml key keys.recipients: incompatible recipients: mlkem768x25519 "
                                          r"\(post-quantum\) and X25519 \(classic\)") as caught:
        load_config(path)
    assert "\n" not in str(caught.value)
