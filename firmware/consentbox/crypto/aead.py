"""One message under one secret key: ChaCha20-Poly1305 (RFC 8439) with a fresh random nonce per message.

For the box's own small records that must not be readable once their key is destroyed (the journal's
entries, `consentbox.recording.journal`). A message is the 12-byte nonce followed by the ciphertext and
its 16-byte tag. The associated data is authenticated but not stored: the caller gives it again to
decrypt, so a message moved to where other associated data is expected (another session's name) fails.
A random 96-bit nonce is safe for far more messages than one key ever seals here (one per manifest
version of one session).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from consentbox.core.errors import ConsentBoxError

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16


class MessageAuthenticationError(ConsentBoxError, ValueError):
    """A message does not decrypt: the wrong key, other associated data, or bytes that were changed or cut."""


def encrypt_message(key: bytes, plaintext: bytes, associated_data: bytes, *,
                    random_bytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """`plaintext` encrypted under the 32-byte `key`, bound to `associated_data`: nonce, ciphertext, tag."""
    nonce = random_bytes(NONCE_SIZE)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, associated_data)


def decrypt_message(key: bytes, message: bytes, associated_data: bytes) -> bytes:
    """The plaintext of `message` (from `encrypt_message` with the same key and associated data);
    MessageAuthenticationError if it does not authenticate."""
    if len(message) < NONCE_SIZE + TAG_SIZE:
        raise MessageAuthenticationError(f"a message of {len(message)} bytes is shorter than its nonce and tag")
    try:
        return ChaCha20Poly1305(key).decrypt(message[:NONCE_SIZE], message[NONCE_SIZE:], associated_data)
    except InvalidTag:
        raise MessageAuthenticationError("the message does not authenticate: another key, another name, "
                                         "or bytes changed") from None
