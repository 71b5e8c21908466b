"""The box's sense of time: seconds since it started, real or simulated.

The session machine reads no clock; the box reads one of these and stamps every event with it.
"""

from __future__ import annotations

import threading
import time


class VirtualClock:
    """Simulated time: it moves only when the box says so, so a four-hour script runs in seconds."""

    def __init__(self) -> None:
        self._now = 0.0

    def now(self) -> float:
        """The simulated time."""
        return self._now

    def sleep_until(self, moment: float) -> None:
        """Jump to `moment` (nothing can arrive in between: the script drives the pins)."""
        self._now = max(self._now, moment)

    def wake(self) -> None:
        """Nothing to wake: simulated sleeps take no time."""

    def pace(self, seconds: float) -> None:
        """Capturing `seconds` of audio takes exactly that much simulated time."""
        self._now += seconds


class RealClock:
    """Real time from `time.monotonic`; `pace` holds capture to real time when the device does not."""

    #: Further behind real time than this, capture stops trying to catch up and starts afresh.
    MAX_LAG = 1.0

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._woken = threading.Event()
        self._audio_mark: float | None = None

    def now(self) -> float:
        """Seconds since this clock was made."""
        return time.monotonic() - self._start

    def sleep_until(self, moment: float) -> None:
        """Sleep until `moment`, or less if `wake()` is called."""
        self._audio_mark = None
        self._woken.wait(max(0.0, moment - self.now()))
        self._woken.clear()

    def wake(self) -> None:
        """End the current sleep early (called from gpiozero's callback threads)."""
        self._woken.set()

    def pace(self, seconds: float) -> None:
        """A real ALSA device already blocks for a period; a file device (simulation) is held back here."""
        now = self.now()
        if self._audio_mark is None or now - self._audio_mark > self.MAX_LAG:
            self._audio_mark = now
        self._audio_mark += seconds
        delay = self._audio_mark - now
        if delay > 0:
            time.sleep(delay)
