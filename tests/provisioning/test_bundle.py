"""The signed bundle file (docs/formats.md, "Provisioning bundle"): its bytes, its signature, its strict payload.

Real Ed25519 keys. A box must accept exactly the bundles the organisation sealed and refuse every other
byte string, with the reason a person can act on: not a bundle, another key, or a signed payload that
is not a valid configuration. Nothing of the payload is parsed before its signature verifies.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re

import pytest

from consentbox.core.errors import PolicyError
from consentbox.core.policy import OnWithdrawal, Policy
from consentbox.core.provisioning import BundleRefusal, Refused
from consentbox.crypto import X25519Identity
from consentbox.crypto.signing import SignatureError
from consentbox.provisioning.bundle import (
    HEADER_BYTES,
    MAX_AUDITORS,
    MAX_BUNDLE_BYTES,
    MAX_RECIPIENTS,
    MAX_VERSION,
    open_sealed,
    read_unverified,
    seal,
)

BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
SIGNATURE_REFUSALS = {BundleRefusal.NOT_SIGNED, BundleRefusal.BAD_SIGNATURE}


def refusal(data: bytes, key) -> Refused:
    with pytest.raises(Refused) as refused:
        open_sealed(data, key)
    return refused.value


def payload_of(data: bytes) -> dict:
    return json.loads(data[HEADER_BYTES:])


def test_a_sealed_bundle_opens_to_what_was_sealed(org, make_bundle, identity, other_identity):
    bundle = make_bundle(7, recipients=(identity.recipient, other_identity.recipient),
                         policy=Policy(retention_days=7, on_withdrawal=OnWithdrawal.KEEP), existing_days=3)
    data = seal(bundle, org)
    verified = open_sealed(data, org.public_key)
    assert verified.bundle == bundle
    assert verified.sha256 == hashlib.sha256(data).hexdigest()
    assert read_unverified(data) == bundle


def test_the_file_is_the_documented_header_then_canonical_json(org, make_bundle, identity):
    data = seal(make_bundle(3), org)
    header, payload = data[:HEADER_BYTES], data[HEADER_BYTES:]
    assert HEADER_BYTES == len(b"consentbox-bundle/v1\n") + len(b"signature: ") + 88 + 2 == 122
    assert header.startswith(b"consentbox-bundle/v1\nsignature: ") and header.endswith(b"==\n\n")
    value = json.loads(payload)
    assert payload == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert value == {"version": 3, "created": "2026-11-01T00:00:00Z", "recipients": [identity.recipient.to_string()],
                     "policy": Policy().to_mapping()}  # no `retention` unless given


def test_the_signature_covers_a_context_then_the_payload_and_nothing_else(org, make_bundle, sign):
    data = seal(make_bundle(3), org)
    signature = base64.b64decode(data[len(b"consentbox-bundle/v1\nsignature: "):HEADER_BYTES - 2])
    payload = data[HEADER_BYTES:]
    org.public_key.verify(signature, b"consentbox-bundle/v1 payload\n" + payload)
    with pytest.raises(SignatureError):  # the context keeps a bundle signature from passing for anything else
        org.public_key.verify(signature, payload)
    assert sign(payload) == data  # the tests' own signing (conftest.py) is the documented layout


def test_a_bundle_signed_by_another_organisation_is_refused(org, other_org, make_bundle):
    assert refusal(seal(make_bundle(3), other_org), org.public_key).reason is BundleRefusal.BAD_SIGNATURE


def test_the_signature_is_checked_before_the_payload_is_parsed(org, other_org, sign):
    # Payloads that would each be refused as invalid, or crash a parser, if they were ever parsed.
    for payload in (b"", b"{", b"\xff\xfe", b"[" * 30_000 + b"]" * 30_000, b'{"version": ' + b"9" * 5000 + b"}"):
        assert refusal(sign(payload, other_org), org.public_key).reason is BundleRefusal.BAD_SIGNATURE


def test_every_flipped_bit_is_refused_as_unsigned_or_badly_signed(org, make_bundle):
    data = seal(make_bundle(3, existing_days=5), org)
    for position in range(len(data)):
        for bit in (0x01, 0x20, 0x80):
            hostile = bytearray(data)
            hostile[position] ^= bit
            assert refusal(bytes(hostile), org.public_key).reason in SIGNATURE_REFUSALS, (position, bit)


def test_the_signature_must_be_canonical_base64(org, make_bundle):
    # The signature's last base64 digit carries 4 unused bits: the 15 other digits that differ only there
    # decode to the same 64 bytes. A bundle file is one exact byte string (the ledger records its SHA-256),
    # so every other spelling of the signature must be refused.
    data = seal(make_bundle(3), org)
    last = data.index(b"==\n\n") - 1
    digit = BASE64.index(data[last:last + 1])
    for other in range(64):
        if other != digit and other >> 4 == digit >> 4:
            spelled = data[:last] + BASE64[other:other + 1] + data[last + 1:]
            assert refusal(spelled, org.public_key).reason is BundleRefusal.NOT_SIGNED, chr(BASE64[other])


def test_every_truncation_is_refused_as_unsigned_or_badly_signed(org, make_bundle):
    data = seal(make_bundle(3), org)
    for length in range(len(data)):
        expected = BundleRefusal.NOT_SIGNED if length < HEADER_BYTES else BundleRefusal.BAD_SIGNATURE
        assert refusal(data[:length], org.public_key).reason is expected, length


def test_bytes_appended_to_a_bundle_are_refused(org, make_bundle):
    data = seal(make_bundle(3), org)
    for tail in (b"\n", b" ", b"\x00", b'{"version": 99}'):
        assert refusal(data + tail, org.public_key).reason is BundleRefusal.BAD_SIGNATURE


@pytest.mark.parametrize("header", [
    b"", b"consentbox-bundle/v2\n", b"CONSENTBOX-BUNDLE/V1\n", b"consentbox-bundle/v1\r\n",
    b"consentbox-bundle/v1\nsignature: \n\n", b"consentbox-bundle/v1\nsignature: " + b"*" * 86 + b"==\n\n",
    b"consentbox-bundle/v1\nsignature: " + b"A" * 88 + b"\n\n",
    b"consentbox-bundle/v1\nsignature: " + b"A" * 84 + b"==\n\n",
], ids=["none", "v2", "upper-case", "crlf", "empty-signature", "not-base64", "no-padding", "short-signature"])
def test_anything_but_the_exact_header_is_not_a_signed_bundle(org, make_bundle, header):
    payload = seal(make_bundle(3), org)[HEADER_BYTES:]
    assert refusal(header + payload, org.public_key).reason is BundleRefusal.NOT_SIGNED


def test_the_size_cap_is_checked_before_anything_else(org, make_bundle, sign):
    data = seal(make_bundle(3), org)
    at_cap = sign(b" " * (MAX_BUNDLE_BYTES - HEADER_BYTES - len(data[HEADER_BYTES:])) + data[HEADER_BYTES:])
    assert len(at_cap) == MAX_BUNDLE_BYTES
    assert open_sealed(at_cap, org.public_key).bundle == make_bundle(3)  # JSON allows the leading spaces
    over = sign(b" " * (MAX_BUNDLE_BYTES - HEADER_BYTES + 1 - len(data[HEADER_BYTES:])) + data[HEADER_BYTES:])
    assert refusal(over, org.public_key).reason is BundleRefusal.TOO_LARGE
    assert refusal(b"\x00" * (MAX_BUNDLE_BYTES + 1), org.public_key).reason is BundleRefusal.TOO_LARGE


def mutated(make_bundle, change) -> bytes:
    """The canonical payload of a good bundle, changed by `change(value)` (which edits the dict)."""
    value = json.loads(make_bundle(3, existing_days=5).payload())
    change(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _set(path: str, new):
    def change(value):
        *parents, last = path.split(".")
        for name in parents:
            value = value[name]
        value[last] = new
    return change


def _drop(name: str):
    return lambda value: value.pop(name)


SECRET = "AGE-SECRET-KEY-1XDW3JMN8TX7PZSADTTXQ0MQGJ8J4KZWUKPK7YHY7GME95PZ5MPKQCF8MU8"
#: Any of a secret key's data in a message (a message may name the form, "AGE-SECRET-KEY-1…").
ECHOED_SECRET = re.compile(r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]|" + SECRET[16:26], re.IGNORECASE)

#: Signed payloads that are not a configuration the box may take: each is refused as invalid contents.
INVALID_PAYLOADS = {
    "json-cut-short": lambda make: b'{"version": 3, "created": ',
    "json-not-utf8": lambda make: b'{"version": 3, "\xff": 1}',
    "json-an-array": lambda make: b"[]",
    "json-a-string": lambda make: b'"consentbox"',
    "json-empty": lambda make: b"",
    "json-repeated-field": lambda make: make(3).payload().replace(b'{"created"', b'{"version":9,"created"'),
    "json-nan": lambda make: mutated(make, _set("version", 0)).replace(b'"version":0', b'"version":NaN'),
    "json-infinity": lambda make: mutated(make, _set("policy.record_hold", 0)).replace(b'"record_hold":0',
                                                                                       b'"record_hold":Infinity'),
    "json-nested-too-deep": lambda make: b"[" * 30_000 + b"]" * 30_000,
    "json-integer-too-long": lambda make: mutated(make, _set("version", 0)).replace(b'"version":0',
                                                                                    b'"version":' + b"9" * 5000),
    "toml-inside": lambda make: b'version = 3\ncreated = 2026-11-01T00:00:00Z\n[policy]\nretention_days = 7\n',
    "garbage-inside": lambda make: bytes(range(256)) * 4,
    "unknown-field-top": lambda make: mutated(make, _set("recordings_to", "http://example.org/upload")),
    "unknown-field-policy": lambda make: mutated(make, _set("policy.record_without_consent", True)),
    "unknown-field-retention": lambda make: mutated(make, _set("retention.keep_forever", True)),
    "missing-version": lambda make: mutated(make, _drop("version")),
    "missing-created": lambda make: mutated(make, _drop("created")),
    "missing-recipients": lambda make: mutated(make, _drop("recipients")),
    "missing-policy": lambda make: mutated(make, _drop("policy")),
    "version-zero": lambda make: mutated(make, _set("version", 0)),
    "version-negative": lambda make: mutated(make, _set("version", -4)),
    "version-beyond-2^53": lambda make: mutated(make, _set("version", MAX_VERSION + 1)),
    "version-a-string": lambda make: mutated(make, _set("version", "4")),
    "version-a-float": lambda make: mutated(make, _set("version", 4.0)),
    "version-true": lambda make: mutated(make, _set("version", True)),
    "created-not-a-time": lambda make: mutated(make, _set("created", "yesterday")),
    "created-a-number": lambda make: mutated(make, _set("created", 1_790_000_000)),
    "created-not-utc": lambda make: mutated(make, _set("created", "2026-11-01T00:00:00+02:00")),
    "recipients-empty": lambda make: mutated(make, _set("recipients", [])),
    "recipients-not-a-list": lambda make: mutated(make, _set("recipients", "age1")),
    "recipients-too-many": lambda make: mutated(make, _set("recipients", [
        X25519Identity.generate(secret=bytes([n]) * 32).recipient.to_string() for n in range(MAX_RECIPIENTS + 1)])),
    "recipient-repeated": lambda make: mutated(make, lambda v: v["recipients"].append(v["recipients"][0])),
    "recipient-not-age1": lambda make: mutated(make, _set("recipients", ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"])),
    "recipient-bad-checksum": lambda make: mutated(make, _set("recipients", ["age1" + "q" * 58])),
    "recipient-a-number": lambda make: mutated(make, _set("recipients", [1])),
    "recipient-a-secret-key": lambda make: mutated(make, _set("recipients", [SECRET])),
    "recipients-a-secret-key": lambda make: mutated(make, _set("recipients", SECRET)),
    "recipient-a-secret-key-in-a-list": lambda make: mutated(make, _set("recipients", [[SECRET]])),
    "policy-not-a-table": lambda make: mutated(make, _set("policy", [])),
    "policy-retention-zero": lambda make: mutated(make, _set("policy.retention_days", 0)),
    "policy-retention-over-ten-years": lambda make: mutated(make, _set("policy.retention_days", 3651)),
    "policy-bundle-ahead-zero": lambda make: mutated(make, _set("policy.bundle_ahead_days", 0)),
    "policy-channels-zero": lambda make: mutated(make, _set("policy.channels", 0)),
    "policy-rate-a-string": lambda make: mutated(make, _set("policy.rate", "48000")),
    "policy-hold-negative": lambda make: mutated(make, _set("policy.record_hold", -1)),
    "policy-on-withdrawal-unknown": lambda make: mutated(make, _set("policy.on_withdrawal", "publish")),
    "retention-not-a-table": lambda make: mutated(make, _set("retention", 5)),
    "retention-negative": lambda make: mutated(make, _set("retention.existing_days", -1)),
    "retention-over-ten-years": lambda make: mutated(make, _set("retention.existing_days", 3651)),
    "retention-a-string": lambda make: mutated(make, _set("retention.existing_days", "5")),
    "auditors-not-a-list": lambda make: mutated(make, _set("auditors", "age1")),
    "auditors-too-many": lambda make: mutated(make, _set("auditors", [
        X25519Identity.generate(secret=bytes([n]) * 32).recipient.to_string() for n in range(MAX_AUDITORS + 1)])),
    "auditor-repeated": lambda make: mutated(make, _set("auditors", [X25519Identity.generate(
        secret=bytes(32)).recipient.to_string()] * 2)),
    "auditor-not-age1": lambda make: mutated(make, _set("auditors", ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"])),
    "auditor-a-number": lambda make: mutated(make, _set("auditors", [7])),
    "auditor-a-secret-key": lambda make: mutated(make, _set("auditors", [SECRET])),
}


def test_the_bounds_the_cases_below_go_past_are_the_documented_ones():
    # docs/formats.md, "Provisioning bundle": version 1 to 2^53-1, 1 to 64 recipients, 0 to 64 auditors.
    assert (MAX_VERSION, MAX_RECIPIENTS, MAX_AUDITORS) == (2**53 - 1, 64, 64)


@pytest.mark.parametrize("case", INVALID_PAYLOADS)
def test_a_signed_payload_that_is_not_a_valid_configuration_is_refused_as_invalid(org, make_bundle, sign, case):
    refused = refusal(sign(INVALID_PAYLOADS[case](make_bundle)), org.public_key)
    assert refused.reason is BundleRefusal.INVALID
    message = str(refused)
    assert "\n" not in message and len(message) < 400
    assert not ECHOED_SECRET.search(message), f"a secret key was echoed: {message}"


def test_a_missing_policy_key_takes_the_firmware_default(org, make_bundle, sign):
    payload = mutated(make_bundle, lambda value: value.__setitem__("policy", {"retention_days": 9}))
    bundle = open_sealed(sign(payload), org.public_key).bundle
    assert bundle.policy == Policy(retention_days=9) and bundle.existing_days == 5


@pytest.mark.parametrize("change, message", [
    (dict(version=0), "bundle version must be 1"),
    (dict(version=MAX_VERSION + 1), "bundle version must be 1"),
    (dict(recipients=()), "1 to 64 recipients"),
    (dict(existing_days=-1), "existing_days must be 0 to 3650"),
    (dict(existing_days=3651), "existing_days must be 0 to 3650"),
], ids=["version-zero", "version-too-large", "no-recipients", "existing-days-negative", "existing-days-too-long"])
def test_seal_refuses_a_bundle_no_box_would_accept(org, make_bundle, change, message):
    good = make_bundle(3)
    with pytest.raises(PolicyError, match=message):
        seal(dataclasses.replace(good, **change), org)


def test_auditors_are_signed_with_the_bundle_and_absent_means_none(org, make_bundle, sign, identity,
                                                                   other_identity):
    audited = dataclasses.replace(make_bundle(3), auditors=(other_identity.recipient, identity.recipient))
    data = seal(audited, org)
    assert payload_of(data)["auditors"] == [other_identity.recipient.to_string(), identity.recipient.to_string()]
    assert open_sealed(data, org.public_key).bundle == audited
    plain = seal(make_bundle(3), org)
    assert "auditors" not in payload_of(plain)  # a bundle without auditors reads as it did before them
    assert open_sealed(plain, org.public_key).bundle.auditors == ()
    assert open_sealed(sign(mutated(make_bundle, _set("auditors", []))), org.public_key).bundle.auditors == ()


def test_seal_refuses_too_many_auditors_or_one_named_twice(org, make_bundle, identity):
    many = tuple(X25519Identity.generate(secret=bytes([n]) * 32).recipient for n in range(1, MAX_AUDITORS + 2))
    with pytest.raises(PolicyError, match="at most 64 auditors"):
        seal(dataclasses.replace(make_bundle(3), auditors=many), org)
    with pytest.raises(PolicyError, match="each auditor once"):
        seal(dataclasses.replace(make_bundle(3), auditors=(identity.recipient, identity.recipient)), org)
    assert open_sealed(seal(dataclasses.replace(make_bundle(3), auditors=many[:-1]), org),
                       org.public_key).bundle.auditors == many[:-1]


def test_seal_refuses_a_recipient_named_twice(org, make_bundle, identity):
    with pytest.raises(PolicyError, match="each recipient once"):
        seal(make_bundle(3, recipients=(identity.recipient, identity.recipient)), org)


def test_a_bundle_with_the_most_recipients_is_far_below_the_cap(org, make_bundle):
    many = tuple(X25519Identity.generate(secret=bytes([n]) * 32).recipient for n in range(1, MAX_RECIPIENTS + 1))
    data = seal(make_bundle(3, recipients=many), org)
    assert len(data) < 6 * 1024 < MAX_BUNDLE_BYTES
    assert len(open_sealed(data, org.public_key).bundle.recipients) == MAX_RECIPIENTS
