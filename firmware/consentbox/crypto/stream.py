"""The age payload: STREAM over ChaCha20-Poly1305 in 64 KiB chunks (c2sp.org/age, "Payload").

Chunk i is sealed under the payload key with the 12-byte nonce `i` (11 bytes, big-endian) followed
by 0x01 for the final chunk and 0x00 for the others. The flag is what makes truncation detectable:
a file cut at a chunk boundary ends on a chunk that does not authenticate as final.
"""

from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from consentbox.crypto.errors import PayloadError, SealingError, TruncatedPayload
from consentbox.crypto.kdf import hkdf_sha256

NONCE_SIZE = 16
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE


def payload_key(file_key: bytes, nonce: bytes) -> bytes:
    """The key that seals every chunk of one file, from its file key and its payload nonce."""
    return hkdf_sha256(file_key, salt=nonce, info=b"payload")


def _chunk_nonce(index: int, last: bool) -> bytes:
    # One shift and one conversion: this runs for every 64 KiB of audio.
    return (index << 8 | last).to_bytes(12, "big")


class ChunkSealer:
    """Seals the chunks of one payload in order and refuses any that would break the STREAM rules."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._index = 0
        self._finished = False

    def seal(self, chunk: bytes | bytearray | memoryview, last: bool) -> bytes:
        """Seal the next chunk: exactly 64 KiB unless `last`; empty only if it is the only chunk.

        Raises SealingError for any other chunk, and for any chunk after the final one: age readers
        reject an empty final chunk after others (c2sp.org/age, "Payload") and data after the final one.
        """
        if self._finished:
            raise SealingError("the final chunk of this payload is already sealed: start a new file")
        size = len(chunk)
        if last:
            if size > CHUNK_SIZE or (size == 0 and self._index > 0):
                raise SealingError(f"a final chunk of {size} bytes breaks the STREAM rules")
        elif size != CHUNK_SIZE:
            raise SealingError(f"a non-final chunk must be {CHUNK_SIZE} bytes, not {size}")
        # cryptography 38 (Debian bookworm's) takes only bytes; bytes() of bytes is no copy. Of the
        # AgeWriter's buffer it is one, which Python frees without zeroing (docs/threat-model.md).
        sealed = self._aead.encrypt(_chunk_nonce(self._index, last), bytes(chunk), None)
        self._index += 1
        self._finished = last
        return sealed


class ChunkOpener:
    """Opens the chunks of one payload in order; `index` is the number of the next chunk."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self.index = 0

    def open(self, sealed: bytes, *, last: bool) -> bytes | None:
        """The next chunk's plaintext, or None if `sealed` does not authenticate as that chunk."""
        try:
            plaintext = self._aead.decrypt(_chunk_nonce(self.index, last), sealed, None)
        except InvalidTag:
            return None
        self.index += 1
        return plaintext


def read_exact(src: BinaryIO, size: int) -> bytes:
    """Read `size` bytes, fewer only at end of file (pipes and raw files may return short reads)."""
    data = src.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    missing = size - len(data)
    while missing and (more := src.read(missing)):
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


def _where(index: int) -> str:
    return f"payload chunk {index} (plaintext from byte {index * CHUNK_SIZE})"


def open_payload(src: BinaryIO, key: bytes) -> Iterator[bytes]:
    """Yield the payload's plaintext chunk by chunk, each only once it has authenticated.

    Raises TruncatedPayload if the file ends before a valid final chunk, and PayloadError for a
    chunk that fails authentication, an empty final chunk after others, or data after the end.
    """
    opener = ChunkOpener(key)
    sealed = read_exact(src, SEALED_CHUNK_SIZE)
    while True:
        index = opener.index
        full = len(sealed) == SEALED_CHUNK_SIZE
        # Only a full chunk can have another after it; reading ahead tells whether this one is
        # at the end of the file, which decides what its failing to authenticate means.
        following = read_exact(src, SEALED_CHUNK_SIZE) if full else b""
        plaintext = opener.open(sealed, last=False) if full else None
        if plaintext is not None:
            yield plaintext
            if not following:
                raise TruncatedPayload(
                    f"the file ends after {_where(index)}: it was cut short before its final chunk"
                )
            sealed = following
            continue
        # A full chunk may also be the final one, so it gets the second try too.
        plaintext = opener.open(sealed, last=True)
        if plaintext is None:
            if not sealed:
                raise TruncatedPayload("the file ends right after the payload nonce: it was cut short")
            if not full:
                # A short tail that does not authenticate is what a write cut off mid-chunk
                # leaves; it cannot be told apart from a damaged short final chunk.
                raise TruncatedPayload(
                    f"the file ends inside {_where(index)}: it was cut short or damaged"
                )
            raise PayloadError(f"{_where(index)} failed authentication: the file is damaged or was edited")
        if not plaintext and index > 0:
            raise PayloadError(
                f"{_where(index)} is an empty final chunk, which only an empty file has: "
                "the file was edited"
            )
        if plaintext:
            yield plaintext
        if following:
            raise PayloadError(
                f"the file has data after its final chunk, {_where(index)}: the file was edited"
            )
        return
