"""WAV headers: the streaming one has sox's unknown length (what sox writes to a pipe, byte for byte, for 16-bit mono);
the exact one opens; arecord's, which segments of older firmware start with, still reads as streaming."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from consentbox.core.policy import Policy, SampleFormat
from consentbox.recording.wav import (
    ARECORD_DATA_SIZE,
    HEADER_SIZE,
    MAX_DATA_SIZE,
    AudioFormat,
    WavHeaderError,
    exact_header,
    parse_header,
    streaming_header,
)

MONO_16 = Policy()  # 48 kHz, mono, S16_LE: the box's default
STEREO_32 = Policy(rate=44_100, channels=2, sample_format=SampleFormat.S32_LE)

# What `sox -n -t wav -b 16 -r 48000 -c 1 - synth 1 sine 440 | …` writes first (sox 14.4.2): wav.c writes
# MS_UNSPEC, 0x7ffff000, as the data length when its output cannot seek, and reads it back as "unknown".
SOX_S16_MONO_48K = bytes.fromhex(
    "52494646" "24f0ff7f" "57415645"          # "RIFF", 0x7ffff024, "WAVE"
    "666d7420" "10000000" "0100" "0100"       # "fmt ", 16, PCM, 1 channel
    "80bb0000" "00770100" "0200" "1000"       # 48000 Hz, 96000 B/s, block align 2, 16 bits
    "64617461" "00f0ff7f"                     # "data", 0x7ffff000
)
# sox writes WAVE_FORMAT_EXTENSIBLE for 32 bits; ours stays plain PCM, with the same lengths.
STREAMING_S32_STEREO_44K1 = bytes.fromhex(
    "52494646" "24f0ff7f" "57415645"
    "666d7420" "10000000" "0100" "0200"
    "44ac0000" "20620500" "0800" "2000"       # 44100 Hz, 352800 B/s, block align 8, 32 bits
    "64617461" "00f0ff7f"
)
# What `arecord -f S16_LE -r 48000 -c 1 -t wav | …` writes first. From alsa-utils aplay.c: capture() to
# stdout with no -d clamps the count to fmt_rec_table[WAVE].max_filesize (2147483648), then
# begin_wave(fd, 0x80000000) writes RIFF length 0x80000000 + 36 and data length 0x80000000
# (checked against arecord 1.2.8 on the null device).
ARECORD_S16_MONO_48K = bytes.fromhex(
    "52494646" "24000080" "57415645"          # "RIFF", 0x80000024, "WAVE"
    "666d7420" "10000000" "0100" "0100"       # "fmt ", 16, PCM, 1 channel
    "80bb0000" "00770100" "0200" "1000"       # 48000 Hz, 96000 B/s, block align 2, 16 bits
    "64617461" "00000080"                     # "data", 0x80000000
)
ARECORD_S32_STEREO_44K1 = bytes.fromhex(
    "52494646" "24000080" "57415645"
    "666d7420" "10000000" "0100" "0200"
    "44ac0000" "20620500" "0800" "2000"       # 44100 Hz, 352800 B/s, block align 8, 32 bits
    "64617461" "00000080"
)


@pytest.mark.parametrize(("policy", "expected"), [(MONO_16, SOX_S16_MONO_48K),
                                                  (STEREO_32, STREAMING_S32_STEREO_44K1)])
def test_streaming_header_has_the_length_sox_writes_when_it_cannot_know_it(policy, expected):
    assert streaming_header(policy) == expected
    assert len(expected) == HEADER_SIZE


@pytest.mark.parametrize(("header", "policy"), [(ARECORD_S16_MONO_48K, MONO_16), (ARECORD_S32_STEREO_44K1, STEREO_32)])
def test_arecord_s_header_of_older_segments_still_reads_as_streaming(header, policy):
    parsed = parse_header(header)
    assert parsed.streaming and parsed.data_bytes == ARECORD_DATA_SIZE and parsed.audio == AudioFormat.of(policy)


@pytest.mark.parametrize("policy", [MONO_16, STEREO_32, Policy(rate=8000, channels=8)])
def test_exact_header_opens_with_the_wave_module(policy):
    frames = 1234
    audio = bytes(i % 251 for i in range(frames * policy.frame_bytes))
    with wave.open(io.BytesIO(exact_header(policy, len(audio)) + audio)) as opened:
        assert opened.getnchannels() == policy.channels
        assert opened.getsampwidth() == policy.sample_format.bytes_per_sample
        assert opened.getframerate() == policy.rate
        assert opened.getnframes() == frames
        assert opened.readframes(frames) == audio


def test_exact_header_length_fields():
    header = exact_header(MONO_16, 96_000)
    assert struct.unpack_from("<I", header, 4)[0] == 96_000 + 36
    assert struct.unpack_from("<I", header, 40)[0] == 96_000
    assert header[:4] + header[8:40] == SOX_S16_MONO_48K[:4] + SOX_S16_MONO_48K[8:40]


def test_exact_header_refuses_partial_frames_and_more_than_a_wav_file_holds():
    with pytest.raises(ValueError, match="whole number"):
        exact_header(STEREO_32, 12)
    with pytest.raises(ValueError, match="do not fit"):
        exact_header(MONO_16, MAX_DATA_SIZE + 2)
    assert exact_header(MONO_16, MAX_DATA_SIZE - 1)  # the largest even count still fits


@pytest.mark.parametrize("policy", [MONO_16, STEREO_32])
def test_parse_header_reads_both_kinds_back(policy):
    streaming = parse_header(streaming_header(policy))
    assert streaming.audio == AudioFormat.of(policy) and streaming.streaming
    exact = parse_header(exact_header(policy, 10 * policy.frame_bytes))
    assert exact.audio == AudioFormat.of(policy)
    assert exact.data_bytes == 10 * policy.frame_bytes and not exact.streaming


def _patched(offset: int, fmt: str, value: int) -> bytes:
    header = bytearray(streaming_header(MONO_16))
    struct.pack_into(fmt, header, offset, value)
    return bytes(header)


@pytest.mark.parametrize(("header", "words"), [
    (b"RIFX" + SOX_S16_MONO_48K[4:], "RIFF/WAVE"),
    (SOX_S16_MONO_48K[:-1], "not 43"),
    (_patched(20, "<H", 3), "not plain PCM"),        # IEEE float
    (_patched(34, "<H", 24), "only 16 and 32"),
    (_patched(32, "<H", 4), "contradict"),           # block align of a stereo frame
    (_patched(4, "<I", 100), "RIFF length"),
])
def test_parse_header_names_what_is_wrong(header, words):
    with pytest.raises(WavHeaderError, match=words):
        parse_header(header)
