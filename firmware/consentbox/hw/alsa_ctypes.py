"""ALSA capture through libasound itself (ctypes), for a pyalsaaudio too old to capture.

Debian bookworm's python3-alsaaudio 0.8.4 was built without PY_SSIZE_T_CLEAN, so on Python 3.10 and
later every `PCM.read()` raises SystemError after libasound has captured the period: the audio is lost
on every call, and nothing else in its API reads audio. `CapturePcm` makes the few libasound calls that
pyalsaaudio 0.10+ makes for a capture PCM (alsaaudio.c: alsapcm_new, alsapcm_setup, alsapcm_read), with
the same results, so `AlsaSource` treats both alike:

- `CapturePcm(device, rate=, channels=, format=, periodsize=, periods=)` opens like `alsaaudio.PCM(type=PCM_CAPTURE,
  ...)`: the device settles on the nearest values it offers, and `info()` tells what it granted;
- `read()` returns `(frames, data)` for one period, or `(-EPIPE, b"")` after an overrun, the stream
  already prepared again;
- a failure raises `AlsaError` with pyalsaaudio's message, "<snd_strerror> [<device>]".
"""

from __future__ import annotations

import ctypes
import errno
import functools
from ctypes import POINTER, byref, c_char_p, c_int, c_long, c_uint, c_ulong, c_void_p

LIBASOUND = "libasound.so.2"  # the soname: libasound2 ships it, not the unversioned libasound.so

_STREAM_CAPTURE = 1  # SND_PCM_STREAM_CAPTURE
_ACCESS_RW_INTERLEAVED = 3  # SND_PCM_ACCESS_RW_INTERLEAVED

_uframes = c_ulong  # snd_pcm_uframes_t
_sframes = c_long  # snd_pcm_sframes_t

# Every function used, with its C prototype: (result, argument types). Pointers to libasound's own
# structures (snd_pcm_t, snd_pcm_hw_params_t) are opaque: c_void_p.
_PROTOTYPES: dict[str, tuple[type | None, list[type]]] = {
    "snd_pcm_open": (c_int, [POINTER(c_void_p), c_char_p, c_int, c_int]),
    "snd_pcm_close": (c_int, [c_void_p]),
    "snd_pcm_prepare": (c_int, [c_void_p]),
    "snd_pcm_readi": (_sframes, [c_void_p, c_void_p, _uframes]),
    "snd_pcm_hw_params_malloc": (c_int, [POINTER(c_void_p)]),
    "snd_pcm_hw_params_free": (None, [c_void_p]),
    "snd_pcm_hw_params_any": (c_int, [c_void_p, c_void_p]),
    "snd_pcm_hw_params_set_access": (c_int, [c_void_p, c_void_p, c_int]),
    "snd_pcm_hw_params_set_format": (c_int, [c_void_p, c_void_p, c_int]),
    "snd_pcm_hw_params_set_channels": (c_int, [c_void_p, c_void_p, c_uint]),
    "snd_pcm_hw_params_set_rate_near": (c_int, [c_void_p, c_void_p, POINTER(c_uint), POINTER(c_int)]),
    "snd_pcm_hw_params_set_period_size_near": (c_int, [c_void_p, c_void_p, POINTER(_uframes), POINTER(c_int)]),
    "snd_pcm_hw_params_set_periods_near": (c_int, [c_void_p, c_void_p, POINTER(c_uint), POINTER(c_int)]),
    "snd_pcm_hw_params": (c_int, [c_void_p, c_void_p]),
    "snd_pcm_hw_params_current": (c_int, [c_void_p, c_void_p]),
    "snd_pcm_hw_params_get_format": (c_int, [c_void_p, POINTER(c_int)]),
    "snd_pcm_hw_params_get_channels": (c_int, [c_void_p, POINTER(c_uint)]),
    "snd_pcm_hw_params_get_rate": (c_int, [c_void_p, POINTER(c_uint), POINTER(c_int)]),
    "snd_pcm_hw_params_get_period_size": (c_int, [c_void_p, POINTER(_uframes), POINTER(c_int)]),
    "snd_pcm_format_physical_width": (c_int, [c_int]),
    "snd_pcm_format_name": (c_char_p, [c_int]),
    "snd_strerror": (c_char_p, [c_int]),
}


class AlsaError(OSError):
    """libasound failed; the message is "<what libasound says> [<device>]", as pyalsaaudio words it."""


@functools.cache
def libasound() -> ctypes.CDLL:
    """libasound, loaded once, with the prototypes of the functions this module calls."""
    library = ctypes.CDLL(LIBASOUND)  # CDLL, not PyDLL: calls release the GIL, as pyalsaaudio's read does
    for name, (result, arguments) in _PROTOTYPES.items():
        function = getattr(library, name)
        function.restype = result
        function.argtypes = arguments
    return library


def _message(code: int, device: str) -> str:
    return f"{libasound().snd_strerror(code).decode(errors='replace')} [{device}]"


class CapturePcm:
    """An open ALSA capture PCM in interleaved frames: `info()`, `read()`, `close()`."""

    def __init__(self, device: str, *, rate: int, channels: int, format: int, periodsize: int,
                 periods: int) -> None:
        try:
            asound = libasound()
        except OSError as error:
            raise AlsaError(f"cannot load {LIBASOUND}: {error} [{device}]") from None
        self._asound = asound
        self._device = device
        handle = c_void_p()
        code = asound.snd_pcm_open(byref(handle), device.encode(), _STREAM_CAPTURE, 0)
        if code < 0:
            raise AlsaError(_message(code, device))
        self._handle: c_void_p | None = handle
        self._buffer = ctypes.create_string_buffer(0)
        try:
            self._rate, self._channels, self._format, self._periodsize = self._setup(
                rate, channels, format, periodsize, periods
            )
        except BaseException:
            self.close()
            raise
        self._frame_bytes = self._channels * asound.snd_pcm_format_physical_width(self._format) // 8
        self._buffer = ctypes.create_string_buffer(self._frame_bytes * self._periodsize)

    def _setup(self, rate: int, channels: int, format: int, periodsize: int,
               periods: int) -> tuple[int, int, int, int]:
        """Ask for the values, then read back what the device granted; as pyalsaaudio's alsapcm_setup."""
        asound, handle = self._asound, self._handle
        params = c_void_p()
        if asound.snd_pcm_hw_params_malloc(byref(params)) < 0:
            raise MemoryError("libasound could not allocate hardware parameters")
        try:
            code = asound.snd_pcm_hw_params_any(handle, params)
            if code < 0:
                raise AlsaError(_message(code, self._device))
            # Each request may fail on its own: the device then keeps a value of its choice, and
            # info() tells the caller, who decides whether it will do.
            direction = c_int(0)
            asound.snd_pcm_hw_params_set_access(handle, params, _ACCESS_RW_INTERLEAVED)
            asound.snd_pcm_hw_params_set_format(handle, params, format)
            asound.snd_pcm_hw_params_set_channels(handle, params, channels)
            asound.snd_pcm_hw_params_set_rate_near(handle, params, byref(c_uint(rate)), byref(direction))
            asound.snd_pcm_hw_params_set_period_size_near(
                handle, params, byref(_uframes(periodsize)), byref(direction))
            asound.snd_pcm_hw_params_set_periods_near(handle, params, byref(c_uint(periods)), byref(direction))
            code = asound.snd_pcm_hw_params(handle, params)  # also prepares the stream
            if code < 0:
                raise AlsaError(_message(code, self._device))
            asound.snd_pcm_hw_params_current(handle, params)
            granted_format, granted_channels, granted_rate = c_int(), c_uint(), c_uint()
            granted_period = _uframes()
            asound.snd_pcm_hw_params_get_format(params, byref(granted_format))
            asound.snd_pcm_hw_params_get_channels(params, byref(granted_channels))
            asound.snd_pcm_hw_params_get_rate(params, byref(granted_rate), byref(direction))
            asound.snd_pcm_hw_params_get_period_size(params, byref(granted_period), byref(direction))
            return granted_rate.value, granted_channels.value, granted_format.value, granted_period.value
        finally:
            asound.snd_pcm_hw_params_free(params)

    def info(self) -> dict[str, object]:
        """What the device granted, under the keys pyalsaaudio's `PCM.info()` uses for them."""
        name = self._asound.snd_pcm_format_name(self._format)
        return {
            "rate": self._rate,
            "channels": self._channels,
            "format": self._format,
            "format_name": name.decode() if name else str(self._format),
            "period_size": self._periodsize,
        }

    def read(self) -> tuple[int, bytes]:
        """Block until a period is captured: (frames, their bytes); (-EPIPE, b"") after an overrun."""
        if self._handle is None:
            raise AlsaError(f"PCM device is closed [{self._device}]")
        frames = self._asound.snd_pcm_readi(self._handle, self._buffer, self._periodsize)
        if frames == -errno.EPIPE:
            # An overrun: audio was dropped. Prepare the stream so that the next read captures again.
            prepared = self._asound.snd_pcm_prepare(self._handle)
            if prepared < 0:
                raise AlsaError(_message(prepared, self._device))
            return -errno.EPIPE, b""
        if frames == -errno.EAGAIN:
            return 0, b""
        if frames < 0:
            raise AlsaError(_message(frames, self._device))
        return frames, self._buffer.raw[: frames * self._frame_bytes]

    def close(self) -> None:
        """Close the device and zero the last period's audio; closing a closed PCM does nothing."""
        if self._handle is not None:
            self._asound.snd_pcm_close(self._handle)
            self._handle = None
        ctypes.memset(self._buffer, 0, len(self._buffer))
