"""The age v1 header, parsed and written exactly as the spec's grammar says (c2sp.org/age).

This module knows no keys and does no cryptography: the caller computes and checks the header
MAC over the bytes `read_header` returns, and wraps or unwraps stanza bodies itself.
"""

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from consentbox.crypto.errors import HeaderError

VERSION_LINE = b"age-encryption.org/v1"
MAC_SIZE = 32
# The longest line a real file has is a hybrid post-quantum stanza's argument line (about
# 1.5 KB), and real headers are a few hundred bytes per recipient; the caps only keep a
# hostile file from making us buffer without end.
MAX_LINE_BYTES = 8 * 1024
MAX_HEADER_BYTES = 256 * 1024

_BODY_COLUMNS = 64
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")
_ARGUMENT = re.compile(rb"[\x21-\x7e]+")
_MAC_LINE = re.compile(rb"--- ([A-Za-z0-9+/]{43})")
_ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
_CRLF = "line ends with CR LF; age headers end lines with LF only"


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: its type (the first argument), the other arguments, and the body."""

    type: str
    args: tuple[str, ...]
    body: bytes


@dataclass(frozen=True)
class Header:
    """A parsed header: its stanzas in file order and the 32-byte MAC from its last line."""

    stanzas: tuple[Stanza, ...]
    mac: bytes


def encode_base64(data: bytes) -> str:
    """Encode `data` as unpadded standard base64, the only form age writes."""
    return base64.b64encode(data).rstrip(b"=").decode("ascii")


def decode_base64(text: str) -> bytes | None:
    """Decode canonical unpadded base64; None if `text` is anything else (padding, stray bits)."""
    raw = text.encode("ascii", errors="replace")
    if not _BASE64.fullmatch(raw) or len(raw) % 4 == 1:
        return None
    data = base64.b64decode(raw + b"=" * (-len(raw) % 4))
    # Unused low bits in the last character make several strings decode to the same bytes;
    # the spec requires rejecting all but the one we would write.
    return data if encode_base64(data) == text else None


class _HeaderLines:
    """Reads header lines one at a time, keeping the raw bytes for the MAC and enforcing the caps."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.number = 0
        self.raw = bytearray()

    def error(self, problem: str) -> HeaderError:
        return HeaderError(f"age header line {self.number}: {problem}")

    def next(self) -> bytes:
        """The next line without its LF; raises at end of file, on an over-long line or on CR."""
        self.number += 1
        line = self._src.readline(MAX_LINE_BYTES + 1)
        self.raw += line
        if not line.endswith(b"\n"):
            if len(line) > MAX_LINE_BYTES:
                raise self.error(f"line is longer than {MAX_LINE_BYTES} bytes: not an age file")
            if self.number == 1 and not line:
                raise self.error("the file is empty: not an age file")
            raise self.error("the file ends inside the header: it was cut short")
        if len(self.raw) > MAX_HEADER_BYTES:
            raise self.error(f"header is longer than {MAX_HEADER_BYTES} bytes: not an age file")
        # The version line is diagnosed on its own: an armored file may end its lines with CR LF too.
        if line.endswith(b"\r\n") and self.number > 1:
            raise self.error(_CRLF)
        return line[:-1]


def _check_version(line: bytes, lines: _HeaderLines) -> None:
    if line == VERSION_LINE:
        return
    if line.strip().startswith(_ARMOR_BEGIN):
        raise lines.error("armored (PEM) age files are not supported: decrypt them with `age -d`")
    if line.endswith(b"\r"):
        raise lines.error(_CRLF)
    if line.startswith(b"age-encryption.org/"):
        raise lines.error("unsupported age format version: only age-encryption.org/v1 is read")
    raise lines.error("not an age file: the first line must be age-encryption.org/v1")


def _read_stanza(arg_line: bytes, lines: _HeaderLines) -> Stanza:
    if not arg_line.startswith(b"-> "):
        raise lines.error("expected a stanza ('-> ') or the MAC line ('--- ')")
    arguments = arg_line[3:].split(b" ")
    for argument in arguments:
        if not _ARGUMENT.fullmatch(argument):
            raise lines.error("stanza argument is empty or not printable ASCII")
    type_, *args = (argument.decode("ascii") for argument in arguments)
    return Stanza(type_, tuple(args), _read_body(lines))


def _read_body(lines: _HeaderLines) -> bytes:
    text = bytearray()
    while True:
        line = lines.next()
        if len(line) > _BODY_COLUMNS:
            raise lines.error(f"stanza body line is longer than {_BODY_COLUMNS} columns")
        if not _BASE64.fullmatch(line):
            if line.startswith(b"-"):
                raise lines.error("stanza ends without its final short body line")
            raise lines.error("stanza body line has characters outside unpadded base64")
        text += line
        if len(line) < _BODY_COLUMNS:
            break
    body = decode_base64(text.decode("ascii"))
    if body is None:
        raise lines.error("stanza body is not canonical unpadded base64")
    return body


def _read_mac(line: bytes, lines: _HeaderLines) -> bytes:
    match = _MAC_LINE.fullmatch(line)
    if not match:
        raise lines.error("the MAC line must be '--- ' and 43 base64 characters")
    mac = decode_base64(match.group(1).decode("ascii"))
    if mac is None:
        raise lines.error("the header MAC is not canonical base64")
    return mac


def read_header(src: BinaryIO) -> tuple[Header, bytes]:
    """Read the header from `src`, leaving it at the first payload byte.

    Returns the header and the bytes its MAC covers: everything up to and including `---`.
    """
    lines = _HeaderLines(src)
    _check_version(lines.next(), lines)
    stanzas = []
    line = lines.next()
    while not line.startswith(b"---"):
        stanzas.append(_read_stanza(line, lines))
        line = lines.next()
    if not stanzas:
        raise lines.error("the header has no recipient stanzas")
    mac = _read_mac(line, lines)
    covered = bytes(lines.raw[: len(lines.raw) - len(line) - 1]) + b"---"
    return Header(tuple(stanzas), mac), covered


def _encode_stanza(stanza: Stanza) -> bytes:
    arguments = [argument.encode("utf-8") for argument in (stanza.type, *stanza.args)]
    for argument in arguments:
        if not _ARGUMENT.fullmatch(argument):
            raise HeaderError(f"stanza argument {argument!r} is empty or not printable ASCII")
    body = encode_base64(stanza.body).encode("ascii")
    # The body always ends with a line shorter than 64 columns, so an exact multiple of 64
    # (including an empty body) gets an empty final line.
    body_lines = [body[start : start + _BODY_COLUMNS] for start in range(0, len(body), _BODY_COLUMNS)]
    if len(body) % _BODY_COLUMNS == 0:
        body_lines.append(b"")
    return b"-> " + b" ".join(arguments) + b"\n" + b"".join(line + b"\n" for line in body_lines)


def encode_header_without_mac(stanzas: Sequence[Stanza]) -> bytes:
    """Encode the version line and the stanzas, ending with the `---` that the MAC covers."""
    if not stanzas:
        raise HeaderError("an age header needs at least one recipient stanza")
    return VERSION_LINE + b"\n" + b"".join(_encode_stanza(stanza) for stanza in stanzas) + b"---"


def encode_mac(mac: bytes) -> bytes:
    """The rest of the MAC line after `---`: a space, the MAC in base64, and the line feed."""
    if len(mac) != MAC_SIZE:
        raise HeaderError(f"a header MAC is {MAC_SIZE} bytes, not {len(mac)}")
    return b" " + encode_base64(mac).encode("ascii") + b"\n"
