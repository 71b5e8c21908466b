"""The header grammar: what we write reads back, bad headers are refused by line, the size caps hold."""

from __future__ import annotations

import io

import pytest

from consentbox.crypto import HeaderError
from consentbox.crypto.format import (
    MAX_HEADER_BYTES,
    MAX_LINE_BYTES,
    Stanza,
    decode_base64,
    encode_base64,
    encode_header_without_mac,
    encode_mac,
    read_header,
)

MAC = bytes(range(32))


def _file(stanzas: list[Stanza], payload: bytes = b"PAYLOAD") -> bytes:
    return encode_header_without_mac(stanzas) + encode_mac(MAC) + payload


@pytest.mark.parametrize("body_size", [0, 1, 47, 48, 49, 96, 100])
def test_a_written_header_reads_back_and_stops_at_the_payload(body_size):
    stanzas = [Stanza("X25519", ("c2hhcmU",), bytes(range(body_size))), Stanza("grease", (), b"")]
    src = io.BytesIO(_file(stanzas))

    header, covered = read_header(src)

    assert header.stanzas == tuple(stanzas)
    assert header.mac == MAC
    assert covered == encode_header_without_mac(stanzas)
    assert src.read() == b"PAYLOAD"


def test_a_body_of_whole_lines_ends_with_an_empty_line():
    encoded = encode_header_without_mac([Stanza("t", (), bytes(48))])
    assert encoded == b"age-encryption.org/v1\n-> t\n" + b"A" * 64 + b"\n\n---"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (b"age-encryption.org/v2\n", 1, "unsupported age format version"),
        (b"hello\n", 1, "not an age file"),
        (b"-----BEGIN AGE ENCRYPTED FILE-----\n", 1, "armored"),
        (b"age-encryption.org/v1\n--- " + b"A" * 43 + b"\n", 2, "no recipient stanzas"),
        (b"age-encryption.org/v1\n-> t  x\n\n", 2, "stanza argument is empty"),
        (b"age-encryption.org/v1\n-> t\nAA==\n", 3, "outside unpadded base64"),
        (b"age-encryption.org/v1\n-> t\nAB\n", 3, "not canonical"),
        (b"age-encryption.org/v1\n-> t\n" + b"A" * 65 + b"\n", 3, "longer than 64 columns"),
        (b"age-encryption.org/v1\n-> t\n\n--- AAAA\n", 4, "43 base64 characters"),
        (b"age-encryption.org/v1\n-> t\n\r\n", 3, "CR LF"),
        (b"age-encryption.org/v1\n-> t\n", 3, "cut short"),
    ],
)
def test_a_malformed_header_names_its_line_and_problem(text, line, problem):
    with pytest.raises(HeaderError, match=f"^age header line {line}: .*{problem}"):
        read_header(io.BytesIO(text))


class EndlessHeader(io.RawIOBase):
    """A hostile stream: the version line, then one header line repeated forever. Counts what is read."""

    def __init__(self, line: bytes) -> None:
        self._start = b"age-encryption.org/v1\n"
        self._line = line
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        position = self.consumed - len(self._start)
        if position < 0:
            piece = self._start[self.consumed :]
        else:
            offset = position % len(self._line)
            piece = (self._line[offset:] + self._line * (len(buffer) // len(self._line) + 1))[: len(buffer)]
        piece = piece[: len(buffer)]
        buffer[: len(piece)] = piece
        self.consumed += len(piece)
        return len(piece)


# The buffered reader in front of the hostile stream may read one buffer ahead of the parser.
READ_AHEAD = io.DEFAULT_BUFFER_SIZE


def test_an_endless_header_is_refused_after_the_size_cap():
    src = EndlessHeader(b"-> grease\n\n")
    with pytest.raises(HeaderError, match="header is longer than"):
        read_header(io.BufferedReader(src))
    assert src.consumed <= MAX_HEADER_BYTES + MAX_LINE_BYTES + READ_AHEAD


def test_an_endless_line_is_refused_after_the_line_cap():
    src = EndlessHeader(b"-> " + b"x" * 1000)
    with pytest.raises(HeaderError, match=f"line 2: line is longer than {MAX_LINE_BYTES} bytes"):
        read_header(io.BufferedReader(src))
    assert src.consumed <= len(b"age-encryption.org/v1\n") + MAX_LINE_BYTES + READ_AHEAD


@pytest.mark.parametrize("data", [b"", b"\x00", b"ab", b"abc", bytes(range(256))])
def test_base64_round_trips_unpadded(data):
    text = encode_base64(data)
    assert "=" not in text
    assert decode_base64(text) == data


@pytest.mark.parametrize("text", ["AA==", "AB", "A", "AA A", "AA\n", "é"])
def test_base64_that_is_padded_or_not_canonical_is_refused(text):
    assert decode_base64(text) is None


def test_stanza_arguments_must_be_printable_ascii_when_writing():
    with pytest.raises(HeaderError, match="not printable ASCII"):
        encode_header_without_mac([Stanza("X25519", ("two words",), b"")])
