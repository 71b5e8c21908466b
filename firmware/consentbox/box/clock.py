"""The box's sense of time: seconds since it started, real or simulated.

The session machine reads no clock; the box reads one of these and stamps every event with it.
"""

from __future__ import annotations

import contextlib
import queue
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
        # Wakes are queued, not flagged on a threading.Event: `wake` is called from signal handlers, which
        # run in the main thread between any two bytecodes, so also while that thread holds the Event's
        # lock in `sleep_until`, and SIGTERM then hung the box until systemd killed it. SimpleQueue.put
        # is reentrant: it takes no lock its own thread could be holding. While the box captures it never
        # sleeps, so `wake` adds a wake only to an empty queue: the queue stays at a wake or two however
        # many events a long recording posts.
        self._wakes: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._audio_mark: float | None = None

    def now(self) -> float:
        """Seconds since this clock was made."""
        return time.monotonic() - self._start

    def sleep_until(self, moment: float) -> None:
        """Sleep until `moment`, or less if `wake()` is called (during the sleep, or since the last one)."""
        self._audio_mark = None
        with contextlib.suppress(queue.Empty):
            self._wakes.get(timeout=max(0.0, moment - self.now()))
            while True:  # the wakes that came together end this one sleep
                self._wakes.get_nowait()

    def wake(self) -> None:
        """End the current sleep early (safe from gpiozero's callback threads and from signal handlers)."""
        if self._wakes.empty():  # two threads may both see it empty: two wakes, drained by one sleep
            self._wakes.put(None)

    def pace(self, seconds: float) -> None:
        """A real ALSA device already blocks for a period; a file device (simulation) is held back here."""
        now = self.now()
        if self._audio_mark is None or now - self._audio_mark > self.MAX_LAG:
            self._audio_mark = now
        self._audio_mark += seconds
        delay = self._audio_mark - now
        if delay > 0:
            time.sleep(delay)
