"""Seals: every byte SessionFiles and start-up recovery put on the card is reported, with its SHA-256.

Each test records as the box does, collects the seals `on_seal` is told of, and holds them against the
files on the card: a final seal against the whole file, a checkpoint or a recovered seal against the
file's first `bytes` bytes, a manifest seal against the manifest the card held when it was made.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from consentbox.admin.export import read_manifest
from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason
from consentbox.crypto import decrypt
from consentbox.crypto.format import read_header
from consentbox.crypto.stream import CHUNK_SIZE, NONCE_SIZE, SEALED_CHUNK_SIZE
from consentbox.hw.card import CardDirectory
from consentbox.hw.errors import CardFull
from consentbox.recording.manifest import manifest_name, segment_name
from consentbox.recording.recovery import recover_interrupted
from consentbox.recording.seal import CHECKPOINT_CHUNKS, Seal
from consentbox.recording.session import SessionFiles
from consentbox.recording.wav import HEADER_SIZE
from consentbox.storage.ids import new_session_id
from tests.support.cards import small_card

RATE = 48_000
FRAME = 2  # 16-bit mono
PERIOD = 1024


@dataclass(frozen=True)
class Seen:
    """A seal, and the file it names as the card held it at that moment."""

    seal: Seal
    file: bytes


class Seals(list[Seen]):
    """What `on_seal` was told, each seal with its file as the card held it then."""

    def __init__(self, card: Path) -> None:
        super().__init__()
        self.card = card
        self.session = ""

    def __call__(self, seal: Seal) -> None:
        self.append(Seen(seal, _file(self.card, self.session, seal.segment).read_bytes()))

    def of(self, segment: int | None) -> list[Seal]:
        return [seen.seal for seen in self if seen.seal.segment == segment]


def _file(card: Path, session: str, segment: int | None) -> Path:
    return card / (manifest_name(session) if segment is None else segment_name(session, segment))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _audio(seconds: float, seed: int = 0) -> bytes:
    """Whole frames of noise: what the audio is does not matter to a seal."""
    return random.Random(seed).randbytes(round(seconds * RATE) * FRAME)


def _feed(files: SessionFiles, audio: bytes, step: int = PERIOD * FRAME) -> None:
    for at in range(0, len(audio), step):
        files.write(audio[at:at + step])


def _start(card: Path, policy: Policy, journal, identity, started, seals: Seals) -> SessionFiles:
    session = new_session_id()
    seals.session = session
    return SessionFiles.create(card, session, [identity.recipient], policy, headcount=2,
                               consents=[(1, 2.0), (2, 3.0)], started=started, journal=journal, on_seal=seals)


def _payload_start(data: bytes) -> int:
    """Where the first chunk of an age file begins: after its header and payload nonce."""
    src = io.BytesIO(data)
    read_header(src)
    return src.tell() + NONCE_SIZE


def _frames(data: bytes, identity) -> int:
    """Audio frames in what `data` decrypts to (its authenticated chunks), the WAV header excluded."""
    out = io.BytesIO()
    decrypt(io.BytesIO(data), out, [identity], salvage=True)
    return max(0, len(out.getvalue()) - HEADER_SIZE) // FRAME


def assert_binds(seal: Seal, data: bytes) -> None:
    """`seal` binds `data`: all of it if final, else its first `seal.bytes` bytes."""
    if seal.final:
        assert (seal.bytes, seal.sha256) == (len(data), _sha256(data))
    else:
        assert len(data) >= seal.bytes and _sha256(data[:seal.bytes]) == seal.sha256


def test_a_whole_session_seals_each_file_as_the_card_holds_it(card, journal, identity, started):
    policy = Policy(segment_bytes=3 << 20)  # ~32.7 s of audio a segment: one checkpoint in a full one
    seals = Seals(card)
    files = _start(card, policy, journal, identity, started, seals)
    first, second = _audio(40.0, 1), _audio(25.0, 2)
    files.start_interval(10.0)
    _feed(files, first)  # rotates after ~32.7 s
    files.stop_interval(50.0, len(first) // FRAME)  # a pause
    files.start_interval(60.0)
    _feed(files, second)
    files.finalise(EndReason.ENDED, 85.0, withdrawn=False)

    # Manifest at create, start, rotation, pause, resume and end; each segment's header as it opens, its
    # checkpoint, then its end.
    assert [(s.seal.segment, s.seal.final) for s in seals] == [
        (None, True), (0, False), (None, True), (0, False), (0, True), (1, False), (None, True), (1, True),
        (None, True), (2, False), (None, True), (2, False), (2, True), (None, True)]
    on_card = {path.name: path.read_bytes() for path in card.iterdir()}
    assert sorted(on_card) == sorted([manifest_name(files.session)]
                                     + [segment_name(files.session, n) for n in range(3)])
    for number in range(3):
        data = on_card[segment_name(files.session, number)]
        header, *checkpoints, final = seals.of(number)
        assert_binds(header, data)
        assert (header.bytes, header.frames, header.final) == (_payload_start(data), 0, False)
        assert final.final and (final.bytes, final.sha256) == (len(data), _sha256(data))
        assert final.frames == _frames(data, identity)  # the audio the segment holds, to the frame
        for checkpoint in checkpoints:
            assert_binds(checkpoint, data)
            assert checkpoint.bytes == _payload_start(data) + CHECKPOINT_CHUNKS * SEALED_CHUNK_SIZE
            assert checkpoint.frames == (CHECKPOINT_CHUNKS * CHUNK_SIZE - HEADER_SIZE) // FRAME
    assert sum(seal.frames or 0 for seal in (seals.of(n)[-1] for n in range(3))) == (len(first) + len(second)) // 2

    manifests = [seen for seen in seals if seen.seal.segment is None]
    for seen in manifests:  # each version as the card held it when it was sealed
        assert (seen.seal.bytes, seen.seal.sha256, seen.seal.frames) == (len(seen.file), _sha256(seen.file), None)
    assert len({seen.seal.sha256 for seen in manifests}) == 6
    assert_binds(manifests[-1].seal, on_card[manifest_name(files.session)])  # the last is the card's


def test_checkpoints_come_every_32_chunks_and_bind_the_prefix_written_so_far(card, journal, identity, started):
    seals = Seals(card)
    files = _start(card, Policy(), journal, identity, started, seals)
    files.start_interval(0.0)
    chunk_audio = CHUNK_SIZE  # bytes of audio that fill a chunk (the WAV header takes 44 of the first)
    _feed(files, _audio(100 * chunk_audio / FRAME / RATE, 3))  # a period at a time
    files.write(_audio(70 * chunk_audio / FRAME / RATE, 4))  # one write that seals 70 chunks at once
    header, *checkpoints = [seen for seen in seals if seen.seal.segment == 0]
    files.finalise(EndReason.ENDED, 40.0, withdrawn=False)

    data = (card / segment_name(files.session, 0)).read_bytes()
    start = _payload_start(data)
    chunks = [(seen.seal.bytes - start) / SEALED_CHUNK_SIZE for seen in checkpoints]
    assert chunks == [32, 64, 96, 128, 160]
    assert (header.seal.bytes, header.seal.frames, header.seal.final) == (start, 0, False)  # at its opening
    for seen, count in zip(checkpoints, chunks, strict=True):
        assert not seen.seal.final and seen.seal.frames == (count * CHUNK_SIZE - HEADER_SIZE) // FRAME
        assert_binds(seen.seal, data)
        assert_binds(seen.seal, seen.file)  # on the card when it was sealed
        assert _frames(data[:seen.seal.bytes], identity) == seen.seal.frames
    assert seals.of(0)[-1].final and seals.of(0)[-1].frames == 170 * CHUNK_SIZE // FRAME


@pytest.fixture
def small(tmp_path: Path):
    """A 3 MiB card that really fills up."""
    try:
        with small_card(tmp_path / "small", 3 << 20) as path:
            yield path
    except OSError as error:
        pytest.fail(str(error))


def test_a_segment_a_full_card_cut_short_is_sealed_as_far_as_it_got(journal, small, identity, started):
    seals = Seals(small)
    files = _start(small, Policy(segment_bytes=1 << 20), journal, identity, started, seals)
    files.start_interval(0.0)
    with pytest.raises(CardFull):
        _feed(files, _audio(60.0, 5))  # 5.8 MB: more than the card holds
    files.finalise(EndReason.CARD_FULL, 60.0, withdrawn=False)

    *closed, cut = sorted(path for path in small.iterdir() if path.name.endswith(".wav.age"))
    for number, path in enumerate(closed):
        assert_binds(seals.of(number)[-1], path.read_bytes())
        assert seals.of(number)[-1].final
    data = cut.read_bytes()
    seal = seals.of(len(closed))[-1]
    assert not seal.final and (seal.bytes, seal.sha256) == (len(data), _sha256(data))  # cut back to whole chunks
    assert (seal.bytes - _payload_start(data)) % SEALED_CHUNK_SIZE == 0
    assert seal.frames == _frames(data, identity)
    manifest = seals.of(None)[-1]
    assert_binds(manifest, (small / manifest_name(files.session)).read_bytes())


def test_a_segment_whose_header_the_card_refused_is_sealed_empty(card, journal, identity, started, monkeypatch):
    seals = Seals(card)
    files = _start(card, Policy(segment_bytes=1 << 20), journal, identity, started, seals)
    files.start_interval(0.0)
    real_write = os.write

    def full_at_the_second_segment(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".001.wav.age"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", full_at_the_second_segment)
        with pytest.raises(CardFull):
            _feed(files, _audio(14.0, 10))  # rotates at ~10.9 s
    files.finalise(EndReason.CARD_FULL, 14.0, withdrawn=False)

    assert seals.of(1) == [Seal(1, 0, _sha256(b""), 0, final=False)]
    assert (card / segment_name(files.session, 1)).read_bytes() == b""  # listed in the manifest, and bound
    assert seals.of(0)[-1].final and seals.of(0)[-1].bytes == (card / segment_name(files.session, 0)).stat().st_size


# -- start-up recovery --------------------------------------------------------------------------------------


def _recover(card: Path, journal, identity, policy: Policy) -> list[tuple[str, Seal]]:
    told: list[tuple[str, Seal]] = []
    recover_interrupted(CardDirectory(card, policy), journal, [identity.recipient],
                        on_seal=lambda session, seal: told.append((session, seal)))
    return told


def test_recovery_seals_the_segment_left_open_and_the_manifest_it_writes(card, journal, identity, started):
    policy = Policy(segment_bytes=1 << 20)
    seals = Seals(card)
    files = _start(card, policy, journal, identity, started, seals)
    files.start_interval(5.0)
    _feed(files, _audio(4.0, 6))
    files.stop_interval(9.0, 4 * RATE)
    files.start_interval(13.0)
    _feed(files, _audio(14.0, 7))  # segment 1 is closed at ~10.9 s, segment 2 left open: the power goes
    open_segment = card / segment_name(files.session, 2)
    with open(open_segment, "ab") as torn:
        torn.write(b"\x5a" * 1000)  # part of a chunk that a power cut tore

    told = _recover(card, journal, identity, policy)
    assert [(session, seal.segment, seal.final) for session, seal in told] == [
        (files.session, 2, False), (files.session, None, True)]  # segments 0 and 1 had their final seals
    (_, segment), (_, manifest) = told
    data = open_segment.read_bytes()
    chunks = (len(data) - 1000 - _payload_start(data)) // SEALED_CHUNK_SIZE
    assert segment.bytes == _payload_start(data) + chunks * SEALED_CHUNK_SIZE == len(data) - 1000
    assert_binds(segment, data)
    assert segment.frames == _frames(data[:segment.bytes], identity) == (chunks * CHUNK_SIZE - HEADER_SIZE) // FRAME
    assert_binds(manifest, (card / manifest_name(files.session)).read_bytes())
    # The interval the power cut closed holds the audio the seals bind, to the frame.
    last = read_manifest(card / manifest_name(files.session), [identity]).intervals[-1]
    assert last.frames == seals.of(1)[-1].frames + segment.frames
    assert _recover(card, journal, identity, policy) == []  # nothing twice


def test_a_segment_cut_off_inside_its_header_is_sealed_empty(card, journal, identity, started):
    seals = Seals(card)
    files = _start(card, Policy(), journal, identity, started, seals)
    files.start_interval(5.0)
    _feed(files, _audio(1.0, 8))
    path = card / segment_name(files.session, 0)
    path.write_bytes(path.read_bytes()[:40])  # as if the power went while its header was written

    [(_, segment), (_, manifest)] = _recover(card, journal, identity, Policy())
    assert segment == Seal(0, 0, _sha256(b""), 0, final=False)
    assert_binds(manifest, (card / manifest_name(files.session)).read_bytes())


def test_a_final_manifest_recovery_puts_on_the_card_is_sealed_and_nothing_else(card, journal, identity, started,
                                                                               monkeypatch):
    seals = Seals(card)
    files = _start(card, Policy(), journal, identity, started, seals)
    files.start_interval(5.0)
    _feed(files, _audio(2.0, 9))
    files.stop_interval(7.0, 2 * RATE)
    with monkeypatch.context() as patch:
        patch.setattr("consentbox.recording.session.replace_file_at", _card_refuses)
        with pytest.raises(OSError):
            files.finalise(EndReason.ENDED, 8.0, withdrawn=False)
    told = _recover(card, journal, identity, Policy())
    assert [seal.segment for _, seal in told] == [None]  # the segment was closed and sealed at the pause
    assert_binds(told[0][1], (card / manifest_name(files.session)).read_bytes())


def _card_refuses(*args, **kwargs):
    raise OSError(30, "Read-only file system")
