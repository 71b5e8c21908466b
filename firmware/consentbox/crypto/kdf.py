"""HKDF-SHA-256 with 32 bytes of output, the one key derivation age uses everywhere."""

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_SIZE = 32


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes) -> bytes:
    """Derive a 32-byte key from `ikm` with HKDF-SHA-256 (RFC 5869), as the age spec defines it."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=info).derive(ikm)
