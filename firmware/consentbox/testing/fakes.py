"""Fakes of the hardware ports, for tests and demos that need no device."""

from __future__ import annotations

from consentbox.core.policy import Policy
from consentbox.hw.errors import AudioLost
from consentbox.testing.signal import position_pcm


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
