"""Damaged and truncated files: salvage keeps exactly the authenticated prefix and says what went wrong."""

from __future__ import annotations

import io
import random

import pytest

from consentbox.crypto import (
    AgeReader,
    AgeWriter,
    HeaderError,
    HeaderMacError,
    PayloadError,
    TruncatedPayload,
    X25519Identity,
    decrypt,
)

CHUNK = 64 * 1024
SEALED = CHUNK + 16
NONCE = 16


def _encrypted(plaintext: bytes, identity: X25519Identity) -> tuple[bytes, int]:
    """The age file and the offset of its first chunk (after header and nonce)."""
    out = io.BytesIO()
    with AgeWriter(out, [identity.recipient], random_bytes=random.Random(1).randbytes) as writer:
        writer.write(plaintext)
    header_size = out.getvalue().index(b"\n---") + len(b"\n--- ") + 43 + 1
    return out.getvalue(), header_size + NONCE


def _salvage(data: bytes, identity: X25519Identity) -> tuple[bytes, PayloadError | None]:
    reader = AgeReader(io.BytesIO(data), [identity])
    return b"".join(reader.chunks(salvage=True)), reader.damage


def _strict(data: bytes, identity: X25519Identity) -> tuple[bytes, PayloadError]:
    """What a strict read yields before it raises, and what it raises."""
    yielded = bytearray()
    with pytest.raises(PayloadError) as raised:
        for chunk in AgeReader(io.BytesIO(data), [identity]).chunks():
            yielded += chunk
    return bytes(yielded), raised.value


# Four full chunks and a short fifth: every kind of chunk there is.
PLAINTEXT = random.Random(7).randbytes(4 * CHUNK + 1000)
SEALED_SIZES = [SEALED] * 4 + [1000 + 16]
# Cut at the start of each chunk (the first right after the nonce), one byte in, in its middle,
# and one byte before its end: the file keeps exactly the chunks before the cut one.
CUTS = [(chunk, offset) for chunk, size in enumerate(SEALED_SIZES) for offset in (0, 1, size // 2, size - 1)]


@pytest.mark.parametrize(("chunk", "offset"), CUTS, ids=[f"chunk{c}+{o}" for c, o in CUTS])
def test_a_cut_file_salvages_the_chunks_before_the_cut_and_reports_truncation(chunk, offset, identity):
    data, payload_start = _encrypted(PLAINTEXT, identity)
    cut_at = payload_start + chunk * SEALED + offset
    assert cut_at < len(data)
    kept = PLAINTEXT[: chunk * CHUNK]

    salvaged, damage = _salvage(data[:cut_at], identity)
    assert salvaged == kept
    assert isinstance(damage, TruncatedPayload)

    yielded, error = _strict(data[:cut_at], identity)
    assert yielded == kept
    assert isinstance(error, TruncatedPayload)


def test_a_file_cut_inside_its_nonce_fails_at_the_header(identity):
    data, payload_start = _encrypted(PLAINTEXT, identity)
    with pytest.raises(HeaderError, match="nonce"):
        AgeReader(io.BytesIO(data[: payload_start - 1]), [identity])


def _flipped(data: bytes, position: int) -> bytes:
    damaged = bytearray(data)
    damaged[position] ^= 0x40
    return bytes(damaged)


@pytest.mark.parametrize("chunk", [0, 2, 3])
def test_a_flipped_byte_in_a_full_chunk_salvages_the_prefix_and_reports_damage(chunk, identity):
    # Four full chunks, so that the last one is full too and a flip in it is plainly damage.
    plaintext = PLAINTEXT[: 4 * CHUNK]
    data, payload_start = _encrypted(plaintext, identity)
    damaged = _flipped(data, payload_start + chunk * SEALED + 1234)
    kept = plaintext[: chunk * CHUNK]

    salvaged, damage = _salvage(damaged, identity)
    assert salvaged == kept
    assert type(damage) is PayloadError
    assert f"chunk {chunk} " in str(damage)

    yielded, error = _strict(damaged, identity)
    assert yielded == kept
    assert type(error) is PayloadError


def test_a_flipped_byte_in_a_short_last_chunk_reads_as_cut_short_or_damaged(identity):
    # Authentication cannot tell a damaged short final chunk from a chunk cut off mid-write.
    data, _ = _encrypted(PLAINTEXT, identity)

    salvaged, damage = _salvage(_flipped(data, len(data) - 1), identity)

    assert salvaged == PLAINTEXT[: 4 * CHUNK]
    assert isinstance(damage, TruncatedPayload)
    assert "cut short or damaged" in str(damage)


def test_data_after_a_full_final_chunk_is_damage_but_the_payload_is_kept(identity):
    # After a short final chunk, extra bytes only make that chunk fail (see the test above).
    plaintext = PLAINTEXT[: 4 * CHUNK]
    data, _ = _encrypted(plaintext, identity)

    salvaged, damage = _salvage(data + b"\0", identity)

    assert salvaged == plaintext
    assert type(damage) is PayloadError
    assert "after its final chunk" in str(damage)


def test_an_intact_file_salvages_whole_with_no_damage(identity):
    data, _ = _encrypted(PLAINTEXT, identity)
    assert _salvage(data, identity) == (PLAINTEXT, None)


def test_salvage_cannot_get_past_a_damaged_header(identity):
    data, _ = _encrypted(PLAINTEXT, identity)
    # A flipped bit in the body of the MAC line's base64 keeps the grammar but breaks the MAC.
    mac_at = data.index(b"\n--- ") + len(b"\n--- ") + 5
    damaged = bytearray(data)
    damaged[mac_at : mac_at + 1] = b"A" if data[mac_at : mac_at + 1] != b"A" else b"B"
    with pytest.raises(HeaderMacError):
        AgeReader(io.BytesIO(bytes(damaged)), [identity])


def test_decrypt_with_salvage_writes_the_prefix_and_returns_the_damage(identity):
    data, payload_start = _encrypted(PLAINTEXT, identity)
    out = io.BytesIO()

    result = decrypt(io.BytesIO(data[: payload_start + 2 * SEALED + 10]), out, [identity], salvage=True)

    assert out.getvalue() == PLAINTEXT[: 2 * CHUNK]
    assert result.bytes_written == 2 * CHUNK
    assert isinstance(result.damage, TruncatedPayload)


def test_decrypt_without_salvage_raises(identity):
    data, payload_start = _encrypted(PLAINTEXT, identity)
    with pytest.raises(TruncatedPayload):
        decrypt(io.BytesIO(data[: payload_start + SEALED]), io.BytesIO(), [identity])
