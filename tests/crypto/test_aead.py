"""One message under one key (crypto/aead.py): the RFC 8439 vector, a fresh nonce each time, and every way a
message can fail to be the one that was encrypted."""

from __future__ import annotations

import os

import pytest

from consentbox.crypto.aead import NONCE_SIZE, TAG_SIZE, MessageAuthenticationError, decrypt_message, encrypt_message

# RFC 8439, section 2.8.2 ("Example and Test Vector for AEAD_CHACHA20_POLY1305").
RFC_KEY = bytes(range(0x80, 0xA0))
RFC_NONCE = bytes.fromhex("070000004041424344454647")
RFC_AAD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
RFC_PLAINTEXT = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
                 b"sunscreen would be it.")
RFC_CIPHERTEXT = bytes.fromhex(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b"
    "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
    "3ff4def08e4b7a9de576d26586cec64b6116")
RFC_TAG = bytes.fromhex("1ae10b594f09e26a7e902ecbd0600691")
KEY = bytes(range(32))


def test_the_rfc_8439_vector_is_the_nonce_then_its_ciphertext_and_tag():
    message = encrypt_message(RFC_KEY, RFC_PLAINTEXT, RFC_AAD, random_bytes=lambda size: RFC_NONCE[:size])
    assert message == RFC_NONCE + RFC_CIPHERTEXT + RFC_TAG
    assert decrypt_message(RFC_KEY, message, RFC_AAD) == RFC_PLAINTEXT


def test_each_message_gets_a_fresh_nonce():
    first, second = (encrypt_message(KEY, b"the same words", b"name") for _ in range(2))
    assert first[:NONCE_SIZE] != second[:NONCE_SIZE] and first != second
    assert decrypt_message(KEY, first, b"name") == decrypt_message(KEY, second, b"name") == b"the same words"


def test_a_message_opens_only_with_its_key_and_its_associated_data():
    message = encrypt_message(KEY, b"{}", b"0123456789abcdef")
    for key, associated in ((os.urandom(32), b"0123456789abcdef"), (KEY, b"fedcba9876543210"), (KEY, b"")):
        with pytest.raises(MessageAuthenticationError, match="does not authenticate"):
            decrypt_message(key, message, associated)


def test_every_changed_byte_and_every_cut_is_refused():
    message = encrypt_message(KEY, b"headcount 3", b"name")
    for at in range(len(message)):  # the nonce, the ciphertext and the tag alike
        changed = bytearray(message)
        changed[at] ^= 0x01
        with pytest.raises(MessageAuthenticationError):
            decrypt_message(KEY, bytes(changed), b"name")
    for length in range(len(message)):
        with pytest.raises(MessageAuthenticationError):
            decrypt_message(KEY, message[:length], b"name")
    with pytest.raises(MessageAuthenticationError, match="shorter than its nonce and tag"):
        decrypt_message(KEY, bytes(NONCE_SIZE + TAG_SIZE - 1), b"name")
