"""The device signing key: Ed25519 by RFC 8032's vectors, a 0600 key file never overwritten, strict text forms."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from consentbox.crypto.signing import (
    PUBLIC_KEY_PREFIX,
    DevicePublicKey,
    DeviceSigningKey,
    SignatureError,
    SigningKeyError,
)

# RFC 8032 section 7.1, tests 1 and 2: (secret, public, message, signature).
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
     "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da0"
     "85ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors(secret, public, message, signature):
    key = DeviceSigningKey.generate(secret=bytes.fromhex(secret))
    assert key.public_key.raw == bytes.fromhex(public)
    assert key.sign(bytes.fromhex(message)) == bytes.fromhex(signature)
    key.public_key.verify(bytes.fromhex(signature), bytes.fromhex(message))


def test_a_changed_message_or_signature_or_key_does_not_verify():
    key = DeviceSigningKey.generate(secret=bytes(32))
    signature = key.sign(b"consent 1")
    with pytest.raises(SignatureError):
        key.public_key.verify(signature, b"consent 2")
    with pytest.raises(SignatureError):
        key.public_key.verify(bytes([signature[0] ^ 1]) + signature[1:], b"consent 1")
    with pytest.raises(SignatureError):
        DeviceSigningKey.generate(secret=bytes([1] * 32)).public_key.verify(signature, b"consent 1")
    with pytest.raises(SignatureError):
        key.public_key.verify(signature[:63], b"consent 1")


def test_generated_keys_differ():
    assert DeviceSigningKey.generate().public_key != DeviceSigningKey.generate().public_key


def test_public_key_text_round_trips_and_is_one_line():
    key = DeviceSigningKey.generate(secret=bytes(range(32))).public_key
    text = key.to_string()
    assert text.startswith(PUBLIC_KEY_PREFIX) and "\n" not in text
    assert DevicePublicKey.parse(text) == key
    assert DevicePublicKey.parse(f"  {text}\n") == key
    assert str(key) == text


@pytest.mark.parametrize("text", [
    "",
    "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
    PUBLIC_KEY_PREFIX,
    PUBLIC_KEY_PREFIX + "not base64!",
    PUBLIC_KEY_PREFIX + base64.b64encode(bytes(31)).decode(),
    PUBLIC_KEY_PREFIX + base64.b64encode(bytes(32)).decode().rstrip("="),
])
def test_malformed_public_keys_are_refused(text):
    with pytest.raises(SigningKeyError):
        DevicePublicKey.parse(text)


def test_a_non_canonical_base64_spelling_is_refused():
    # The last character of 32 bytes' base64 carries 2 unused bits; only the spelling with them
    # clear is the key, so each key has exactly one text form.
    canonical = base64.b64encode(bytes(range(32))).decode()
    assert canonical.endswith("=")
    other = canonical[:-2] + chr(ord(canonical[-2]) + 1) + "="
    assert base64.b64decode(other) == bytes(range(32))
    with pytest.raises(SigningKeyError, match="canonical"):
        DevicePublicKey.parse(PUBLIC_KEY_PREFIX + other)


def test_save_makes_a_0600_pkcs8_file_that_loads(tmp_path: Path):
    key = DeviceSigningKey.generate(secret=bytes(range(32)))
    path = tmp_path / "device.key"
    old_umask = os.umask(0o000)  # a careless umask must not widen the file
    try:
        key.save(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    loaded = DeviceSigningKey.load(path)
    assert loaded.public_key == key.public_key
    assert loaded.sign(b"x") == key.sign(b"x")


def test_save_never_overwrites(tmp_path: Path):
    path = tmp_path / "device.key"
    DeviceSigningKey.generate().save(path)
    before = path.read_bytes()
    with pytest.raises(SigningKeyError, match="already exists"):
        DeviceSigningKey.generate().save(path)
    assert path.read_bytes() == before


def test_load_or_create_creates_once_then_loads(tmp_path: Path):
    path = tmp_path / "device.key"
    first = DeviceSigningKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert DeviceSigningKey.load_or_create(path).public_key == first.public_key


def test_a_key_file_others_can_read_is_refused(tmp_path: Path):
    path = tmp_path / "device.key"
    DeviceSigningKey.generate().save(path)
    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match=r"mode 0644\): chmod 600"):
        DeviceSigningKey.load(path)


@pytest.mark.parametrize("content", [b"", b"not a key\n", bytes(32)])
def test_a_key_file_that_is_not_an_ed25519_pem_is_refused(tmp_path: Path, content: bytes):
    path = tmp_path / "device.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(SigningKeyError, match="not a PKCS#8 PEM private key"):
        DeviceSigningKey.load(path)


def test_an_x25519_pem_is_not_a_device_key(tmp_path: Path):
    # PKCS#8 DER of an X25519 key (OID 1.3.101.110; Ed25519 is 1.3.101.112), made by hand.
    der = bytes.fromhex("302e020100300506032b656e04220420") + bytes(range(32))
    path = tmp_path / "device.key"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der) + b"\n-----END PRIVATE KEY-----\n")
    path.chmod(0o600)
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        DeviceSigningKey.load(path)


def test_repr_never_shows_the_secret():
    key = DeviceSigningKey.generate(secret=bytes(range(32)))
    assert "PRIVATE" not in repr(key) and bytes(range(32)).hex() not in repr(key)
    assert key.public_key.to_string() in repr(key)
