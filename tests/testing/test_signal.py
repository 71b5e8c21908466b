"""The position signal reads back as the frames it was cut from, at any cut, in every format."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentbox.core.policy import Policy, SampleFormat
from consentbox.testing.signal import (
    MIN_LOCATABLE,
    PositionError,
    Silence,
    frame_positions,
    position_pcm,
    spans,
    write_wav,
)

policies = st.builds(
    Policy,
    channels=st.integers(1, 4),
    sample_format=st.sampled_from(SampleFormat),
)
# Up to 2**35 frames: eight days at 48 kHz.
starts = st.one_of(st.integers(0, 5000), st.integers(0, 2**35 - 10_000))
pieces = st.tuples(starts, st.integers(MIN_LOCATABLE, 600))


@settings(max_examples=200, deadline=None)
@given(policy=policies, start=starts, length=st.integers(MIN_LOCATABLE, 3000), data=st.data())
def test_any_cut_of_the_signal_reads_back_as_its_frames(
    policy: Policy, start: int, length: int, data: st.DataObject
) -> None:
    whole = position_pcm(start, length, policy)
    cut = data.draw(st.integers(0, length - MIN_LOCATABLE))
    end = data.draw(st.integers(cut + MIN_LOCATABLE, length))
    piece = whole[cut * policy.frame_bytes : end * policy.frame_bytes]
    assert piece == position_pcm(start + cut, end - cut, policy)
    assert frame_positions(piece, policy) == list(range(start + cut, start + end))


@settings(max_examples=100, deadline=None)
@given(policy=policies, layout=st.lists(st.tuples(pieces, st.integers(1, 50)), min_size=1, max_size=5))
def test_pieces_with_silence_between_read_back_as_spans(
    policy: Policy, layout: list[tuple[tuple[int, int], int]]
) -> None:
    pcm, expected = b"", list[range | Silence]()
    for (start, length), gap in layout:
        pcm += position_pcm(start, length, policy) + bytes(gap * policy.frame_bytes)
        expected += [range(start, start + length), Silence(gap)]
    assert spans(pcm, policy) == expected


@pytest.mark.parametrize(
    "pieces",
    [
        [(0, 1024), (3072, 2048)],  # a pause of two periods
        [(0, 1024), (1024 + 8 * 4096, 1024)],  # a jump that keeps the frame's place in its block
        [(0, 5000), (0, 5000)],  # the device opened again: the input starts over
        [(17, 15), (16, 15)],  # one frame back, the shortest locatable pieces
        [(2**33, 480), (100, 480), (2**33 + 480, 480)],
    ],
)
def test_pieces_joined_without_a_gap_read_back_as_spans(pieces: list[tuple[int, int]]) -> None:
    policy = Policy(channels=2)
    pcm = b"".join(position_pcm(start, length, policy) for start, length in pieces)
    assert spans(pcm, policy) == [range(start, start + length) for start, length in pieces]


def test_silence_is_none() -> None:
    policy = Policy()
    assert frame_positions(bytes(6), policy) == [None, None, None]
    assert spans(bytes(6) + position_pcm(9, 20, policy), policy) == [Silence(3), range(9, 29)]
    assert spans(b"", policy) == []


def test_the_signal_is_never_silent() -> None:
    policy = Policy()
    assert None not in frame_positions(position_pcm(0, 70_000, policy), policy)


@pytest.mark.parametrize(
    ("pcm", "message"),
    [
        (position_pcm(0, 100, Policy())[:-1], "199 bytes is not a whole number of 2-byte frames"),
        (position_pcm(1, 10, Policy()), "frame 0 cannot be located: the signal needs 15 frames in a row"),
        (b"\x01\x00" * 20, "frame 0 is neither silence nor the position signal"),
        (position_pcm(0, 30, Policy())[:-2] + b"\x01\x00", "frame 29 is neither silence nor the position signal"),
    ],
    ids=["part-frame", "too-short", "not-signal", "not-signal-at-end"],
)
def test_what_is_not_the_signal_is_an_error_naming_the_frame(pcm: bytes, message: str) -> None:
    with pytest.raises(PositionError, match=message):
        frame_positions(pcm, Policy())


def test_a_sample_slip_shows_as_channels_that_disagree() -> None:
    policy = Policy(channels=2)
    with pytest.raises(PositionError, match="frame 0 is neither"):
        frame_positions(position_pcm(0, 100, policy)[2:-2], policy)


@pytest.mark.parametrize("policy", [Policy(), Policy(channels=2, rate=44_100, sample_format=SampleFormat.S32_LE)])
def test_write_wav_writes_a_plain_pcm_wav(tmp_path: Path, policy: Policy) -> None:
    pcm = position_pcm(0, 1000, policy)
    write_wav(tmp_path / "signal.wav", pcm, policy)
    with wave.open(str(tmp_path / "signal.wav")) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth(), wav.getcomptype()) == (
            policy.channels,
            policy.rate,
            policy.sample_format.bytes_per_sample,
            "NONE",
        )
        assert wav.readframes(2000) == pcm
