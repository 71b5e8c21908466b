"""The level meter: one number per block of captured periods, and nothing of the audio itself.

The box's audio tap hands over what it captured right after it is encrypted; the meter reads its peak as
the box does (`core.level`: through a memoryview, no copy of the plaintext made) and keeps only that
number, which is all the page ever receives.
"""

from __future__ import annotations

from collections.abc import Callable

from consentbox.core import level
from consentbox.core.policy import SampleFormat

#: The meter's bottom: anything quieter, silence included, reads as this many dB below full scale. It is
#: the box's floor of silence, so a meter at its bottom is what the box calls silent.
FLOOR_DBFS = level.SILENCE_FLOOR_DBFS


def peak_dbfs(pcm: bytes | memoryview, sample_format: SampleFormat) -> float:
    """The peak of `pcm` in dB relative to full scale (0 at most), FLOOR_DBFS for silence."""
    return max(FLOOR_DBFS, level.peak_dbfs(pcm, sample_format))


class LevelMeter:
    """The peak level of the audio captured last, while capture is open; None while it is not."""

    def __init__(self, sample_format: Callable[[], SampleFormat]) -> None:
        self._sample_format = sample_format  # the box's current policy's (a bundle may change it)
        self._dbfs: float | None = None

    @property
    def dbfs(self) -> float | None:
        """The peak of the audio captured last, or None when nothing is being captured."""
        return self._dbfs

    def tap(self, pcm: memoryview) -> None:
        """The box's audio tap: measure the periods captured last and forget them."""
        self._dbfs = peak_dbfs(pcm, self._sample_format())

    def clear(self) -> None:
        """Capture closed: nothing to show until the next period."""
        self._dbfs = None
