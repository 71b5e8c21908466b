"""The position signal: test audio in which every frame says which input frame it is.

A test feeds the signal to the box (a WAV through the simulated microphone, or `GeneratedSource`) and
reads back which input frames a recording holds, and where it holds silence instead.

Layout. Frame i is frame p = i % 8 of block n = i // 8, for i below 2**35 (eight days at 48 kHz).
Each block has a 96-bit code: a 64-bit check of n above n itself (32 bits, masked by a hash of the
check so that nearby blocks share no bits). Frame p of the block carries bits 12p to 12p+11 of the
code in one 16-bit word:

    bit 15: always 1, so no frame of the signal is silence
    bits 12-14: p
    bits 0-11: its 12 bits of the block's code

Every channel of a frame holds the same word (as a signed sample; S32_LE holds it in the upper 16 bits
with zeros below), so a capture that slips by a sample shows as channels that disagree. Silence is
all-zero frames.

Decoding. Eight frames that make a whole block give its number, proved by the 64-bit check; any 15
frames in a row contain a whole block, so a piece cut at any frame boundaries is located exactly if
it is at least 15 frames long. From there every frame is compared with what the signal holds at the
next position, so a join between two pieces is found at the frame, except that the first frames after
a join can equal the frames the other piece would have had there: about 1 chance in 4096 per join to
place it one frame late (no 16-bit code can avoid such coincidences).
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import wave
from dataclasses import dataclass

from consentbox.core.errors import ConsentBoxError
from consentbox.core.policy import Policy, SampleFormat

_BLOCK = 8
_MARK = 0x8000
#: The shortest run of signal frames that is always located.
MIN_LOCATABLE = 2 * _BLOCK - 1


class PositionError(ConsentBoxError, ValueError):
    """PCM that cannot be read as the position signal; the message says which frame."""


@dataclass(frozen=True)
class Silence:
    """A run of silent (all-zero) frames in a decoded recording."""

    frames: int


def position_pcm(start_frame: int, frames: int, policy: Policy) -> bytes:
    """Frames [start_frame, start_frame + frames) of the position signal, in the policy's format."""
    first = start_frame // _BLOCK
    skip = start_frame - first * _BLOCK
    blocks = range(first, (start_frame + frames + _BLOCK - 1) // _BLOCK)
    words = [word for block in blocks for word in _block_words(block)][skip : skip + frames]
    shift = 16 if policy.sample_format is SampleFormat.S32_LE else 0
    samples = [(word - 0x10000) << shift for word in words for _ in range(policy.channels)]
    return struct.pack(f"<{len(samples)}{_code(policy)}", *samples)


def frame_positions(pcm: bytes, policy: Policy) -> list[int | None]:
    """The input frame index of every frame of `pcm`, None for a silent frame."""
    words = _words(pcm, policy)
    positions: list[int | None] = []
    while len(positions) < len(words):
        here = len(positions)
        word = words[here]
        if word is None:
            positions.append(None)
            continue
        index = _locate(words, here, word)
        while len(positions) < len(words) and words[len(positions)] == _word(index):
            positions.append(index)
            index += 1
    return positions


def spans(pcm: bytes, policy: Policy) -> list[range | Silence]:
    """`pcm` summarised as runs: a `range` of input frames for each piece of signal, `Silence` for each gap."""
    runs: list[range | Silence] = []
    for position in frame_positions(pcm, policy):
        last = runs[-1] if runs else None
        if position is None and isinstance(last, Silence):
            runs[-1] = Silence(last.frames + 1)
        elif position is None:
            runs.append(Silence(1))
        elif isinstance(last, range) and last.stop == position:
            runs[-1] = range(last.start, position + 1)
        else:
            runs.append(range(position, position + 1))
    return runs


def write_wav(path: str | os.PathLike[str], pcm: bytes, policy: Policy) -> None:
    """Write `pcm` as a plain PCM WAV file in the policy's rate, channels and sample width."""
    with wave.open(os.fspath(path), "wb") as wav:
        wav.setnchannels(policy.channels)
        wav.setsampwidth(policy.sample_format.bytes_per_sample)
        wav.setframerate(policy.rate)
        wav.writeframes(pcm)


@functools.lru_cache(maxsize=4096)
def _block_words(block: int) -> tuple[int, ...]:
    check = _check(block)
    code = check << 32 | (block ^ _mask(check))
    return tuple(_MARK | p << 12 | (code >> 12 * p) & 0xFFF for p in range(_BLOCK))


def _word(index: int) -> int:
    return _block_words(index // _BLOCK)[index % _BLOCK]


def _check(block: int) -> int:
    digest = hashlib.blake2b(block.to_bytes(4, "little"), digest_size=8, person=b"cb-position")
    return int.from_bytes(digest.digest(), "little")


def _mask(check: int) -> int:
    digest = hashlib.blake2b(check.to_bytes(8, "little"), digest_size=4, person=b"cb-position-mask")
    return int.from_bytes(digest.digest(), "little")


def _code(policy: Policy) -> str:
    return "i" if policy.sample_format is SampleFormat.S32_LE else "h"


def _words(pcm: bytes, policy: Policy) -> list[int | None]:
    """Each frame's 16-bit word, None for silence."""
    if len(pcm) % policy.frame_bytes:
        raise PositionError(f"{len(pcm)} bytes is not a whole number of {policy.frame_bytes}-byte frames")
    samples = struct.unpack(f"<{len(pcm) // policy.sample_format.bytes_per_sample}{_code(policy)}", pcm)
    wide = policy.sample_format is SampleFormat.S32_LE
    words: list[int | None] = []
    for frame in range(len(pcm) // policy.frame_bytes):
        channels = set(samples[frame * policy.channels : (frame + 1) * policy.channels])
        sample = channels.pop()
        if not channels and sample == 0:
            words.append(None)
            continue
        word = (sample >> 16 if wide else sample) & 0xFFFF
        if channels or not word & _MARK or (wide and sample & 0xFFFF):
            raise PositionError(f"frame {frame} is neither silence nor the position signal")
        words.append(word)
    return words


def _locate(words: list[int | None], here: int, word: int) -> int:
    """The input index of frame `here` (holding `word`), found from the first whole block at or after it."""
    start = here + (-_phase(word)) % _BLOCK
    block = [w for w in words[start : start + _BLOCK] if w is not None]
    if [_phase(w) for w in block] == list(range(_BLOCK)):
        code = sum((w & 0xFFF) << 12 * p for p, w in enumerate(block))
        check = code >> 32
        number = (code & 0xFFFF_FFFF) ^ _mask(check)
        index = number * _BLOCK - (start - here)
        if _check(number) == check and index >= 0 and _word(index) == word:
            return index
    raise PositionError(f"frame {here} cannot be located: the signal needs {MIN_LOCATABLE} frames in a row")


def _phase(word: int) -> int:
    return word >> 12 & 7
