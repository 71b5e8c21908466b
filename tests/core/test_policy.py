"""Policy values are validated once, and a bad one names its key."""

from __future__ import annotations

import pytest

from consentbox.core.errors import ConsentBoxError, PolicyError
from consentbox.core.policy import MAX_SEGMENT_BYTES, OnWithdrawal, Policy, SampleFormat
from consentbox.core.session import SessionMachine


def test_defaults_are_those_of_the_spec():
    policy = Policy()
    assert (policy.default_parties, policy.consent_timeout, policy.pause_timeout, policy.max_session) == (
        2, 180.0, 1800.0, 14400.0)
    assert policy.on_withdrawal is OnWithdrawal.DESTROY
    assert (policy.record_hold, policy.end_hold, policy.withdraw_hold, policy.shared_tap_gap) == (1, 2, 2, 1)


def test_round_trip_through_a_mapping():
    policy = Policy(default_parties=3, on_withdrawal=OnWithdrawal.KEEP, sample_format=SampleFormat.S32_LE)
    assert Policy.from_mapping(policy.to_mapping()) == policy


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"default_parties": 0}, "key default_parties: 0 is out of range"),
        ({"default_parties": True}, "key default_parties: expected a whole number"),
        ({"default_parties": "2"}, "key default_parties: expected a whole number"),
        ({"consent_timeout": float("nan")}, "key consent_timeout: expected a number of seconds"),
        ({"max_session": -1}, "key max_session: -1 s is out of range"),
        ({"on_withdrawal": "shred"}, "key on_withdrawal: 'shred' is not 'destroy' or 'keep'"),
        ({"record_hold": 2.0, "end_hold": 2.0}, "key end_hold: 2.0 s must be longer than record_hold"),
        ({"default_parties": 5, "max_parties": 4}, "key default_parties: 5 is more than max_parties"),
        ({"sample_format": "U8"}, "key sample_format: 'U8' is not 'S16_LE' or 'S32_LE'"),
        ({"segment_bytes": 2 << 30}, "key segment_bytes: 2147483648 is out of range"),
        ({"rate": 44100.0}, "key rate: expected a whole number"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(values, message):
    with pytest.raises(PolicyError) as caught:
        Policy.from_mapping(values, source="/etc/consentbox/config.toml")
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert text.startswith("/etc/consentbox/config.toml")
    assert isinstance(caught.value, (ConsentBoxError, ValueError))


def test_more_default_parties_than_separate_seats_is_refused():
    with pytest.raises(PolicyError, match="default_parties: 3 parties cannot consent on 2 separate"):
        SessionMachine(Policy(default_parties=3), seats=2)
    assert SessionMachine(Policy(default_parties=3), seats=1, shared_consent=True).party_limit == 12


def test_audio_format_arithmetic():
    policy = Policy(rate=48_000, channels=2, sample_format=SampleFormat.S16_LE, period_frames=960)
    assert policy.frame_bytes == 4 and policy.period_seconds == 0.02


def test_a_segment_may_be_1_gib_and_not_a_byte_more():
    # docs/product.md and deploy/README.md: files of at most 1 GiB, within FAT32's 4 GiB.
    assert Policy().segment_bytes == MAX_SEGMENT_BYTES == 1 << 30
    assert Policy(segment_bytes=1 << 30).segment_bytes == 1 << 30
    with pytest.raises(PolicyError, match="segment_bytes: 1073741825 is out of range"):
        Policy(segment_bytes=(1 << 30) + 1)
