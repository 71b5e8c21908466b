"""Capture through libasound with ctypes (hw/alsa_ctypes.py), the path a pyalsaaudio too old to capture takes.

Real libasound, fed by the simulated microphone (ALSA's file plugin), as in test_audio.py. Overruns and
device failures cannot happen on the null slave, so the last tests script libasound's snd_pcm_readi.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import alsaaudio
import pytest

from consentbox.core.policy import Policy, SampleFormat
from consentbox.hw import alsa_ctypes
from consentbox.hw.alsa import BUFFER_PERIODS, AlsaSource
from consentbox.hw.alsa_ctypes import AlsaError, CapturePcm
from consentbox.hw.errors import AudioLost, AudioUnavailable
from consentbox.sim.file_microphone import FileMicrophone
from consentbox.testing.signal import position_pcm, spans, write_wav
from tests.support.buffers import held_buffers, holding_anything

MONO = Policy()
STEREO = Policy(channels=2)
WIDE = Policy(channels=2, sample_format=SampleFormat.S32_LE, period_frames=480)
INPUT_FRAMES = 5000  # not a whole number of periods


@pytest.fixture
def old_pyalsaaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    """alsaaudio.PCM as in pyalsaaudio 0.8.4 (no info()), so that AlsaSource captures through alsa_ctypes."""

    class OldPcm:
        def __init__(self, *arguments: object, **keywords: object) -> None:
            raise AssertionError("AlsaSource opened a pyalsaaudio PCM that cannot capture")

    monkeypatch.setattr(alsaaudio, "PCM", OldPcm)


def _microphone(tmp_path: Path, policy: Policy, frames: int = INPUT_FRAMES) -> FileMicrophone:
    wav = tmp_path / "input.wav"
    write_wav(wav, position_pcm(0, frames, policy), policy)
    return FileMicrophone(wav, policy)


def _settings(policy: Policy) -> dict[str, int]:
    """The policy's capture settings, as keywords of CapturePcm and of pyalsaaudio's PCM."""
    formats = {SampleFormat.S16_LE: alsaaudio.PCM_FORMAT_S16_LE, SampleFormat.S32_LE: alsaaudio.PCM_FORMAT_S32_LE}
    return dict(rate=policy.rate, channels=policy.channels, format=formats[policy.sample_format],
                periodsize=policy.period_frames, periods=BUFFER_PERIODS)


def _open(device: str, policy: Policy) -> CapturePcm:
    return CapturePcm(device, **_settings(policy))


@pytest.mark.parametrize("policy", [MONO, STEREO, WIDE], ids=["mono", "stereo", "s32-stereo"])
def test_alsa_source_captures_the_input_then_silence(tmp_path: Path, policy: Policy, old_pyalsaaudio: None) -> None:
    periods = INPUT_FRAMES // policy.period_frames + 3
    with _microphone(tmp_path, policy) as simulated:
        source = AlsaSource(simulated.device, policy)
        source.open()
        reads = [source.read() for _ in range(periods)]
        source.open()  # every open starts again from the start
        again = source.read()
        source.close()
    assert {len(period) for period in reads} == {policy.period_frames * policy.frame_bytes}
    silence = periods * policy.period_frames - INPUT_FRAMES
    assert b"".join(reads) == position_pcm(0, INPUT_FRAMES, policy) + bytes(silence * policy.frame_bytes)
    assert spans(again, policy) == [range(0, policy.period_frames)]
    assert source.overruns == 0


@pytest.mark.parametrize("policy", [MONO, WIDE], ids=["mono", "s32-stereo"])
def test_info_tells_what_the_device_granted_as_pyalsaaudio_does(tmp_path: Path, policy: Policy) -> None:
    with _microphone(tmp_path, policy) as simulated:
        ours = _open(simulated.device, policy)
        theirs = alsaaudio.PCM(type=alsaaudio.PCM_CAPTURE, device=simulated.device, **_settings(policy))
        try:
            info, expected = ours.info(), theirs.info()
            assert info == {key: expected[key] for key in info}
            assert info["format_name"] == policy.sample_format.value
            frames, data = ours.read()
            assert (frames, data) == (policy.period_frames, position_pcm(0, policy.period_frames, policy))
        finally:
            ours.close()
            theirs.close()


def test_a_device_that_does_not_exist_fails_as_pyalsaaudio_words_it(old_pyalsaaudio: None) -> None:
    with pytest.raises(AlsaError, match=r"^No such file or directory \[no_such_capture_device\]$"):
        _open("no_such_capture_device", MONO)
    with pytest.raises(AudioUnavailable, match="cannot open audio device 'no_such_capture_device' for capture"):
        AlsaSource("no_such_capture_device", MONO).open()


def test_reading_a_closed_pcm_fails_and_close_is_idempotent() -> None:
    pcm = _open("null", MONO)
    pcm.close()
    pcm.close()
    with pytest.raises(AlsaError, match=r"closed \[null\]"):
        pcm.read()


def test_closing_zeroes_the_audio_libasound_and_the_source_held(tmp_path: Path, old_pyalsaaudio: None) -> None:
    with _microphone(tmp_path, MONO) as simulated:
        source = AlsaSource(simulated.device, MONO)
        source.open()
        source.read()
        buffers = held_buffers(source)
        assert len(holding_anything(buffers)) == 1, "libasound's buffer holds the period read, and only it"
        source.close()
    assert holding_anything(buffers) == []


# --- What libasound reports only with real hardware: overruns and failures, by scripting snd_pcm_readi.


@pytest.fixture
def scripted_readi(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[int]], list[str]]:
    """Make libasound's snd_pcm_readi answer the given error codes first, then capture for real.

    Returns the list of libasound calls seen (readi and prepare), for the test to check."""
    library = alsa_ctypes.libasound()
    real_readi, real_prepare = library.snd_pcm_readi, library.snd_pcm_prepare
    calls: list[str] = []

    def script(codes: list[int]) -> list[str]:
        def readi(handle, buffer, frames):  # type: ignore[no-untyped-def]
            calls.append("readi")
            return codes.pop(0) if codes else real_readi(handle, buffer, frames)

        def prepare(handle):  # type: ignore[no-untyped-def]
            calls.append("prepare")
            return real_prepare(handle)

        monkeypatch.setattr(library, "snd_pcm_readi", readi)
        monkeypatch.setattr(library, "snd_pcm_prepare", prepare)
        return calls

    return script


def test_an_overrun_is_counted_the_stream_prepared_and_capture_goes_on(
    tmp_path: Path, old_pyalsaaudio: None, scripted_readi: Callable[[list[int]], list[str]]
) -> None:
    calls = scripted_readi([-errno.EPIPE])
    with _microphone(tmp_path, MONO) as simulated:
        source = AlsaSource(simulated.device, MONO)
        source.open()
        period = source.read()
        source.close()
    assert calls == ["readi", "prepare", "readi"]
    assert source.overruns == 1
    assert spans(period, MONO) == [range(0, MONO.period_frames)]


def test_try_again_is_no_audio_yet(scripted_readi: Callable[[list[int]], list[str]]) -> None:
    scripted_readi([-errno.EAGAIN])
    pcm = _open("null", MONO)
    try:
        assert pcm.read() == (0, b"")
        assert pcm.read()[0] == MONO.period_frames
    finally:
        pcm.close()


def test_a_failing_read_is_audio_lost_naming_the_device(
    tmp_path: Path, old_pyalsaaudio: None, scripted_readi: Callable[[list[int]], list[str]]
) -> None:
    scripted_readi([-errno.ENODEV])
    with _microphone(tmp_path, MONO) as simulated:
        source = AlsaSource(simulated.device, MONO)
        source.open()
        with pytest.raises(AudioLost, match=rf"audio device '{simulated.device}' failed while capturing: "
                                            rf"No such device \[{simulated.device}\]$"):
            source.read()
        source.close()

