"""Fixtures for the recording tests: a fixed supervisor key, counter-pattern audio, the `age` binary."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from consentbox.core.policy import Policy


def counter_pcm(policy: Policy, frames: int, first: int = 0) -> bytes:
    """Frames `first` … `first + frames - 1` of audio in which no 4 KiB repeats (up to 2**32 samples).

    32-bit samples are the running sample number; 16-bit ones alternate its low and high halves.
    """
    samples = range(first * policy.channels, (first + frames) * policy.channels)
    if policy.sample_format.bytes_per_sample == 2:
        # Low and high halves alternate, so 16-bit audio also never repeats within 4 GiB of samples.
        return struct.pack(f"<{len(samples)}H", *((n >> 16 if n % 2 else n) & 0xFFFF for n in samples))
    return struct.pack(f"<{len(samples)}I", *samples)


PcmSource = Callable[[Policy, int, int], bytes]


@pytest.fixture(scope="session")
def pcm() -> PcmSource:
    """`pcm(policy, frames, first=0)`: the counter-pattern audio of `counter_pcm`."""
    return counter_pcm
