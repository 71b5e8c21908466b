"""Audio capture: the `AudioSource` port and its ALSA adapter on pyalsaaudio.

The fake for tests is `consentbox.testing.fakes.GeneratedSource`. Where the installed pyalsaaudio is too
old to capture (Debian bookworm's 0.8.4), the adapter reaches libasound through `hw.alsa_ctypes` instead.

A source holds no device and no audio until `open()`: capture exists only while it is allowed. Audio
read but not yet returned waits in one buffer, zeroed by `close()`.
"""

from __future__ import annotations

import errno
from typing import Protocol

import alsaaudio

from consentbox.core.policy import Policy, SampleFormat
from consentbox.hw import alsa_ctypes
from consentbox.hw.errors import AudioLost, AudioUnavailable
from consentbox.hw.held_audio import HeldAudio

_ALSA_FORMATS = {
    SampleFormat.S16_LE: alsaaudio.PCM_FORMAT_S16_LE,
    SampleFormat.S32_LE: alsaaudio.PCM_FORMAT_S32_LE,
}
_ALSA_ERRORS = (alsaaudio.ALSAAudioError, alsa_ctypes.AlsaError)
#: Periods in the device's buffer: 1.37 s at the default period (1024 frames at 48 kHz), so that a card
#: write that stalls the main loop that long (an SD card can, and the VM test's emulated one did for 0.15 s)
#: loses no audio to an overrun. pyalsaaudio's default, 4 (85 ms), did. The buffer is kernel memory, not disk.
BUFFER_PERIODS = 64


class _CapturePcm(Protocol):
    """What AlsaSource uses of an open capture PCM: pyalsaaudio's `PCM` (0.10+) or `alsa_ctypes.CapturePcm`."""

    def info(self) -> dict[str, object]: ...

    def read(self) -> tuple[int, bytes]: ...

    def close(self) -> None: ...


def _open_capture_pcm(device: str, policy: Policy) -> _CapturePcm:
    """The device opened for capture in the policy's format; raises one of _ALSA_ERRORS."""
    settings = dict(rate=policy.rate, channels=policy.channels, format=_ALSA_FORMATS[policy.sample_format],
                    periodsize=policy.period_frames, periods=BUFFER_PERIODS)
    # `PCM.state` came in pyalsaaudio 0.10, with the `periods` keyword that sizes the buffer. Before 0.9,
    # read() raises SystemError on every call on Python 3.10+ ("PY_SSIZE_T_CLEAN macro must be defined")
    # after libasound has captured the period; 0.9 reads, but into a buffer of 4 periods (85 ms).
    if hasattr(alsaaudio.PCM, "state"):
        return alsaaudio.PCM(type=alsaaudio.PCM_CAPTURE, mode=alsaaudio.PCM_NORMAL, device=device, **settings)
    return alsa_ctypes.CapturePcm(device, **settings)


class AlsaSource:
    """An `AudioSource` on an ALSA capture device, in the policy's rate, channels, format and period.

    Captures through pyalsaaudio 0.10 or later, or else through libasound directly (`hw.alsa_ctypes`):
    Debian bookworm's python3-alsaaudio 0.8.4 cannot read audio on Python 3.10 and later, and 0.9 cannot
    size the buffer (`BUFFER_PERIODS`).
    """

    def __init__(self, device: str, policy: Policy) -> None:
        self._device = device
        self._policy = policy
        self._period_bytes = policy.period_bytes
        self._pcm: _CapturePcm | None = None
        # Audio read from the device but not yet returned: device periods need not match the policy's.
        self._held = HeldAudio()
        self._overruns = 0

    @property
    def overruns(self) -> int:
        """How many overruns there were since the last open()."""
        return self._overruns

    def open(self) -> None:
        """Open the device for capture with the policy's format, or raise AudioUnavailable naming it."""
        self.close()
        policy = self._policy
        try:
            pcm = _open_capture_pcm(self._device, policy)
        except _ALSA_ERRORS as error:
            raise AudioUnavailable(f"cannot open audio device {self._device!r} for capture: {error}") from None
        # ALSA settles on the nearest rate a device offers; recording at another rate than the one
        # written in the WAV header would play back at the wrong speed.
        info = pcm.info()
        granted = (info["rate"], info["channels"], info["format"])
        if granted != (policy.rate, policy.channels, _ALSA_FORMATS[policy.sample_format]):
            pcm.close()
            raise AudioUnavailable(
                f"audio device {self._device!r} cannot capture {policy.rate} Hz, {policy.channels} channel(s),"
                f" {policy.sample_format.value}: it offers {info['rate']} Hz, {info['channels']} channel(s),"
                f" {info['format_name']}"
            )
        self._pcm = pcm
        self._overruns = 0

    def read(self) -> bytes:
        """Block until one period is captured and return it; overruns are counted and capture goes on."""
        size = self._period_bytes
        if not self._held.size:
            data = self._read_device()
            if len(data) == size:  # as the device is set up to give: no copy to make
                return data
            self._held.add(data)
        while self._held.size < size:
            self._held.add(self._read_device())
        return self._held.take(size)

    def close(self) -> None:
        """Close the device and zero the audio held; closing a closed source does nothing."""
        if self._pcm is not None:
            self._pcm.close()
            self._pcm = None
        self._held.wipe()

    def _read_device(self) -> bytes:
        """One read of the device: whatever it captured, empty after an overrun."""
        if self._pcm is None:
            raise AudioLost(f"audio device {self._device!r} is not open")
        try:
            captured: tuple[int, bytes] = self._pcm.read()
        except _ALSA_ERRORS as error:
            raise AudioLost(f"audio device {self._device!r} failed while capturing: {error}") from None
        frames, data = captured
        if frames == -errno.EPIPE:
            # An overrun: ALSA dropped audio we did not read in time. The PCM has already prepared
            # the stream again, so the recording goes on with a gap that only `overruns` tells.
            self._overruns += 1
            return b""
        return data
