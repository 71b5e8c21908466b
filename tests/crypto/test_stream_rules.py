"""The STREAM rules the writer must keep (c2sp.org/age, "Payload"), and reading from sources that trickle.

The age spec lets the final chunk be empty only when the whole payload is empty, and nothing may
follow the final chunk: a writer that broke either rule would write files that `age -d` rejects.
"""

from __future__ import annotations

import io
import random

import pytest

from consentbox.crypto import AgeReader, AgeWriter, SealingError, X25519Identity
from consentbox.crypto.stream import CHUNK_SIZE, ChunkSealer

KEY = bytes(range(32))


def test_an_empty_final_chunk_is_sealed_only_as_the_only_chunk():
    assert len(ChunkSealer(KEY).seal(b"", last=True)) == 16

    sealer = ChunkSealer(KEY)
    sealer.seal(bytes(CHUNK_SIZE), last=False)
    with pytest.raises(SealingError, match="final chunk of 0 bytes"):
        sealer.seal(b"", last=True)


@pytest.mark.parametrize("last", [False, True])
def test_nothing_is_sealed_after_the_final_chunk(last):
    sealer = ChunkSealer(KEY)
    sealer.seal(b"the end", last=True)

    with pytest.raises(SealingError, match="already sealed"):
        sealer.seal(bytes(CHUNK_SIZE) if not last else b"more", last=last)


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE])
def test_the_writer_refuses_data_after_its_final_chunk(size, identity: X25519Identity):
    sink = io.BytesIO()
    writer = AgeWriter(sink, [identity.recipient])
    writer.write(bytes(size))
    writer.close()
    finished = sink.getvalue()

    with pytest.raises(SealingError, match="closed AgeWriter"):
        writer.write(b"late")
    writer.close()  # closing again seals nothing more

    assert sink.getvalue() == finished
    assert b"".join(AgeReader(io.BytesIO(finished), [identity]).chunks()) == bytes(size)


class Trickle(io.RawIOBase):
    """A source that, like a pipe, returns at most a few bytes per read, however many were asked for."""

    def __init__(self, data: bytes, seed: int) -> None:
        self._data = memoryview(data)
        self._random = random.Random(seed)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self._random.randint(1, 7), len(self._data))
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        return size


@pytest.mark.parametrize("size", [0, 100, CHUNK_SIZE, 2 * CHUNK_SIZE + 3])
def test_a_file_read_in_short_pieces_decrypts_exactly(size, identity: X25519Identity):
    plaintext = random.Random(size).randbytes(size)
    sink = io.BytesIO()
    with AgeWriter(sink, [identity.recipient]) as writer:
        writer.write(plaintext)

    reader = AgeReader(Trickle(sink.getvalue(), seed=size), [identity])  # type: ignore[arg-type]

    assert b"".join(reader.chunks()) == plaintext
