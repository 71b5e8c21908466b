"""The silent stretches of an exported recording, found in its audio as the box finds them while recording.

The export hands over the audio it writes to the WAV, in order; each block is audible or silent by the
box's own floor (`core.level`), and the box's own watch (`core.silence`) says where a silence of at least
`alert_after` seconds began and how long it lasted. The audio is the source, not the ledger or the
manifest: so an unverified export, and a recording made before the box alerted silence, are covered too,
and each stretch is placed where the supervisor hears it, in the WAV (a pause joins the audio on either
side of it, as the WAV does).
"""

from __future__ import annotations

from dataclasses import dataclass

from consentbox.core.level import audible
from consentbox.core.policy import Policy
from consentbox.core.silence import SilenceBegan, SilenceEnded, SilenceWatch
from consentbox.recording.wav import AudioFormat

#: The shortest silence reported: the box's default `silence_alert` (a manifest does not carry the policy).
REPORTED_SECONDS = Policy().silence_alert
#: Audio is heard in blocks of the box's default period, so a stretch is placed as exactly as the box does.
BLOCK_FRAMES = Policy().period_frames

#: Maps a sample's top byte to 0 when the sample is surely under 1/128 of full scale (-42 dBFS): 0x00
#: (0 to 255) or 0xFF (-256 to -1); to 1 otherwise, a sample far above the floor.
_QUIET = bytes(0 if top in (0x00, 0xFF) else 1 for top in range(256))


@dataclass(frozen=True)
class SilentStretch:
    """A stretch of the exported audio in which the microphone heard nothing: where it starts in the WAV, in
    seconds, and how long it lasts."""

    start: float
    seconds: float


@dataclass(frozen=True)
class Silences:
    """What the export heard: whether any of the audio was audible, and each long silent stretch."""

    heard: bool
    stretches: tuple[SilentStretch, ...]


class SilenceFinder:
    """Takes a recording's audio, whole frames in order, and finds its silent stretches."""

    def __init__(self, audio: AudioFormat, alert_after: float = REPORTED_SECONDS) -> None:
        self._audio = audio
        self._frames = 0
        self._heard = False
        self._watch = SilenceWatch(alert_after, opened=0.0)
        self._stretches: list[SilentStretch] = []
        # A block's worth of samples in a row that are all quiet (see `_QUIET`): audio with no such run is
        # audible in every block, found at the speed of a byte copy, so only quiet audio (rare, but hours of
        # it in a silent recording) is measured block by block, sample by sample.
        self._quiet_run = bytes(BLOCK_FRAMES * audio.channels)

    def hear(self, pcm: bytes) -> None:
        """Take the next piece of the audio (whole frames)."""
        width = self._audio.sample_format.bytes_per_sample
        step = BLOCK_FRAMES * self._audio.frame_bytes
        # Each sample's top byte, 0 where it is quiet: a copy of plaintext, which is no concern here (the
        # export writes it to a WAV). A piece shorter than a block holds no whole run: it is measured.
        if len(pcm) >= step and self._quiet_run not in pcm[width - 1::width].translate(_QUIET):
            self._hear_block(len(pcm), loud=True)
            return
        with memoryview(pcm) as audio:
            for start in range(0, len(audio), step):
                block = audio[start:start + step]
                self._hear_block(len(block), loud=audible(block, self._audio.sample_format))

    def finish(self) -> Silences:
        """What was found, the audio's end closing a silence still going on."""
        self._note(self._watch.close(self._frames / self._audio.rate))
        return Silences(self._heard, tuple(self._stretches))

    def _hear_block(self, size: int, *, loud: bool) -> None:
        self._frames += size // self._audio.frame_bytes
        self._heard = self._heard or loud
        self._note(self._watch.hear(loud, self._frames / self._audio.rate))

    def _note(self, change: SilenceBegan | SilenceEnded | None) -> None:
        if isinstance(change, SilenceEnded):
            self._stretches.append(SilentStretch(change.since, change.seconds))
