"""WAV headers for the 16- and 32-bit little-endian PCM the box records: 44 bytes, RIFF/WAVE, `fmt `, `data`.

A segment on the card starts with a streaming header, written before the length is known and never
rewritten (it is in the segment's first encrypted chunk, and encrypting that chunk again would reuse its
nonce). Its `data` length is the one sox writes when it cannot know the length, 0x7FFFF000 (RIFF length
0x7FFFF024): sox's wav.c calls it MS_UNSPEC and turns off its length logic when it reads it, and
libsndfile, FFmpeg and GStreamer, finding it longer than the file, take the length from the file's size.
So once a segment is sealed, the WAV `age -d` makes of it has the right length in those tools
(docs/formats.md, "Segments", says what each tool was seen to report). The export, which knows the
length, writes the exact header. The `fmt ` chunk is the plain 16-byte PCM one (format tag 1) in both.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from consentbox.core.errors import ConsentBoxError
from consentbox.core.policy import SampleFormat

HEADER_SIZE = 44
#: The `data` length of a segment's streaming header: sox's "length unspecified" (MS_UNSPEC).
STREAMING_DATA_SIZE = 0x7FFF_F000
#: The `data` length that segments of firmware before issue 19 start with, which export still reads: the
#: one arecord writes to a pipe (its 2 GiB WAVE limit), which sox and Python's `wave` take for 6 h 12 min.
ARECORD_DATA_SIZE = 0x8000_0000
#: The most audio bytes one WAV file can describe: the RIFF length field counts 36 bytes more.
MAX_DATA_SIZE = 0xFFFF_FFFF - 36

_PCM_FORMAT_TAG = 1
_FMT_CHUNK_SIZE = 16
# RIFF header, `fmt ` chunk (tag, channels, rate, byte rate, block align, bits), `data` chunk header.
_LAYOUT = struct.Struct("<4sI4s4sIHHIIHH4sI")
_BITS = {SampleFormat.S16_LE: 16, SampleFormat.S32_LE: 32}
_FORMATS = {bits: sample_format for sample_format, bits in _BITS.items()}


class WavHeaderError(ConsentBoxError, ValueError):
    """Bytes that should be one of our WAV headers are not (another format, or damaged)."""


class PcmFormat(Protocol):
    """Anything that names a PCM format: a `Policy`, or the `AudioFormat` of a manifest."""

    @property
    def rate(self) -> int:
        """Frames per second."""
        ...

    @property
    def channels(self) -> int:
        """Samples per frame."""
        ...

    @property
    def sample_format(self) -> SampleFormat:
        """How each sample is stored."""
        ...


@dataclass(frozen=True)
class AudioFormat:
    """A PCM format on its own, as a manifest records it and a WAV header describes it."""

    rate: int
    channels: int
    sample_format: SampleFormat

    @classmethod
    def of(cls, pcm: PcmFormat) -> AudioFormat:
        """The format part of `pcm` (for example of a Policy)."""
        return cls(pcm.rate, pcm.channels, pcm.sample_format)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame (one sample of every channel)."""
        return self.channels * self.sample_format.bytes_per_sample


@dataclass(frozen=True)
class WavHeader:
    """A parsed header: the format, and the `data` length it claims."""

    audio: AudioFormat
    data_bytes: int

    @property
    def streaming(self) -> bool:
        """Whether this is a length-unknown header that a segment on the card starts with (today's or arecord's)."""
        return self.data_bytes in (STREAMING_DATA_SIZE, ARECORD_DATA_SIZE)


def _header(pcm: PcmFormat, data_bytes: int) -> bytes:
    audio = AudioFormat.of(pcm)
    block_align = audio.frame_bytes
    return _LAYOUT.pack(
        b"RIFF", data_bytes + 36, b"WAVE",
        b"fmt ", _FMT_CHUNK_SIZE, _PCM_FORMAT_TAG, audio.channels, audio.rate,
        audio.rate * block_align, block_align, _BITS[audio.sample_format],
        b"data", data_bytes,
    )


def streaming_header(pcm: PcmFormat) -> bytes:
    """The 44-byte header a segment starts with: lengths 0x7FFFF000 (data) and 0x7FFFF024 (RIFF), as sox writes
    to a pipe."""
    return _header(pcm, STREAMING_DATA_SIZE)


def exact_header(pcm: PcmFormat, data_bytes: int) -> bytes:
    """The 44-byte header of a file holding exactly `data_bytes` bytes of whole frames."""
    frame_bytes = AudioFormat.of(pcm).frame_bytes
    if not 0 <= data_bytes <= MAX_DATA_SIZE:
        raise ValueError(f"{data_bytes} bytes of audio do not fit one WAV file (at most {MAX_DATA_SIZE})")
    if data_bytes % frame_bytes:
        raise ValueError(f"{data_bytes} bytes of audio is not a whole number of {frame_bytes}-byte frames")
    return _header(pcm, data_bytes)


def parse_header(header: bytes) -> WavHeader:
    """Parse a 44-byte header as this module writes them; WavHeaderError names what is wrong."""
    if len(header) != HEADER_SIZE:
        raise WavHeaderError(f"a WAV header here is {HEADER_SIZE} bytes, not {len(header)}")
    (riff, riff_size, wave, fmt, fmt_size, tag, channels, rate,
     byte_rate, block_align, bits, data, data_bytes) = _LAYOUT.unpack(header)
    if (riff, wave, fmt, data) != (b"RIFF", b"WAVE", b"fmt ", b"data"):
        raise WavHeaderError("not a 44-byte RIFF/WAVE header with `fmt ` and `data` chunks")
    if fmt_size != _FMT_CHUNK_SIZE or tag != _PCM_FORMAT_TAG:
        raise WavHeaderError(f"WAV format tag {tag} with a {fmt_size}-byte fmt chunk is not plain PCM")
    if bits not in _FORMATS:
        raise WavHeaderError(f"WAV samples of {bits} bits: only 16 and 32 are recorded")
    if not channels or not rate:
        raise WavHeaderError(f"WAV header with {channels} channels at {rate} Hz")
    audio = AudioFormat(rate, channels, _FORMATS[bits])
    if block_align != audio.frame_bytes or byte_rate != rate * block_align:
        raise WavHeaderError(f"WAV block align {block_align} / byte rate {byte_rate} contradict the format")
    if riff_size != data_bytes + 36:
        raise WavHeaderError(f"WAV RIFF length {riff_size} does not match data length {data_bytes}")
    return WavHeader(audio, data_bytes)
