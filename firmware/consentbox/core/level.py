"""How loud a period of captured audio is: its peak level, and whether it reaches the floor of silence.

The PCM is read through a memoryview, or for `audible` a few KiB at a time through copies zeroed at once;
nothing of it is kept but the answer.
docs/status-codes.md ("A microphone that hears nothing") says what the box does with it.
"""

from __future__ import annotations

import math
from typing import Literal

from consentbox.core.policy import SampleFormat

#: Below this peak level the box hears nothing: digital silence, or an input so quiet it is as good as
#: off (an unplugged, muted or dead microphone). A working microphone peaks above it even in a quiet
#: room (breath, rustle, its own noise); speech peaks 30 to 50 dB higher.
SILENCE_FLOOR_DBFS = -60.0

#: While the STATUS LED shows the input level, it is lit while a period peaks at least this loud (a
#: voice near the box), dark below (the room between words).
LEVEL_LIT_DBFS = -40.0

#: How long the STATUS LED shows the input level each time capture opens.
LEVEL_SHOWN_SECONDS = 5.0

# Native-order views: every board the box runs on (and every simulation host) is little-endian, as the
# policy's formats are.
_TYPECODES: dict[SampleFormat, Literal["h", "i"]] = {SampleFormat.S16_LE: "h", SampleFormat.S32_LE: "i"}


def peak_dbfs(pcm: bytes | bytearray | memoryview, sample_format: SampleFormat) -> float:
    """The peak of `pcm` in dB relative to full scale: 0 at most, minus infinity for digital silence (or
    no samples at all)."""
    if not len(pcm):
        return -math.inf
    with memoryview(pcm) as raw, raw.cast(_TYPECODES[sample_format]) as samples:
        peak = max(max(samples), -min(samples))
    if peak == 0:
        return -math.inf
    full_scale = 2 ** (8 * sample_format.bytes_per_sample - 1)
    return min(0.0, 20 * math.log10(peak / full_scale))


def audible(pcm: bytes | bytearray | memoryview, sample_format: SampleFormat) -> bool:
    """Whether any sample of `pcm` reaches SILENCE_FLOOR_DBFS: whether the microphone heard anything."""
    if sample_format is SampleFormat.S16_LE:
        return _audible_s16(pcm)
    return peak_dbfs(pcm, sample_format) >= SILENCE_FLOOR_DBFS


# The box asks `audible` of everything it captures. peak_dbfs makes a Python int of every sample (about
# 25 ns each); for 16-bit audio the same answer comes from byte operations in C, some 20 times faster.
# -60 dBFS is 32.77 of 32768, so a sample is quiet when it is -32 to 32: its low byte 0x00-0x20 with a
# high byte 0x00, or 0xE0-0xFF with 0xFF. A low byte outside both ranges is heard whatever its high byte;
# otherwise the high byte must be the one its low byte's range calls for.
_QUIET_LOW_BYTES = bytes(range(0x21)) + bytes(range(0xE0, 0x100))
_HIGH_BYTE_OF_QUIET = bytes(0x00 if low <= 0x20 else 0xFF for low in range(256))
# Looked at a piece at a time: sound is usually heard in the first few KiB. The bytes of a piece are copied
# (into bytearrays, zeroed at once: this module keeps no audio), so a piece is never large.
_FIRST_PIECE_BYTES = 4096
_PIECE_BYTES = 16384


def _audible_s16(pcm: bytes | bytearray | memoryview) -> bool:
    with memoryview(pcm) as view, view.cast("B") as raw:
        starts = [0, *range(_FIRST_PIECE_BYTES, len(raw), _PIECE_BYTES)]
        for start, end in zip(starts, [*starts[1:], len(raw)], strict=True):
            piece = bytearray(raw[start:end])
            low, high = piece[0::2], piece[1::2]
            loud_lows = low.translate(None, _QUIET_LOW_BYTES)
            heard = bool(loud_lows) or low.translate(_HIGH_BYTE_OF_QUIET) != high
            for copy in (piece, low, high, loud_lows):
                copy[:] = bytes(len(copy))
            if heard:
                return True
    return False
