"""The box reads capture period by period and hands it on in blocks (issue 20): cheaper, and no later.

What it hands on goes to the files at most BLOCK_PERIODS periods at a time, and before a write would seal a
chunk later than a period after the chunk filled, as writing period by period would: a power cut loses no
more. An event is heard after the period being read, and what was read is handed on before it is handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consentbox.box.box import BLOCK_PERIODS, LEVEL_BLOCK_PERIODS
from consentbox.core.events import RECORD, ConsentButton
from consentbox.core.level import LEVEL_SHOWN_SECONDS
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.recording.session import SessionFiles
from tests.support.simulated import BoxRig

POLICY = Policy()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Each write to a session's files: its bytes, and the room before a seal it met."""
    seen: list[tuple[int, int]] = []
    write = SessionFiles.write

    def noted(files: SessionFiles, pcm: memoryview) -> None:
        seen.append((len(pcm), files.room_before_seal))
        write(files, pcm)

    monkeypatch.setattr(SessionFiles, "write", noted)
    return seen


def test_audio_goes_to_the_files_in_blocks_and_each_chunk_is_sealed_within_a_period_of_filling(
        tmp_path: Path, writes: list[tuple[int, int]]) -> None:
    rig = BoxRig(tmp_path, X25519Identity.generate().recipient, POLICY)
    rig.start_recording()
    rig.wait(30)
    sizes = [size for size, _ in writes]
    waiting = rig.box._unwritten.size  # handed on by the hold-back, written after the events handled next
    assert waiting <= BLOCK_PERIODS * POLICY.period_bytes
    assert rig.audio.frames_read * POLICY.frame_bytes - sum(sizes) - waiting == POLICY.period_bytes, \
        "all that was read went to the files but the period read last, which the hold-back keeps waiting"
    rig.end()
    assert max(sizes) == BLOCK_PERIODS * POLICY.period_bytes, "blocks of up to BLOCK_PERIODS periods"
    assert len(writes) < 30 / POLICY.period_seconds / 4, "far fewer writes than periods"
    sealing = [(size, room) for size, room in writes if size > room]
    assert len(sealing) >= 30 * POLICY.rate * POLICY.frame_bytes // (64 * 1024) - 1, "every chunk seals"
    assert all(size - room <= POLICY.period_bytes for size, room in sealing), \
        "a chunk is sealed by the write after it filled, within a period of audio"


def test_while_the_level_is_shown_blocks_are_short(tmp_path: Path, writes: list[tuple[int, int]]) -> None:
    rig = BoxRig(tmp_path, X25519Identity.generate().recipient, POLICY)
    rig.start_recording()
    rig.wait(LEVEL_SHOWN_SECONDS - 0.5)
    assert writes and max(size for size, _ in writes) <= LEVEL_BLOCK_PERIODS * POLICY.period_bytes
    rig.end()


def test_what_was_read_is_handed_on_before_an_event_is_handled(tmp_path: Path) -> None:
    # A CONSENT press while recording holds back from the period read last: the hold-back holds exactly that
    # one period when the press is handled, not a block's worth.
    rig = BoxRig(tmp_path, X25519Identity.generate().recipient, POLICY)
    rig.start_recording()
    rig.wait(3.3)
    before = rig.audio.frames_read
    rig.press(ConsentButton(1))
    held_back = rig.box._require_setup().hold_back
    assert rig.audio.frames_read == before, "the press is handled without reading on"
    assert held_back.since is not None
    read_at = rig.clock.now() - rig.box._require_setup().opened_at
    assert held_back.since == pytest.approx(read_at - POLICY.period_seconds)
    rig.release(ConsentButton(1))
    rig.end()


def noting(monkeypatch: pytest.MonkeyPatch, calls: list[str], target: object, name: str, label: str = "") -> None:
    """Make `target.name` note in `calls` that it was called (as `label`; the ledger's append, as the kind of
    the entry), then do its work."""
    original = getattr(target, name)

    def noted(*args: Any, **fields: Any) -> Any:
        calls.append(label or args[0].value)
        return original(*args, **fields)

    monkeypatch.setattr(target, name, noted)


def test_capture_opens_at_once_and_the_files_follow_with_its_first_period(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rig = BoxRig(tmp_path, X25519Identity.generate().recipient, POLICY)
    calls: list[str] = []
    noting(monkeypatch, calls, rig.audio, "open", "device opened")
    noting(monkeypatch, calls, rig.box.ledger, "append")
    rig.start_recording()
    assert calls[calls.index("device opened"):][:2] == ["device opened", "start"], "the device before the ledger"
    rig.wait(1)
    [opened] = [entry["t"] for entry in rig.of("capture") if entry["open"]]
    files = [entry["t"] for entry in rig.of("file")]
    assert len(files) == 2 and all(made == pytest.approx(opened + POLICY.period_seconds) for made in files)
    rig.end()


def test_capture_closes_before_the_card_and_the_ledger_are_written(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rig = BoxRig(tmp_path, X25519Identity.generate().recipient, POLICY)
    rig.start_recording()
    rig.wait(1)
    calls: list[str] = []
    noting(monkeypatch, calls, rig.audio, "close", "device closed")
    noting(monkeypatch, calls, rig.box.ledger, "append")
    noting(monkeypatch, calls, SessionFiles, "stop_interval", "sealed")
    noting(monkeypatch, calls, SessionFiles, "write", "written")
    rig.hold(RECORD)  # a tap while recording pauses
    # What was read until the tap is written after the device closed: no chunk's sync delays the close.
    after = calls[calls.index("device closed"):]
    assert after[:3] == ["device closed", "pause", "written"] and "sealed" in after, calls
    rig.end()
