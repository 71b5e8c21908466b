"""A software P-256 key standing in for a hardware token's (a YubiKey's under age-plugin-yubikey), for p256tag tests."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def token_key() -> ec.EllipticCurvePrivateKey:
    """A new P-256 private key, as a token would hold it."""
    return ec.generate_private_key(ec.SECP256R1())


def token_point(key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """The compressed point of `key` (a new one if None): what an `age1tag1…` recipient carries."""
    return (key or token_key()).public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
