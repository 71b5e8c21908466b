"""The box's self-test, at start and after each session (so before the next one).

It checks what the once-a-second readiness check cannot see cheaply:
- the card takes a write: a probe file of random bytes is written, synced and removed (made anew
  with O_EXCL in the card's directory: whatever has the probe's name is unlinked first, never
  followed or opened; a directory there fails the test: `storage/card_files.py`);
- it has room for a whole `max_session` of audio, sealed, beyond `min_free_mb`;
- the microphone opens.
At start it also listens, with the REC LED lit as always while audio is captured, until it hears a
sound or a quarter of a second has passed, to check the device delivers sound at all (not only
digital silence). The audio
is only looked at and dropped, never written. The readiness check covers the rest (card present and
writable, clock trusted, recipients installed). Failures are STATUS blink codes (docs/status-codes.md).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
from dataclasses import dataclass
from pathlib import Path

from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem
from consentbox.crypto.stream import CHUNK_SIZE, SEALED_CHUNK_SIZE
from consentbox.hw.errors import HardwareError
from consentbox.hw.ports import AudioSource
from consentbox.storage.card_files import ForeignEntry, card_directory, create_file
from consentbox.storage.durable import write_all
from consentbox.storage.file_times import hide_times

PROBE_NAME = ".consentbox-selftest.tmp"
_PROBE_BYTES = 4096
LISTEN_SECONDS = 0.25
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_FULL = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class SelfTestResult:
    """What the self-test found: the problems (empty when all passed) and why, in words."""

    problems: frozenset[Problem]
    details: tuple[str, ...]
    listened: bool


def session_bytes(policy: Policy) -> int:
    """The card space a session of `max_session` takes: its audio, sealed in 64 KiB chunks."""
    audio = policy.max_session * policy.rate * policy.frame_bytes
    return math.ceil(audio / CHUNK_SIZE) * SEALED_CHUNK_SIZE


def self_test(card: Path, audio: AudioSource, policy: Policy, *, listen: bool,
              write_card: bool = True) -> SelfTestResult:
    """Run the checks; `listen` to capture a moment of audio too (the caller lights the REC LED). Without
    `write_card` (a card the box already refuses: missing, read-only, of the wrong format) nothing is
    written to it: the card's own problem is what the panel shows."""
    found: list[tuple[Problem, str]] = []
    if write_card:
        found += _card_checks(card, policy)
    found += _audio_checks(audio, policy, listen=listen)
    return SelfTestResult(frozenset(problem for problem, _ in found), tuple(detail for _, detail in found), listen)


def _card_checks(card: Path, policy: Policy) -> list[tuple[Problem, str]]:
    try:
        with card_directory(card) as directory:
            fd = create_file(directory, PROBE_NAME, 0o600, replace=True)
            try:
                write_all(fd, os.urandom(_PROBE_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(PROBE_NAME, dir_fd=directory)
            hide_times(directory)  # the probe's name came and went: the directory would date every check
            status = os.fstatvfs(directory)
    except FileNotFoundError:
        return [(Problem.NO_CARD, f"card {card} is not there")]
    except ForeignEntry as error:  # a directory with the probe's name: the card cannot be tested
        return [(Problem.CARD_WRITE_ERROR, f"card {card} cannot take the test write: {error}")]
    except OSError as error:
        problem = (Problem.CARD_READ_ONLY if error.errno in _READ_ONLY
                   else Problem.CARD_FULL if error.errno in _FULL else Problem.CARD_WRITE_ERROR)
        return [(problem, f"card {card} refused a test write: {error.strerror}")]
    free = status.f_bavail * status.f_frsize
    needed = session_bytes(policy) + policy.min_free_mb * (1 << 20)
    if free < needed:
        return [(Problem.CARD_FULL, f"card {card} has {free >> 20} MiB free; a {policy.max_session / 3600:g} h "
                 f"session needs {needed >> 20} MiB")]
    return []


def _audio_checks(audio: AudioSource, policy: Policy, *, listen: bool) -> list[tuple[Problem, str]]:
    try:
        audio.open()
        heard = False
        if listen:  # until the first sound: no more audio is captured than it takes to hear one
            for _ in range(math.ceil(LISTEN_SECONDS / policy.period_seconds)):
                if any(audio.read()):
                    heard = True
                    break
    except HardwareError as error:
        return [(Problem.NO_AUDIO_DEVICE, str(error))]
    finally:
        audio.close()
    if listen and not heard:
        return [(Problem.NO_AUDIO_DEVICE, "the microphone delivers only silence (digital zeros): check it")]
    return []
