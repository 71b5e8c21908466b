"""A simulated microphone: real libasound capturing a WAV file's samples through ALSA's `file` plugin.

`consentbox simulate --audio WAV` gives `FileMicrophone(wav, policy).device` to `AlsaSource`, so
pyalsaaudio and libasound run for real with no sound card.

How the plugin behaves (alsa-lib 1.2.8, src/pcm/pcm_file.c, checked with strace):
- Capture reads a period from the slave, then overwrites it with one read() of that many bytes from
  `infile`, which it opens at snd_pcm_open and closes at snd_pcm_close. Whatever that read() does not
  fill keeps the caller's buffer as it was, with no error.
- Every captured period is also written to `file`. Ours is /dev/null, so the audio goes nowhere.
- The slave is `null`, which has no clock: capture runs as fast as it is read (thousands of times
  real time), which the virtual-time simulation relies on.

The WAV's samples go into an anonymous memory file (memfd), which lives on no file system, so no copy
of the input reaches a disk or the temp directory. The plugin opens it as /proc/self/fd/N, which
gives a new file offset each time: every open of the device starts at the beginning, as the plugin
does with an ordinary file. Past the samples the memory file is a hole of 4 EiB that reads as zeros,
so capture goes on in silence, as a microphone in a quiet room would: a recording that outlasts its
input stays valid and its tail is plainly not input. (A FIFO fed by a thread, the obvious design, is
wrong here: when the writer falls behind, the plugin's short read leaves the rest of the period as
stale buffer contents, and a reopen can read bytes left over from the previous stream.)

libasound finds the PCM through ALSA_CONFIG_PATH, which it reads again at every snd_pcm_open, so
setting it in-process works at any time, before or after earlier opens; `close()` restores it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import wave
from types import TracebackType

from consentbox.core.errors import ConsentBoxError
from consentbox.core.policy import Policy
from consentbox.hw.errors import AudioUnavailable

_CONFIG_PATH = "ALSA_CONFIG_PATH"
_SYSTEM_CONFIG = "/usr/share/alsa/alsa.conf"
# The memory file's size: its samples, then zeros for as good as ever.
_SILENCE_FOREVER = 1 << 62
_COPY_FRAMES = 1 << 16


class WavFormatError(ConsentBoxError, ValueError):
    """The input WAV cannot feed the simulated microphone; the message names the file and what is wrong."""


class FileMicrophone:
    """An ALSA capture device, named by `.device`, that gives the samples of a WAV file and then silence.

    It starts again from the beginning each time the device is opened. It sets ALSA_CONFIG_PATH for the
    whole process until `close()`; close simulated microphones in the reverse order of making them.
    """

    def __init__(self, wav: str | os.PathLike[str], policy: Policy) -> None:
        # The plugin writes all it captures to `file`; should /dev/null be missing or a plain file, the
        # input would end up on disk.
        if not stat.S_ISCHR(os.stat(os.devnull).st_mode):
            raise AudioUnavailable(f"{os.devnull} is not a character device: cannot simulate a microphone safely")
        self._previous = os.environ.get(_CONFIG_PATH)
        self._directory = tempfile.mkdtemp(prefix="consentbox-alsa-")
        self._audio = -1
        try:
            config = os.path.join(self._directory, "asound.conf")
            # libasound splits ALSA_CONFIG_PATH at colons and spaces.
            if ":" in config or " " in config:
                raise AudioUnavailable(f"temporary directory {self._directory!r} has a colon or space: set TMPDIR")
            self._audio = _load(os.fspath(wav), policy)
            self.device = f"consentbox_sim_{self._audio}"
            with open(config, "w", encoding="ascii") as file:
                file.write(_pcm_config(self.device, self._audio))
        except BaseException:
            self._release()
            raise
        os.environ[_CONFIG_PATH] = f"{self._previous or _SYSTEM_CONFIG}:{config}"

    def close(self) -> None:
        """Stop offering the device: restore ALSA_CONFIG_PATH and remove the configuration and the samples."""
        if self._audio < 0:
            return
        if self._previous is None:
            os.environ.pop(_CONFIG_PATH, None)
        else:
            os.environ[_CONFIG_PATH] = self._previous
        self._release()

    def __enter__(self) -> FileMicrophone:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _release(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)
        if self._audio >= 0:
            os.close(self._audio)
            self._audio = -1


def _load(path: str, policy: Policy) -> int:
    """Check the WAV against the policy and copy its samples into a new memory file; return its descriptor."""
    try:
        with wave.open(path, "rb") as wav:
            _check(path, wav, policy)
            audio = os.memfd_create("consentbox-simulated-input")
            try:
                with open(audio, "wb", closefd=False) as memory:
                    while samples := wav.readframes(_COPY_FRAMES):
                        memory.write(samples)
                os.ftruncate(audio, _SILENCE_FOREVER)
            except BaseException:
                os.close(audio)
                raise
            return audio
    except (wave.Error, EOFError) as error:
        # wave raises a bare EOFError for a file that ends inside its header.
        raise WavFormatError(f"{path}: not a PCM WAV file ({str(error) or 'it ends too soon'})") from None


def _check(path: str, wav: wave.Wave_read, policy: Policy) -> None:
    width = policy.sample_format.bytes_per_sample
    if wav.getsampwidth() != width:
        raise WavFormatError(
            f"{path}: {8 * wav.getsampwidth()}-bit samples, but the policy records"
            f" {8 * width}-bit ({policy.sample_format.value})"
        )
    if wav.getframerate() != policy.rate:
        raise WavFormatError(f"{path}: {wav.getframerate()} Hz, but the policy records at {policy.rate} Hz")
    if wav.getnchannels() != policy.channels:
        raise WavFormatError(
            f"{path}: {wav.getnchannels()} channel(s), but the policy records {policy.channels} channel(s)"
        )


def _pcm_config(name: str, audio: int) -> str:
    # truncate: with O_EXCL instead, the plugin would find /dev/null taken and create /dev/null.0001.
    # format raw: the default may be "wav", and no header should be made.
    return f"""# ConsentBox simulated microphone: a WAV's samples, captured through libasound.
pcm.{name} {{
    type file
    slave.pcm null
    infile "/proc/self/fd/{audio}"
    file "{os.devnull}"
    format raw
    truncate true
}}
"""
