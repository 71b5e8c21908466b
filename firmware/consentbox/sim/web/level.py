"""The level meter: one number per captured period, and nothing of the audio itself.

The box's audio tap hands over each period right after it is encrypted; the meter reads its peak
through a memoryview (no copy of the plaintext is made) and keeps only that number, which is all the
page ever receives.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from consentbox.core.policy import SampleFormat

#: The meter's bottom: anything quieter, silence included, reads as this many dB below full scale.
FLOOR_DBFS = -60.0

# Native-order views: every board the box runs on (and every simulation host) is little-endian,
# as the policy's formats are.
_TYPECODES: dict[SampleFormat, Literal["h", "i"]] = {SampleFormat.S16_LE: "h", SampleFormat.S32_LE: "i"}


def peak_dbfs(pcm: bytes, sample_format: SampleFormat) -> float:
    """The peak of `pcm` in dB relative to full scale (0 at most), FLOOR_DBFS for silence."""
    if not pcm:
        return FLOOR_DBFS
    with memoryview(pcm) as raw, raw.cast(_TYPECODES[sample_format]) as samples:
        peak = max(max(samples), -min(samples))
    if peak == 0:
        return FLOOR_DBFS
    full_scale = 2 ** (8 * sample_format.bytes_per_sample - 1)
    return max(FLOOR_DBFS, min(0.0, 20 * math.log10(peak / full_scale)))


class LevelMeter:
    """The peak level of the latest captured period, while capture is open; None while it is not."""

    def __init__(self, sample_format: Callable[[], SampleFormat]) -> None:
        self._sample_format = sample_format  # the box's current policy's (a bundle may change it)
        self._dbfs: float | None = None

    @property
    def dbfs(self) -> float | None:
        """The latest period's peak, or None when nothing is being captured."""
        return self._dbfs

    def tap(self, pcm: bytes) -> None:
        """The box's audio tap: measure one period and forget it."""
        self._dbfs = peak_dbfs(pcm, self._sample_format())

    def clear(self) -> None:
        """Capture closed: nothing to show until the next period."""
        self._dbfs = None
