"""What counts as a secret key in a message, and what does not (the commands' side: tests/admin/test_secret_keys.py)."""

from __future__ import annotations

import pytest

from consentbox.crypto import X25519Identity
from consentbox.crypto.exposure import SECRET_KEY, holds_secret, safe_message, shown
from consentbox.crypto.signing import DeviceSigningKey, OrgSigningKey

IDENTITY = X25519Identity.generate(secret=bytes(range(32)))
DEVICE_PEM = DeviceSigningKey.generate(secret=bytes(32)).pem().decode()


@pytest.mark.parametrize("text", [
    IDENTITY.to_string(),
    IDENTITY.to_string().lower(),
    f"age:{IDENTITY.to_string()}",
    f"  '{IDENTITY.to_string()}'  ",
    "Age-Secret-Key-1",  # the prefix alone: a key cut short is still a key given
    "AGE-SECRET-KEY-PQ-1QQQQ",
    DEVICE_PEM,
    DEVICE_PEM.splitlines()[1],  # the device key's base64 line without its PEM lines
    bytes.fromhex("302e020100300506032b657004220420").hex() + "00" * 32,
    OrgSigningKey.generate(secret=bytes(32)).pem(b"passphrase").decode(),
    "-----BEGIN OPENSSH PRIVATE KEY-----",
])
def test_secret_keys_are_recognised_anywhere_in_any_case(text):
    assert holds_secret(text)
    assert shown(text) == SECRET_KEY
    assert shown([text]) == SECRET_KEY
    assert safe_message(f"cannot open {text}: no such file") == f"an argument or a file given holds {SECRET_KEY}"


@pytest.mark.parametrize("text", [
    IDENTITY.recipient.to_string(),
    str(DeviceSigningKey.generate(secret=bytes(32)).public_key),
    "keys.txt line 2: not an age X25519 secret key: it must start with AGE-SECRET-KEY-1…",
    "keys.txt: no AGE-SECRET-KEY-1… line found: not an age identity file",
    "device key /var/lib/consentbox/device.key is not a PKCS#8 PEM private key",
])
def test_public_keys_and_messages_that_name_the_form_are_shown(text):
    assert not holds_secret(text)
    assert safe_message(text) == text


def test_other_values_are_quoted_and_cut():
    assert shown("age1notakey") == "'age1notakey'"
    assert shown("x\n" * 100) == repr("x\n" * 100)[:80] + "…"
