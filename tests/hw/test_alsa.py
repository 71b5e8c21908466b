"""Audio capture through real libasound and pyalsaaudio, fed by the simulated microphone (ALSA's file plugin).

Overruns and device failures cannot be caused for real without a sound card (the null slave has no
clock and never fails), so the tests at the end script pyalsaaudio's PCM to check how AlsaSource maps
its results; everything else is real capture.
"""

from __future__ import annotations

import errno
import io
import os
import wave
from collections.abc import Iterator
from pathlib import Path

import alsaaudio
import pytest

from consentbox.core.policy import Policy, SampleFormat
from consentbox.hw.alsa import BUFFER_PERIODS, AlsaSource
from consentbox.hw.errors import AudioLost, AudioUnavailable
from consentbox.hw.ports import AudioSource
from consentbox.sim.file_microphone import FileMicrophone, WavFormatError
from consentbox.testing.fakes import GeneratedSource
from consentbox.testing.signal import Silence, position_pcm, spans, write_wav
from tests.support.buffers import held_buffers, holding_anything
from tests.support.plaintext import files_holding, temp_directories

MONO = Policy()
STEREO = Policy(channels=2)
WIDE = Policy(channels=2, sample_format=SampleFormat.S32_LE, period_frames=480)
INPUT_FRAMES = 5000  # not a whole number of periods


@pytest.fixture
def microphone(tmp_path: Path) -> Iterator[FileMicrophone]:
    """A simulated microphone playing INPUT_FRAMES frames of the mono position signal."""
    wav = tmp_path / "input.wav"
    write_wav(wav, position_pcm(0, INPUT_FRAMES, MONO), MONO)
    with FileMicrophone(wav, MONO) as simulated:
        yield simulated


def capture(source: AudioSource, periods: int) -> bytes:
    """Open the source, read `periods` periods, close it."""
    source.open()
    try:
        return b"".join(source.read() for _ in range(periods))
    finally:
        source.close()


@pytest.mark.parametrize("policy", [MONO, STEREO, WIDE], ids=["mono", "stereo", "s32-stereo"])
def test_capture_gives_the_input_frames_from_the_start_then_silence(tmp_path: Path, policy: Policy) -> None:
    wav = tmp_path / "input.wav"
    write_wav(wav, position_pcm(0, INPUT_FRAMES, policy), policy)
    periods = INPUT_FRAMES // policy.period_frames + 3
    with FileMicrophone(wav, policy) as simulated:
        source = AlsaSource(simulated.device, policy)
        source.open()
        reads = [source.read() for _ in range(periods)]
        source.close()
    assert {len(period) for period in reads} == {policy.period_frames * policy.frame_bytes}
    silence = periods * policy.period_frames - INPUT_FRAMES
    assert spans(b"".join(reads), policy) == [range(0, INPUT_FRAMES), Silence(silence)]
    assert b"".join(reads) == position_pcm(0, INPUT_FRAMES, policy) + bytes(silence * policy.frame_bytes)


def test_every_open_starts_again_from_the_start(microphone: FileMicrophone) -> None:
    source = AlsaSource(microphone.device, MONO)
    first = capture(source, 3)
    assert capture(source, 3) == first == position_pcm(0, 3 * MONO.period_frames, MONO)
    assert capture(AlsaSource(microphone.device, MONO), 1) == first[: MONO.period_frames * MONO.frame_bytes]


def test_open_while_open_starts_again(microphone: FileMicrophone) -> None:
    source = AlsaSource(microphone.device, MONO)
    source.open()
    source.read()
    source.open()
    assert spans(source.read(), MONO) == [range(0, MONO.period_frames)]
    source.close()


def test_silence_goes_on_long_past_the_end(microphone: FileMicrophone) -> None:
    recording = capture(AlsaSource(microphone.device, MONO), 200)
    assert spans(recording, MONO) == [range(0, INPUT_FRAMES), Silence(200 * MONO.period_frames - INPUT_FRAMES)]


def test_a_period_read_whole_leaves_no_copy_in_the_source(microphone: FileMicrophone) -> None:
    source = AlsaSource(microphone.device, MONO)
    source.open()
    assert source.read() == position_pcm(0, MONO.period_frames, MONO)
    assert holding_anything(held_buffers(source)) == [], "the device's period went out as it came: none held"
    source.close()


def test_generated_source_gives_what_the_simulated_microphone_gives(microphone: FileMicrophone) -> None:
    real, fake = AlsaSource(microphone.device, MONO), GeneratedSource(MONO, frames=INPUT_FRAMES)
    assert capture(fake, 7) == capture(real, 7)
    assert capture(fake, 2) == capture(real, 2)
    assert fake.overruns == real.overruns == 0


def test_generated_source_without_an_end_is_all_signal() -> None:
    assert spans(capture(GeneratedSource(STEREO), 50), STEREO) == [range(0, 50 * STEREO.period_frames)]


@pytest.mark.parametrize("source", [AlsaSource("null", MONO), GeneratedSource(MONO)], ids=["alsa", "generated"])
def test_reading_a_closed_source_is_audio_lost_and_close_is_idempotent(source: AudioSource) -> None:
    with pytest.raises(AudioLost, match="not open"):
        source.read()
    source.open()
    source.close()
    source.close()
    with pytest.raises(AudioLost):
        source.read()


def test_a_device_that_does_not_exist_is_unavailable_and_named() -> None:
    source = AlsaSource("no_such_capture_device", MONO)
    with pytest.raises(AudioUnavailable, match="no_such_capture_device") as raised:
        source.open()
    assert "\n" not in str(raised.value)
    with pytest.raises(AudioLost):
        source.read()


def test_closing_restores_the_alsa_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALSA_CONFIG_PATH", raising=False)
    write_wav(tmp_path / "in.wav", position_pcm(0, 100, MONO), MONO)
    with FileMicrophone(tmp_path / "in.wav", MONO) as outer:
        with FileMicrophone(tmp_path / "in.wav", MONO) as inner:
            capture(AlsaSource(inner.device, MONO), 1)
            capture(AlsaSource(outer.device, MONO), 1)
        assert capture(AlsaSource(outer.device, MONO), 1)
        directory = Path(os.environ["ALSA_CONFIG_PATH"].split(":")[-1]).parent
    assert "ALSA_CONFIG_PATH" not in os.environ
    assert not directory.exists()
    with pytest.raises(AudioUnavailable, match=outer.device):
        AlsaSource(outer.device, MONO).open()


def test_no_temporary_file_holds_the_input(tmp_path: Path) -> None:
    # Fresh noise, not the position signal, so that no other test's or run's files can match it.
    noise = os.urandom(8 * 1024)
    wav = tmp_path / "noise.wav"
    write_wav(wav, noise, MONO)
    with FileMicrophone(wav, MONO) as simulated:
        assert capture(AlsaSource(simulated.device, MONO), 5).startswith(noise)
        assert files_holding(noise, [tmp_path]) == [wav]  # the scan does find a copy
        assert files_holding(noise, temp_directories(), skip=[wav]) == []


def _wav(*, width: int = 2, rate: int = 48_000, channels: int = 1) -> bytes:
    """A short silent WAV file's bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.setnchannels(channels)
        wav.writeframes(bytes(width * channels * 100))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (_wav(width=1), "8-bit samples, but the policy records 16-bit (S16_LE)"),
        (_wav(rate=44_100), "44100 Hz, but the policy records at 48000 Hz"),
        (_wav(channels=2), "2 channel(s), but the policy records 1 channel(s)"),
        (b"ID3 an mp3 file", "not a PCM WAV file (file does not start with RIFF id)"),
        (b"", "not a PCM WAV file (it ends too soon)"),
    ],
    ids=["8-bit", "44.1kHz", "stereo", "not-wav", "empty"],
)
def test_a_bad_wav_is_a_one_line_error_naming_the_file(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    before = os.environ.get("ALSA_CONFIG_PATH")
    with pytest.raises(WavFormatError) as raised:
        FileMicrophone(path, MONO)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message
    assert isinstance(raised.value, ValueError)
    assert os.environ.get("ALSA_CONFIG_PATH") == before


# --- How AlsaSource maps pyalsaaudio's results: overruns and failures, which need real hardware to happen.


class ScriptedPcm:
    """Stands in for alsaaudio.PCM: grants what `granted` says and answers read() from `script`."""

    script: list[tuple[int, bytes] | Exception] = []
    granted: dict[str, object] = {}
    closed = 0

    def __init__(self, **arguments: object) -> None:
        self.arguments = arguments

    def info(self) -> dict[str, object]:
        return {
            "rate": self.arguments["rate"],
            "channels": self.arguments["channels"],
            "format": self.arguments["format"],
            "format_name": "S16_LE",
            **self.granted,
        }

    def state(self) -> int:  # pyalsaaudio 0.10+ has it: AlsaSource opens no other
        return alsaaudio.PCM_STATE_RUNNING

    def read(self) -> tuple[int, bytes]:
        step = ScriptedPcm.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def close(self) -> None:
        ScriptedPcm.closed += 1


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedPcm]:
    """alsaaudio.PCM replaced by ScriptedPcm for one test."""
    monkeypatch.setattr(alsaaudio, "PCM", ScriptedPcm)
    monkeypatch.setattr(ScriptedPcm, "script", [])
    monkeypatch.setattr(ScriptedPcm, "granted", {})
    monkeypatch.setattr(ScriptedPcm, "closed", 0)
    return ScriptedPcm


SMALL = Policy(period_frames=32)


def _frames(first: int, count: int) -> tuple[int, bytes]:
    return count, position_pcm(first, count, SMALL)


def test_overruns_are_counted_and_capture_goes_on(scripted: type[ScriptedPcm]) -> None:
    gap = (-errno.EPIPE, b"")
    scripted.script = [_frames(0, 20), gap, _frames(100, 44), gap, _frames(144, 32)]
    source = AlsaSource("mic", SMALL)
    source.open()
    assert spans(source.read(), SMALL) == [range(0, 20), range(100, 112)]
    assert source.overruns == 1
    assert spans(source.read(), SMALL) == [range(112, 144)]
    assert spans(source.read(), SMALL) == [range(144, 176)]
    assert source.overruns == 2
    source.open()
    assert source.overruns == 0


def test_device_periods_of_another_size_still_give_whole_policy_periods(scripted: type[ScriptedPcm]) -> None:
    scripted.script = [_frames(0, 50), _frames(50, 50)]
    source = AlsaSource("mic", SMALL)
    source.open()
    assert [spans(source.read(), SMALL) for _ in range(3)] == [[range(0, 32)], [range(32, 64)], [range(64, 96)]]


def test_a_buffer_outgrown_by_device_periods_is_zeroed_as_it_is_replaced(scripted: type[ScriptedPcm]) -> None:
    scripted.script = [_frames(0, 20), _frames(20, 20), _frames(40, 100)]
    source = AlsaSource("mic", SMALL)
    source.open()
    source.read()
    [first] = held_buffers(source)
    source.read()  # 16 bytes held and 200 more read: a bigger buffer
    [second] = held_buffers(source)
    assert holding_anything([first, second]) == [second]
    source.close()
    assert holding_anything([first, second]) == []


def test_closing_zeroes_the_audio_the_source_held(scripted: type[ScriptedPcm]) -> None:
    scripted.script = [_frames(0, 50)]  # a device period longer than the policy's: part of it waits
    source = AlsaSource("mic", SMALL)
    source.open()
    source.read()
    buffers = held_buffers(source)
    assert holding_anything(buffers), "the source holds the rest of the device's period in no buffer found"
    source.close()
    assert holding_anything(buffers) == []


def test_a_failing_read_is_audio_lost_naming_the_device(scripted: type[ScriptedPcm]) -> None:
    scripted.script = [alsaaudio.ALSAAudioError("No such device [mic]")]
    source = AlsaSource("mic", SMALL)
    source.open()
    with pytest.raises(AudioLost, match="audio device 'mic' failed while capturing: No such device"):
        source.read()


def test_a_device_that_grants_another_rate_is_unavailable(scripted: type[ScriptedPcm]) -> None:
    scripted.granted = {"rate": 44_100}
    source = AlsaSource("mic", SMALL)
    with pytest.raises(AudioUnavailable, match="cannot capture 48000 Hz.*offers 44100 Hz"):
        source.open()
    assert scripted.closed == 1


def test_the_capture_buffer_holds_over_a_second_and_a_pyalsaaudio_that_cannot_size_it_is_passed_by(
        monkeypatch: pytest.MonkeyPatch, microphone: FileMicrophone) -> None:
    # A card write that stalls the main loop loses no audio while the buffer holds it: the VM test saw an
    # emulated card stall 0.15 s, past the 85 ms of pyalsaaudio's default buffer.
    asked: dict[str, object] = {}

    class SizingPcm:  # pyalsaaudio 0.10+: state() and the `periods` keyword
        info = state = None

        def __init__(self, **keywords: object) -> None:
            asked.update(keywords)
            raise alsaaudio.ALSAAudioError("asked, not opened")

    monkeypatch.setattr(alsaaudio, "PCM", SizingPcm)
    with pytest.raises(AudioUnavailable):
        AlsaSource(microphone.device, MONO).open()
    assert asked["periods"] == BUFFER_PERIODS and BUFFER_PERIODS * MONO.period_seconds > 1.3

    class ReadingPcm:  # pyalsaaudio 0.9: info() and a read() that works, but no `periods`
        info = None

        def __init__(self, *arguments: object, **keywords: object) -> None:
            raise AssertionError("pyalsaaudio 0.9 cannot size the buffer: AlsaSource must not open one")

    monkeypatch.setattr(alsaaudio, "PCM", ReadingPcm)
    # libasound through ctypes instead, asked for the same buffer (tests/hw/test_alsa_ctypes.py).
    assert capture(AlsaSource(microphone.device, MONO), 3) == position_pcm(0, 3 * MONO.period_frames, MONO)


def test_a_pyalsaaudio_too_old_to_capture_is_passed_by(monkeypatch: pytest.MonkeyPatch,
                                                      microphone: FileMicrophone) -> None:
    class OldPcm:  # pyalsaaudio 0.8.4's PCM: no info(), no format keywords, and a read() that fails
        def __init__(self, *arguments: object, **keywords: object) -> None:
            raise AssertionError("a PCM without info() cannot capture: AlsaSource must not open one")

    monkeypatch.setattr(alsaaudio, "PCM", OldPcm)
    # libasound through ctypes instead (tests/hw/test_alsa_ctypes.py).
    assert capture(AlsaSource(microphone.device, MONO), 3) == position_pcm(0, 3 * MONO.period_frames, MONO)
