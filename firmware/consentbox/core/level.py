"""How loud a period of captured audio is: its peak level, and whether it reaches the floor of silence.

The PCM is read through a memoryview: no copy of the plaintext is made, and nothing of it is kept but
the number. docs/status-codes.md ("A microphone that hears nothing") says what the box does with it.
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
    return peak_dbfs(pcm, sample_format) >= SILENCE_FLOOR_DBFS
