"""age v1 encryption (age-encryption.org/v1) for the recordings, to X25519 recipients only.

Files written here decrypt with `age -d`, and files from `age -e -r` decrypt here. The modules
keep the layers apart: `format` parses and writes headers, `stream` seals payload chunks,
`keys` handles X25519 keys and stanzas, and `age` puts them together. This package is the only
place in ConsentBox that uses `cryptography.hazmat`.
"""

from consentbox.crypto.age import AgeReader, AgeWriter, DecryptResult, decrypt, encrypt
from consentbox.crypto.errors import (
    AgeError,
    HeaderError,
    HeaderMacError,
    KeyFormatError,
    NoIdentityMatch,
    PayloadError,
    SealingError,
    TruncatedPayload,
)
from consentbox.crypto.keys import X25519Identity, X25519Recipient, identity_file_text, parse_identity_file

__all__ = [
    "AgeError",
    "AgeReader",
    "AgeWriter",
    "DecryptResult",
    "HeaderError",
    "HeaderMacError",
    "KeyFormatError",
    "NoIdentityMatch",
    "PayloadError",
    "SealingError",
    "TruncatedPayload",
    "X25519Identity",
    "X25519Recipient",
    "decrypt",
    "encrypt",
    "identity_file_text",
    "parse_identity_file",
]
