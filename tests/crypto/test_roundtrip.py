"""Round trips of random payloads, with sizes around every chunk boundary and writes cut anywhere."""

from __future__ import annotations

import errno
import io
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentbox.crypto import AgeReader, AgeWriter, TruncatedPayload, X25519Identity
from tests.support.buffers import held_buffers, holding_anything

CHUNK = 64 * 1024
SEALED = CHUNK + 16

# Sizes cluster where the STREAM rules change: k whole chunks, one byte less, one byte more.
sizes = st.one_of(
    st.builds(lambda k, delta: max(0, k * CHUNK + delta), st.integers(0, 4), st.sampled_from([-1, 0, 1])),
    st.integers(0, 4 * CHUNK + 2),
)
# How the plaintext is cut into write() calls: sizes taken in turn, from single bytes to many chunks.
write_sizes = st.lists(st.integers(1, 3 * CHUNK), min_size=1, max_size=8)


class RecordingSink(io.BytesIO):
    """A BytesIO that remembers the size of every write() it received."""

    def __init__(self) -> None:
        super().__init__()
        self.write_sizes: list[int] = []

    def write(self, data) -> int:  # type: ignore[override]
        self.write_sizes.append(len(data))
        return super().write(data)


def _pieces(plaintext: bytes, cuts: list[int]) -> list[bytes]:
    pieces, start, turn = [], 0, 0
    while start < len(plaintext):
        size = cuts[turn % len(cuts)]
        pieces.append(plaintext[start : start + size])
        start += size
        turn += 1
    return pieces


def _encrypt(pieces: list[bytes], identity: X25519Identity, random_bytes) -> RecordingSink:
    sink = RecordingSink()
    with AgeWriter(sink, [identity.recipient], random_bytes=random_bytes) as writer:
        for piece in pieces:
            writer.write(piece)
    return sink


def _decrypt(ciphertext: bytes, identity: X25519Identity) -> bytes:
    return b"".join(AgeReader(io.BytesIO(ciphertext), [identity]).chunks())


@settings(max_examples=60, deadline=None)
@given(size=sizes, cuts=write_sizes, seed=st.integers(0, 2**32))
def test_round_trip_and_chunk_layout(size, cuts, seed, identity, seeded_random):
    plaintext = random.Random(seed).randbytes(size)

    sink = _encrypt(_pieces(plaintext, cuts), identity, seeded_random(seed))

    assert _decrypt(sink.getvalue(), identity) == plaintext
    # After the header (one write), one write per chunk: full sealed chunks, then a final one
    # that holds the rest, a full chunk included, and is empty only for an empty payload.
    chunks = max(1, -(-size // CHUNK))
    assert sink.write_sizes[1:] == [SEALED] * (chunks - 1) + [size - (chunks - 1) * CHUNK + 16]


@settings(max_examples=40, deadline=None)
@given(size=sizes, cuts=write_sizes, other_cuts=write_sizes, seed=st.integers(0, 2**32))
def test_output_depends_only_on_the_plaintext_and_the_random_bytes(
    size, cuts, other_cuts, seed, identity, seeded_random
):
    plaintext = random.Random(seed).randbytes(size)

    first = _encrypt(_pieces(plaintext, cuts), identity, seeded_random(seed)).getvalue()
    second = _encrypt(_pieces(plaintext, other_cuts), identity, seeded_random(seed)).getvalue()

    assert first == second
    assert first != _encrypt(_pieces(plaintext, cuts), identity, seeded_random(seed + 1)).getvalue()


@settings(max_examples=40, deadline=None)
@given(size=sizes, cuts=write_sizes)
def test_the_writer_holds_back_at_most_one_chunk_and_never_a_chunk_it_could_seal(
    size, cuts, identity, seeded_random
):
    sink = RecordingSink()
    writer = AgeWriter(sink, [identity.recipient], random_bytes=seeded_random(size))
    written = 0
    for piece in _pieces(bytes(size), cuts):
        writer.write(piece)
        written += len(piece)
        # A full chunk stays unsealed until more data proves it is not the final one.
        assert written - CHUNK <= writer.sealed_bytes < written
        assert writer.sealed_bytes % CHUNK == 0
    writer.close()
    assert writer.sealed_bytes == size


@pytest.mark.fresh_clone
def test_writing_after_close_is_refused(identity):
    writer = AgeWriter(io.BytesIO(), [identity.recipient])
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"late")


def test_an_exception_inside_the_writer_leaves_the_file_unfinished(identity):
    sink = io.BytesIO()
    with pytest.raises(RuntimeError):
        with AgeWriter(sink, [identity.recipient]) as writer:
            writer.write(bytes(2 * CHUNK + 1))
            raise RuntimeError("capture failed")
    reader = AgeReader(io.BytesIO(sink.getvalue()), [identity])

    assert b"".join(reader.chunks(salvage=True)) == bytes(2 * CHUNK)
    assert isinstance(reader.damage, TruncatedPayload)


class _FailingSink(io.BytesIO):
    """A sink whose writes fail once `failing` is set, as a pulled card's do."""

    failing = False

    def write(self, data) -> int:  # type: ignore[override]
        if self.failing:
            raise OSError(errno.EIO, "Input/output error")
        return super().write(data)


def _end(writer: AgeWriter, sink: _FailingSink, how: str) -> None:
    if how == "close":
        writer.close()
    elif how == "exception":
        with pytest.raises(RuntimeError), writer:
            raise RuntimeError("capture failed")
    elif how == "failed close":
        sink.failing = True
        with pytest.raises(OSError):
            writer.close()
    else:
        writer.wipe()


@pytest.mark.parametrize("how", ["close", "exception", "failed close", "wipe"])
def test_the_plaintext_the_writer_held_is_zeroed_however_the_file_ends(how, identity):
    sink = _FailingSink()
    writer = AgeWriter(sink, [identity.recipient])
    writer.write(os.urandom(CHUNK + 1000))  # one chunk sealed, the next one's first 1000 bytes held
    buffers = held_buffers(writer)
    assert holding_anything(buffers), "the writer holds its unsealed plaintext in no buffer found"

    _end(writer, sink, how)
    assert holding_anything(buffers) == []
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"late")
