"""The export finds the silent stretches in the audio itself, as the box's silence watch does while recording."""

from __future__ import annotations

import array
import os
from datetime import UTC, date, datetime

import pytest

from consentbox.admin.export import SessionReport
from consentbox.admin.silences import BLOCK_FRAMES, SilenceFinder, Silences, SilentStretch
from consentbox.core.policy import Policy, SampleFormat
from consentbox.core.reasons import EndReason
from consentbox.recording.manifest import Interval, Manifest
from consentbox.recording.wav import AudioFormat
from consentbox.testing.signal import position_pcm

RATE = 48_000
MONO = AudioFormat(RATE, 1, SampleFormat.S16_LE)
BLOCK = BLOCK_FRAMES / RATE  # the precision of a stretch's start and length


def seconds(n: float) -> int:
    return round(n * RATE)


def signal(frames: int, start: int = 0) -> bytes:
    return position_pcm(start, frames, Policy())


def zeros(frames: int) -> bytes:
    return bytes(2 * frames)


def noise(frames: int, peak: int) -> bytes:
    """A quiet hiss that peaks at exactly `peak` (16-bit)."""
    samples = [(n * 7919) % (2 * peak + 1) - peak for n in range(frames)]
    samples[frames // 2] = peak
    return array.array("h", samples).tobytes()


def found(audio: bytes, piece: int = 65_492, audio_format: AudioFormat = MONO) -> Silences:
    """Hear `audio` in pieces of `piece` bytes (the export's are its chunks: 65,536 less the WAV header first)."""
    finder = SilenceFinder(audio_format)
    for start in range(0, len(audio), piece):
        finder.hear(audio[start:start + piece])
    return finder.finish()


def stretches(silences: Silences) -> list[tuple[float, float]]:
    return [(stretch.start, stretch.seconds) for stretch in silences.stretches]


@pytest.mark.parametrize(("audio", "heard", "expected"), [
    (signal(seconds(60)), True, []),
    (signal(seconds(10)) + zeros(seconds(30)) + signal(seconds(10), seconds(40)), True, [(10.0, 30.0)]),
    (signal(seconds(10)) + zeros(seconds(19.9)) + signal(seconds(10), seconds(30)), True, []),  # under 20 s
    (signal(seconds(10)) + zeros(seconds(25)), True, [(10.0, 25.0)]),  # silent to the end
    (zeros(seconds(28)), False, [(0.0, 28.0)]),  # the 28 s of zeros
    (zeros(seconds(5)), False, []),  # all silent, if too short for a stretch
    (noise(seconds(30), 32), False, [(0.0, 30.0)]),  # a hiss just under -60 dBFS is silence
    (noise(seconds(30), 33), True, []),  # just over it is heard
], ids=["heard throughout", "a gap", "a gap under 20 s", "silent to the end", "all zeros", "short zeros",
        "hiss under the floor", "hiss over the floor"])
def test_silent_stretches_of_at_least_20_s_are_found_to_a_block(audio, heard, expected):
    silences = found(audio)
    assert silences.heard is heard
    assert len(silences.stretches) == len(expected)
    for (start, length), (want_start, want_length) in zip(stretches(silences), expected, strict=True):
        assert start == pytest.approx(want_start, abs=BLOCK) and length == pytest.approx(want_length, abs=2 * BLOCK)


def test_how_the_audio_is_cut_into_pieces_changes_nothing_but_a_block():
    audio = signal(seconds(3)) + zeros(seconds(21)) + signal(seconds(3)) + zeros(seconds(40)) + signal(100)
    whole = stretches(found(audio, piece=len(audio)))
    for piece in (2 * 50, 2 * 1000, 65_536, 2 * BLOCK_FRAMES + 2):
        pieces = stretches(found(audio, piece=piece))
        assert len(pieces) == len(whole) == 2
        for (start, length), (whole_start, whole_length) in zip(pieces, whole, strict=True):
            assert start == pytest.approx(whole_start, abs=BLOCK) and length == pytest.approx(whole_length,
                                                                                              abs=2 * BLOCK)


def test_loud_audio_is_heard_in_32_bit_stereo_and_its_silence_found():
    stereo = AudioFormat(RATE, 2, SampleFormat.S32_LE)
    loud = os.urandom(8 * seconds(2))
    audio = loud + bytes(8 * seconds(25)) + loud
    silences = found(audio, audio_format=stereo)
    assert silences.heard and len(silences.stretches) == 1
    assert silences.stretches[0].start == pytest.approx(2.0, abs=BLOCK)
    assert silences.stretches[0].seconds == pytest.approx(25.0, abs=2 * BLOCK)
    assert found(bytes(8 * seconds(1)), audio_format=stereo) == Silences(heard=False, stretches=())


def summary(frames: int, silences: Silences) -> str:
    manifest = Manifest(session="5e5510000000000a", policy_sha256="ab" * 32, headcount=2, consents=(),
                        intervals=(Interval(6.0, 6.0 + frames / RATE, frames),), audio=MONO, segments=(),
                        overruns=0, end_reason=EndReason.ENDED, ended=6.0 + frames / RATE, withdrawn=False,
                        expires=date(2026, 6, 5), started=datetime(2026, 5, 6, 14, 0, tzinfo=UTC))
    return SessionReport(manifest, (), frames, 0, None, silences).summary()


def test_the_export_line_names_the_first_three_stretches_or_says_all_is_silent():
    stretches = tuple(SilentStretch(start, 20.4 + n) for n, start in enumerate((62.0, 3599.6, 4000.0, 5000.0)))
    assert summary(seconds(3600 * 2), Silences(True, stretches[:1])) == (
        "5e5510000000000a: recorded 2026-05-06T14:00+00:00, 2:00:00 exported, end: ended, silent from 0:01:02 "
        "for 20 s, UNVERIFIED: not checked against the box's seals")
    assert ", silent from 0:01:02 for 20 s, silent from 1:00:00 for 21 s, silent from 1:06:40 for 22 s (and 1 more)," \
        in summary(seconds(3600 * 2), Silences(True, stretches))
    assert ", end: ended, ALL SILENT: the microphone heard nothing (check it before the next session)," in summary(
        seconds(5), Silences(False, ()))
    assert "silent" not in summary(seconds(60), Silences(True, ())).replace("UNVERIFIED", "")

