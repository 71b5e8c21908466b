"""The order in which a session's files leave the card (issue 22): its manifest goes last.

The manifest is what marks a destruction still in progress: while it is on the card, recovery
finds the session and finishes removing it, so removing it first could leave audio nobody knows of.
The directory is synced only after the last unlink, so the removals reach the card together.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.recording.manifest import manifest_name
from consentbox.recording.session import SessionFiles, remove_session_files
from consentbox.storage.atomic import temporary_name
from consentbox.storage.ids import new_session_id

SMALL = Policy(segment_bytes=1 << 20)
PERIOD = 1024  # frames per write, as ALSA hands them over


def _spy(monkeypatch, card: Path) -> list[str]:
    """Record every unlink in the card's directory (by name) and every sync of that directory, in order."""
    events: list[str] = []

    def on_card(fd: int) -> bool:
        return os.readlink(f"/proc/self/fd/{fd}") == str(card)

    real_unlink, real_fsync = os.unlink, os.fsync

    def unlink(path, *, dir_fd=None):
        if (dir_fd is not None and on_card(dir_fd)) or Path(path).parent == card:
            events.append(f"unlink {os.path.basename(path)}")
        return real_unlink(path, dir_fd=dir_fd)

    def fsync(fd):
        if on_card(fd):
            events.append("sync card")
        return real_fsync(fd)
    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(os, "fsync", fsync)
    return events


def _feed(files: SessionFiles, audio: bytes) -> None:
    step = PERIOD * SMALL.frame_bytes
    for at in range(0, len(audio), step):
        files.write(audio[at:at + step])


def _recorded(card: Path, identity, started, journal, pcm) -> SessionFiles:
    """A session with a sealed segment and one still open, and a half-written manifest beside them."""
    files = SessionFiles.create(card, new_session_id(), [identity.recipient], SMALL, headcount=2,
                                consents=[(1, 4.0), (2, 6.5)], started=started, journal=journal)
    files.start_interval(0.0)
    _feed(files, pcm(SMALL, 48_000 * 8))
    files.stop_interval(8.0, 48_000 * 8)
    files.start_interval(9.0)
    _feed(files, pcm(SMALL, 4096))  # still open when the session is withdrawn
    # A power cut's leftover, which sorts before everything else.
    (card / temporary_name(manifest_name(files.session))).write_bytes(b"half a manifest")
    return files


def _assert_manifest_last(events: list[str], card_names: list[str], session: str) -> None:
    manifest = manifest_name(session)
    unlinked = [event.removeprefix("unlink ") for event in events if event.startswith("unlink ")]
    assert sorted(unlinked) == sorted(card_names) and len(unlinked) >= 4
    assert unlinked[-1] == manifest
    assert events[-1] == "sync card" and events.index("sync card") == len(unlinked)


@pytest.mark.parametrize("how", ["destroy", "remove_session_files"])
def test_the_manifest_is_unlinked_last_and_the_directory_synced_after(how, journal, card, identity, started, pcm,
                                                                      monkeypatch):
    files = _recorded(card, identity, started, journal, pcm)
    names = sorted(path.name for path in card.iterdir())
    events = _spy(monkeypatch, card)

    if how == "destroy":
        files.destroy()
    else:
        fd = os.open(card, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert remove_session_files(fd, files.session) == []
        finally:
            os.close(fd)

    _assert_manifest_last(events, names, files.session)
    assert not any(card.iterdir())
