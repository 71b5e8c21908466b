"""age v1 encryption (age-encryption.org/v1) for the recordings, to X25519, post-quantum and token recipients.

Files written here decrypt with `age -d`, and files from `age -e -r` decrypt here. The modules
keep the layers apart: `format` parses and writes headers, `stream` seals payload chunks,
`keys` handles X25519 keys and stanzas, `hpke_keys` the HPKE-based mlkem768x25519 and p256tag
ones, `recipients` reads any of them from its string, and `age` puts them together. This package is the only
place in ConsentBox that uses `cryptography.hazmat`.
"""

from consentbox.crypto.age import AgeReader, AgeWriter, DecryptResult, decrypt, encrypt
from consentbox.crypto.errors import (
    AgeError,
    HeaderError,
    HeaderMacError,
    IncompatibleRecipients,
    KeyFormatError,
    NoIdentityMatch,
    PayloadError,
    SealingError,
    TruncatedPayload,
    UnsupportedKey,
)
from consentbox.crypto.hpke_keys import MLKEM768X25519Identity, MLKEM768X25519Recipient, P256TagRecipient
from consentbox.crypto.keys import X25519Identity, X25519Recipient
from consentbox.crypto.recipients import (
    Identity,
    Recipient,
    check_compatible,
    describe_recipient,
    identity_file_text,
    parse_identity,
    parse_identity_file,
    parse_recipient,
)

__all__ = [
    "AgeError",
    "AgeReader",
    "AgeWriter",
    "DecryptResult",
    "HeaderError",
    "HeaderMacError",
    "Identity",
    "IncompatibleRecipients",
    "KeyFormatError",
    "MLKEM768X25519Identity",
    "MLKEM768X25519Recipient",
    "NoIdentityMatch",
    "P256TagRecipient",
    "PayloadError",
    "Recipient",
    "SealingError",
    "TruncatedPayload",
    "UnsupportedKey",
    "X25519Identity",
    "X25519Recipient",
    "check_compatible",
    "decrypt",
    "describe_recipient",
    "encrypt",
    "identity_file_text",
    "parse_identity",
    "parse_identity_file",
    "parse_recipient",
]
