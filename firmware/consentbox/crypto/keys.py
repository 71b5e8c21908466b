"""X25519 recipients (`age1…`) and identities (`AGE-SECRET-KEY-1…`), and the stanzas they write and read.

A recipient wraps the file key into an `X25519` stanza; an identity unwraps it.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from consentbox.crypto import bech32
from consentbox.crypto.errors import HeaderError, KeyFormatError
from consentbox.crypto.format import Stanza, decode_base64, encode_base64
from consentbox.crypto.kdf import hkdf_sha256

FILE_KEY_SIZE = 16
STANZA_TYPE = "X25519"
X25519_KEY_SIZE = 32
RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
_WRAP_INFO = b"age-encryption.org/v1/X25519"
_BODY_SIZE = FILE_KEY_SIZE + 16  # the wrapped file key and its Poly1305 tag
# Each wrap key encrypts exactly one message, so a fixed nonce is safe (and what the spec says).
_WRAP_NONCE = bytes(12)


def _public_bytes(private_key: X25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def x25519_shared_secret(private_key: X25519PrivateKey, peer: bytes) -> bytes | None:
    """X25519 with `peer`, or None when the result is all zero because `peer` is a low-order point."""
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(peer))
    except ValueError:
        # OpenSSL itself refuses to return the all-zero secret.
        return None
    # Checked again in case the library underneath returns it instead: the spec says MUST abort.
    return None if shared == bytes(X25519_KEY_SIZE) else shared


def single_share(stanza: Stanza, size: int) -> bytes:
    """The one argument of a stanza addressed to an identity (X25519, mlkem768x25519), decoded, and its body
    checked: HeaderError, as the spec says, unless the argument is canonical base64 of `size` bytes and the
    body a sealed file key."""
    if len(stanza.args) != 1:
        raise HeaderError(f"{stanza.type} stanza has {len(stanza.args)} arguments after its type, not 1")
    share = decode_base64(stanza.args[0])
    if share is None or len(share) != size:
        raise HeaderError(f"{stanza.type} stanza share is not canonical base64 of {size} bytes")
    # Checked before decrypting so that a longer body cannot serve as a partitioning oracle.
    if len(stanza.body) != _BODY_SIZE:
        raise HeaderError(f"{stanza.type} stanza body is {len(stanza.body)} bytes, not {_BODY_SIZE}")
    return share


def _wrap_key(shared_secret: bytes, share: bytes, recipient: bytes) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(hkdf_sha256(shared_secret, salt=share + recipient, info=_WRAP_INFO))


@dataclass(frozen=True)
class X25519Recipient:
    """An age X25519 public key: whom a file is encrypted to."""

    public_key: bytes
    STANZA_TYPE: ClassVar[str] = STANZA_TYPE
    POST_QUANTUM: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if len(self.public_key) != X25519_KEY_SIZE:
            raise KeyFormatError(
                f"an X25519 public key is {X25519_KEY_SIZE} bytes, not {len(self.public_key)}"
            )

    def to_string(self) -> str:
        """The `age1…` form that `age -r` accepts."""
        return bech32.encode(RECIPIENT_HRP, self.public_key)

    def wrap(self, file_key: bytes, random_bytes: Callable[[int], bytes] = os.urandom) -> Stanza:
        """Wrap `file_key` for this recipient, its ephemeral secret the next 32 bytes of `random_bytes`."""
        if len(file_key) != FILE_KEY_SIZE:
            raise ValueError(f"an age file key is {FILE_KEY_SIZE} bytes, not {len(file_key)}")
        ephemeral = X25519PrivateKey.from_private_bytes(random_bytes(X25519_KEY_SIZE))
        share = _public_bytes(ephemeral)
        shared = x25519_shared_secret(ephemeral, self.public_key)
        if shared is None:
            raise KeyFormatError(f"recipient {self.to_string()} is a low-order point, not a real public key")
        body = _wrap_key(shared, share, self.public_key).encrypt(_WRAP_NONCE, file_key, None)
        return Stanza(STANZA_TYPE, (encode_base64(share),), body)


class X25519Identity:
    """An age X25519 secret key: who can decrypt. Its repr shows only the public key."""

    __slots__ = ("_private_key", "_secret", "recipient")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != X25519_KEY_SIZE:
            raise KeyFormatError(f"an X25519 secret key is {X25519_KEY_SIZE} bytes, not {len(secret)}")
        self._secret = secret
        self._private_key = X25519PrivateKey.from_private_bytes(secret)
        self.recipient = X25519Recipient(_public_bytes(self._private_key))

    def __repr__(self) -> str:
        return f"X25519Identity(recipient={self.recipient.to_string()!r})"

    @classmethod
    def generate(cls, *, secret: bytes | None = None) -> "X25519Identity":
        """A new identity from 32 random bytes, or from `secret` when given (for exact tests)."""
        return cls(os.urandom(X25519_KEY_SIZE) if secret is None else secret)

    def to_string(self) -> str:
        """The `AGE-SECRET-KEY-1…` form that `age -i` accepts."""
        return bech32.encode(IDENTITY_HRP, self._secret, upper=True)

    def unwrap(self, stanza: Stanza) -> bytes | None:
        """The file key if `stanza` is addressed to this identity; None if it is not ours.

        Raises HeaderError for a malformed X25519 stanza, which the spec says must fail the file.
        """
        if stanza.type != STANZA_TYPE:
            return None
        share = single_share(stanza, X25519_KEY_SIZE)
        shared = x25519_shared_secret(self._private_key, share)
        if shared is None:
            raise HeaderError("X25519 stanza share is a low-order point (all-zero shared secret)")
        try:
            return _wrap_key(shared, share, self.recipient.public_key).decrypt(_WRAP_NONCE, stanza.body, None)
        except InvalidTag:
            return None

