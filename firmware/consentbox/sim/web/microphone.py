"""Which microphone the simulated box listens to: this machine's, or a generated test signal.

`auto` looks for a sound card that can capture in the kernel's list of PCM devices, /proc/asound/pcm
(the devices `arecord -l` lists; no list, as in a container, means no sound card). When there is one,
it tries ALSA's `default` device and then each capturing card's `plughw:CARD,DEV` (ALSA converts rate
and channels there) through libasound, exactly as the box opens a microphone (`AlsaSource`), and
takes the first that opens in the policy's format. Opening it this once captures nothing. Without a
device that opens, the box hears a generated test signal instead: beeps rising in pitch, through real
libasound via ALSA's `file` plugin, from a memory file (`FileMicrophone`). As with `consentbox
simulate`, each start or resume of capture plays it from its beginning, and past its end it gives
silence.

`tone` always takes the test signal; any other name is taken as the ALSA device itself, unchecked:
one that cannot open shows as code 7 (no audio device) when a recording starts, as on the box.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from consentbox.core.policy import Policy
from consentbox.hw.alsa import AlsaSource
from consentbox.hw.errors import AudioUnavailable
from consentbox.sim.demo import write_test_tone
from consentbox.sim.file_microphone import FileMicrophone

AUTO = "auto"
TONE = "tone"
PROC_PCM = Path("/proc/asound/pcm")
#: Seconds of test signal (11.5 MB in memory at the default format; made in about a second).
TONE_SECONDS = 120

# "00-00: ALC3246 Analog : ALC3246 Analog : playback 1 : capture 1"
_PCM_LINE = re.compile(r"^(\d+)-(\d+):")


@dataclass(frozen=True)
class Microphone:
    """The ALSA device the box captures from, and what it is, in words."""

    device: str
    words: str


def capture_devices(proc_pcm: str) -> list[str]:
    """The `plughw:CARD,DEV` name of every PCM that can capture in a /proc/asound/pcm listing."""
    devices = []
    for line in proc_pcm.splitlines():
        match = _PCM_LINE.match(line)
        if match and any(field.strip().startswith("capture") for field in line.split(" : ")[1:]):
            devices.append(f"plughw:{int(match[1])},{int(match[2])}")
    return devices


def opens(device: str, policy: Policy) -> str | None:
    """Why `device` cannot capture in the policy's format (None: it can), trying it as the box would."""
    source = AlsaSource(device, policy)
    try:
        source.open()
    except AudioUnavailable as error:
        return str(error)
    finally:
        source.close()
    return None


def choose_microphone(choice: str, policy: Policy, stack: contextlib.ExitStack, *,
                      proc_pcm: Path = PROC_PCM, probe: Callable[[str, Policy], str | None] = opens,
                      tone_seconds: float = TONE_SECONDS) -> Microphone:
    """The microphone for `choice` (`auto`, `tone` or an ALSA device name); a test signal lives until
    `stack` closes."""
    if choice == TONE:
        return generated_signal(policy, stack, tone_seconds, "it was asked for with --microphone tone")
    if choice != AUTO:
        return Microphone(choice, f"ALSA device {choice!r}")
    try:
        listing = proc_pcm.read_text(encoding="utf-8", errors="replace")
    except OSError:
        listing = ""
    cards = capture_devices(listing)
    if not cards:
        return generated_signal(policy, stack, tone_seconds, f"no sound card can capture: {proc_pcm} lists none")
    failures = []
    for device in ("default", *cards):
        failure = probe(device, policy)
        if failure is None:
            return Microphone(device, f"this machine's microphone, ALSA device {device!r}")
        failures.append(failure)
    return generated_signal(policy, stack, tone_seconds, "no capture device opens: " + "; ".join(failures))


def generated_signal(policy: Policy, stack: contextlib.ExitStack, seconds: float, why: str) -> Microphone:
    """A generated test signal as an ALSA device, until `stack` closes; `why` it is used."""
    # The WAV is made in a memory file too, so not even the test signal touches a disk.
    wav = os.memfd_create("consentbox-test-signal")
    try:
        path = Path(f"/proc/self/fd/{wav}")
        write_test_tone(path, policy, seconds)
        microphone = stack.enter_context(FileMicrophone(path, policy))
    finally:
        os.close(wav)
    return Microphone(microphone.device, f"a generated test signal through libasound and ALSA's file plugin: "
                      f"beeps rising in pitch, {seconds:g} s from each start or resume of capture, then "
                      f"silence (because {why})")
