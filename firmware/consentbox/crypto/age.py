"""Writing and reading age v1 files: header, file key and payload together.

Both directions stream: memory stays at about one 64 KiB chunk whatever the size of the file.
"""

import hmac
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Protocol

from consentbox.crypto.errors import HeaderError, HeaderMacError, NoIdentityMatch, PayloadError, SealingError
from consentbox.crypto.format import Header, encode_header_without_mac, encode_mac, read_header
from consentbox.crypto.kdf import hkdf_sha256
from consentbox.crypto.keys import FILE_KEY_SIZE
from consentbox.crypto.recipients import Identity, Recipient, check_compatible
from consentbox.crypto.stream import (
    CHUNK_SIZE,
    NONCE_SIZE,
    ChunkSealer,
    open_payload,
    payload_key,
    read_exact,
)

# encrypt() reads this much at a time, so most chunks go from its read buffer straight to the
# cipher instead of through the writer's pending buffer.
_READ_SIZE = 16 * CHUNK_SIZE


def _header_mac(file_key: bytes, covered: bytes) -> bytes:
    return hmac.digest(hkdf_sha256(file_key, salt=b"", info=b"header"), covered, "sha256")


def _unwrap_file_key(header: Header, identities: Sequence[Identity]) -> bytes:
    types = [stanza.type for stanza in header.stanzas]
    if "scrypt" in types:
        # The spec forbids mixing: a passphrase file must not also open with a key.
        if len(types) > 1:
            raise HeaderError("age header has an scrypt stanza beside other stanzas: the file was edited")
        raise NoIdentityMatch("this age file is encrypted with a passphrase, which ConsentBox does not read")
    for stanza in header.stanzas:
        for identity in identities:
            file_key = identity.unwrap(stanza)
            if file_key is not None:
                return file_key
    raise NoIdentityMatch(
        f"none of the {len(identities)} given identities can decrypt this file: "
        "it was encrypted to other keys"
    )


class ByteSink(Protocol):
    """What AgeWriter needs of its output: a file, a BytesIO, or a wrapper that syncs each write."""

    def write(self, data: bytes, /) -> object:
        """Take all of `data`; AgeWriter makes one call per sealed chunk and ignores the result."""
        ...


class AgeWriter:
    """Encrypts a stream of plaintext to an age file, writing each chunk to `out` as soon as it is sealed.

    At most one 64 KiB chunk is held unsealed: a full chunk is sealed only once more data shows it
    is not the final one. The header and payload nonce are written at construction. That buffer is
    zeroed when the file is closed, left by an exception, or given up (`wipe`).
    """

    def __init__(
        self,
        out: ByteSink,
        recipients: Sequence[Recipient],
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not recipients:
            raise ValueError("an age file needs at least one recipient")
        check_compatible(recipients)
        file_key = random_bytes(FILE_KEY_SIZE)
        stanzas = [recipient.wrap(file_key, random_bytes) for recipient in recipients]
        header = encode_header_without_mac(stanzas)
        nonce = random_bytes(NONCE_SIZE)
        out.write(header + encode_mac(_header_mac(file_key, header)) + nonce)
        self._out = out
        self._sealer = ChunkSealer(payload_key(file_key, nonce))
        self._pending = bytearray(CHUNK_SIZE)
        self._pending_view = memoryview(self._pending)
        self._filled = 0
        self._sealed_bytes = 0
        self._closed = False

    @property
    def room_before_seal(self) -> int:
        """How many more bytes of plaintext it takes before a write seals (and writes) a chunk."""
        return CHUNK_SIZE - self._filled

    @property
    def sealed_bytes(self) -> int:
        """Plaintext bytes sealed and written so far (the unsealed tail is not counted)."""
        return self._sealed_bytes

    def _seal(self, chunk: bytes | bytearray | memoryview, *, last: bool) -> None:
        # One write per sealed chunk, so a sync after each write loses at most the unsealed tail.
        self._out.write(self._sealer.seal(chunk, last))
        self._sealed_bytes += len(chunk)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Add plaintext, sealing and writing every chunk that is now known not to be the final one."""
        if self._closed:
            raise SealingError("write to a closed AgeWriter: its final chunk is sealed, start a new file")
        view = memoryview(data).cast("B")
        while view:
            if self._filled == CHUNK_SIZE:
                # More data follows the buffered full chunk, so it is not the final one.
                self._seal(self._pending, last=False)
                self._filled = 0
            if not self._filled and len(view) > CHUNK_SIZE:
                # A whole chunk with more data after it skips the pending buffer.
                self._seal(view[:CHUNK_SIZE], last=False)
                view = view[CHUNK_SIZE:]
                continue
            take = min(CHUNK_SIZE - self._filled, len(view))
            self._pending_view[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]

    def close(self) -> None:
        """Seal and write the final chunk (empty only for an empty file), then `wipe`; `out` stays open."""
        if self._closed:
            return
        self._closed = True
        try:
            self._seal(self._pending_view[: self._filled], last=True)
        finally:
            self.wipe()

    def wipe(self) -> None:
        """Zero the plaintext held unsealed and take no more. A file left so, unclosed, reads as cut short."""
        # In place: a buffer freed unzeroed keeps up to a chunk of plaintext (0.68 s of audio at 48 kHz mono).
        self._pending[:] = bytes(CHUNK_SIZE)
        self._filled = 0
        self._closed = True

    def __enter__(self) -> "AgeWriter":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            # Left without a final chunk, the file reads as truncated rather than as complete.
            self.wipe()


class AgeReader:
    """Decrypts an age file: the header is checked at construction, the payload streams from `chunks()`.

    Raises HeaderError, NoIdentityMatch or HeaderMacError at construction.
    """

    def __init__(self, src: BinaryIO, identities: Sequence[Identity]) -> None:
        header, covered = read_header(src)
        file_key = _unwrap_file_key(header, identities)
        if not hmac.compare_digest(_header_mac(file_key, covered), header.mac):
            raise HeaderMacError(
                "age header MAC does not match: the header was edited or belongs to another file"
            )
        nonce = read_exact(src, NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise HeaderError("the file ends before its 16-byte payload nonce: it was cut short")
        self.damage: PayloadError | None = None
        self._src = src
        self._key = payload_key(file_key, nonce)
        self._started = False

    def chunks(self, *, salvage: bool = False) -> Iterator[bytes]:
        """Yield the plaintext chunk by chunk, each only after it has authenticated.

        Without `salvage` a bad payload raises PayloadError (TruncatedPayload if the file was cut
        short) after the good chunks before it; with `salvage` the iteration stops there instead
        and the error is kept in `damage`.
        """
        if self._started:
            raise ValueError("an AgeReader's payload can be read only once")
        self._started = True
        return self._salvaging() if salvage else open_payload(self._src, self._key)

    def _salvaging(self) -> Iterator[bytes]:
        try:
            yield from open_payload(self._src, self._key)
        except PayloadError as error:
            self.damage = error


@dataclass(frozen=True)
class DecryptResult:
    """What `decrypt` wrote: plaintext byte count, and the payload error if salvage stopped early."""

    bytes_written: int
    damage: PayloadError | None


def encrypt(
    src: BinaryIO,
    dst: BinaryIO,
    recipients: Sequence[Recipient],
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> int:
    """Encrypt all of `src` to `dst` for `recipients`; returns the plaintext byte count."""
    with AgeWriter(dst, recipients, random_bytes=random_bytes) as writer:
        while block := src.read(_READ_SIZE):
            writer.write(block)
    return writer.sealed_bytes


def decrypt(
    src: BinaryIO, dst: BinaryIO, identities: Sequence[Identity], *, salvage: bool = False
) -> DecryptResult:
    """Decrypt `src` to `dst`; with `salvage`, keep the authenticated part of a damaged file."""
    reader = AgeReader(src, identities)
    written = 0
    for chunk in reader.chunks(salvage=salvage):
        dst.write(chunk)
        written += len(chunk)
    return DecryptResult(written, reader.damage)
