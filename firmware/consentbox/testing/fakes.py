"""Fakes of the hardware ports, for tests and demos that need no device."""

from __future__ import annotations

from typing import TYPE_CHECKING

from consentbox.core.policy import Policy
from consentbox.hw.errors import AudioLost, AudioUnavailable
from consentbox.testing.signal import position_pcm

if TYPE_CHECKING:  # hw.audio loads pyalsaaudio, which a fake has no need of
    from consentbox.hw.ports import AudioSource


class GeneratedSource:
    """A fake `AudioSource` with no ALSA: the position signal (`consentbox.testing.signal`) from its start
    at each open(), then silence after `frames` frames if given; just what `FileMicrophone` gives
    for a WAV of that signal.
    """

    def __init__(self, policy: Policy, frames: int | None = None) -> None:
        self._policy = policy
        self._frames = frames
        self._position: int | None = None  # the next input frame; None while closed

    @property
    def overruns(self) -> int:
        """Always 0: generated audio is never late."""
        return 0

    def open(self) -> None:
        """Start again from the first frame of the signal."""
        self._position = 0

    def read(self) -> bytes:
        """The next period of the signal (or of silence, past `frames`)."""
        if self._position is None:
            raise AudioLost("generated audio source is not open")
        start, period = self._position, self._policy.period_frames
        self._position += period
        signal = period if self._frames is None else max(0, min(period, self._frames - start))
        return position_pcm(start, signal, self._policy) + bytes((period - signal) * self._policy.frame_bytes)

    def close(self) -> None:
        """Stop; reading again needs an open()."""
        self._position = None


class FailingSource:
    """An `AudioSource` around another whose device can be made to fail or overrun, as real hardware does.

    `lose()` is the device vanishing: the next read raises AudioLost and every open raises
    AudioUnavailable until `restore()`. `overrun(periods)` is one ALSA overrun (xrun): the next
    read comes after `periods` periods of the input were dropped, and `overruns` counts one more,
    as AlsaSource counts each -EPIPE.
    """

    def __init__(self, source: AudioSource, policy: Policy) -> None:
        self._source = source
        self._frame_bytes = policy.frame_bytes
        self._lost = False
        self._dropping: list[int] = []  # periods to drop, one entry per overrun due
        self._overruns = 0
        self._frames_read = 0

    @property
    def overruns(self) -> int:
        """Overruns since the last open(): the wrapped source's and the ones made here."""
        return self._source.overruns + self._overruns

    @property
    def frames_read(self) -> int:
        """Frames returned by read() since the last open() (dropped periods not included)."""
        return self._frames_read

    def lose(self) -> None:
        """The device vanishes: reads fail with AudioLost, opens with AudioUnavailable."""
        self._lost = True

    def restore(self) -> None:
        """The device is back: it opens again."""
        self._lost = False

    def overrun(self, periods: int = 1) -> None:
        """Before the next read, drop `periods` periods of input and count one overrun."""
        if periods < 1:
            raise ValueError(f"an overrun drops at least one period, not {periods}")
        self._dropping.append(periods)

    def open(self) -> None:
        """Open the wrapped source, unless the device is lost."""
        if self._lost:
            raise AudioUnavailable("simulated audio device is gone: it cannot be opened")
        self._source.open()
        self._overruns = 0
        self._frames_read = 0

    def read(self) -> bytes:
        """The wrapped source's next period, after any overrun due; AudioLost once the device is lost."""
        if self._lost:
            raise AudioLost("simulated audio device failed while capturing: No such device")
        while self._dropping:
            for _ in range(self._dropping.pop(0)):
                self._source.read()
            self._overruns += 1
        period = self._source.read()
        self._frames_read += len(period) // self._frame_bytes
        return period

    def close(self) -> None:
        """Close the wrapped source."""
        self._source.close()
