"""Seals: how many bytes of a session file's ciphertext the box wrote, and their SHA-256.

The box cannot read what it writes (it holds no private key), but it can hash the ciphertext as it goes
to the card. Each seal it reports becomes a signed `seal` entry in the consent ledger, so a supervisor's
tool can tell a file the box wrote from one spliced in, swapped, cut or forged. docs/formats.md
("Seals") says when the box seals what; this module is what a seal is, shared by the box and the
supervisor's tool.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from consentbox.crypto.stream import CHUNK_SIZE
from consentbox.recording.wav import HEADER_SIZE

#: While a segment is written, a checkpoint seal every this many chunks: 2 MiB of audio, about 22 s at
#: the default 48 kHz 16-bit mono. A power cut that the box never recovers from (its card taken straight
#: to the supervisor) leaves at most that much audio unbound; in return the ledger gains one entry
#: (about 490 bytes and one fdatasync on the box) per 22 s of recording, not one per 0.7 s chunk.
CHECKPOINT_CHUNKS = 32


@dataclass(frozen=True)
class Seal:
    """The first `bytes` bytes of one file of a session, as the box wrote them: the fields of a `seal`
    ledger entry, by the same names."""

    segment: int | None  # the segment's number (0, 1, …), or None for the session's manifest
    bytes: int  # how many bytes of the file's ciphertext this binds, from its start
    sha256: str  # SHA-256 of those bytes, lowercase hex
    frames: int | None  # audio frames in the plaintext of those bytes (WAV header excluded); None: manifest
    final: bool  # those bytes are the whole file; False: a prefix (a checkpoint, or a segment cut short)


def chunk_frames(chunks: int, frame_bytes: int) -> int:
    """The audio frames in a segment's first `chunks` whole 64 KiB chunks of plaintext (its WAV header
    excluded): what a prefix of whole chunks holds."""
    return max(0, chunks * CHUNK_SIZE - HEADER_SIZE) // frame_bytes


def manifest_seal(ciphertext: bytes) -> Seal:
    """The seal of a manifest version: the whole encrypted file as written to the card."""
    return Seal(None, len(ciphertext), hashlib.sha256(ciphertext).hexdigest(), None, final=True)
