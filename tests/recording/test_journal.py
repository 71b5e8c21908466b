"""The box's journal: open sessions' manifests, private to the box, replaced whole, each session's encrypted under a
key of its own that is shredded in place when the session is forgotten."""

from __future__ import annotations

import errno
import json
import os
import random
import stat
from datetime import date
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason
from consentbox.crypto.aead import encrypt_message
from consentbox.recording.journal import ENTRY_HEADER, Journal, JournalEntry, JournalError
from consentbox.recording.manifest import Consent, Interval, Manifest, Segment, policy_digest
from consentbox.recording.wav import AudioFormat


def _manifest(started, session: str = "0123456789abcdef", **changes) -> Manifest:
    values = dict(session=session, policy_sha256=policy_digest(Policy()), headcount=2,
                  consents=(Consent(1, 2.0), Consent(2, 3.0)), intervals=(Interval(5.0),),
                  audio=AudioFormat.of(Policy()), segments=(), overruns=0, end_reason=None, ended=None,
                  withdrawn=False, expires=date(2026, 4, 3), started=started)
    return Manifest(**{**values, **changes})


def test_entries_are_saved_whole_private_and_listed_by_id(journal, started):
    first, second = _manifest(started, "ffffffffffffffff"), _manifest(started, "0000000000000001")
    journal.save(first)
    journal.save(second, destroy=True)
    assert journal.pending() == [JournalEntry(second, destroy=True), JournalEntry(first, destroy=False)]
    assert stat.S_IMODE(journal.directory.stat().st_mode) == 0o700
    for path in journal.directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    ended = _manifest(started, "ffffffffffffffff", intervals=(Interval(5.0, 9.0, 192_000),),
                      end_reason=EndReason.ENDED, ended=9.0)
    journal.save(ended)  # a new version replaces the old one
    journal.remove("0000000000000001")
    assert journal.pending() == [JournalEntry(ended, destroy=False)]
    assert sorted(p.name for p in journal.directory.iterdir()) == ["ffffffffffffffff.json", "ffffffffffffffff.key"]


def test_a_version_cut_off_by_a_crash_is_never_read_and_is_deleted_at_the_next_start(journal, started, tmp_path):
    journal.save(_manifest(started))
    half_written = journal.directory / ".0123456789abcdef.json.tmp"
    half_written.write_bytes(b'{"destroy": false, "manif')
    assert [entry.manifest.session for entry in journal.pending()] == ["0123456789abcdef"]

    failures: list[JournalError] = []
    again = Journal(tmp_path / "state", on_failure=failures.append)
    assert not half_written.exists() and len(again.pending()) == 1 and failures == []


def _words(values) -> set[str]:
    """Every key and every text value in `values` (JSON values), as they would show in JSON."""
    if isinstance(values, dict):
        return set(values) | {word for value in values.values() for word in _words(value)}
    if isinstance(values, list):
        return {word for value in values for word in _words(value)}
    return {values} if isinstance(values, str) else set()


def test_an_entry_tells_nothing_without_its_key(journal, started):
    manifest = _manifest(started, intervals=(Interval(5.0, 9.0, 192_000),), end_reason=EndReason.WITHDRAWN,
                         ended=9.0, withdrawn=True,
                         segments=(Segment("0123456789abcdef.000.wav.age", 0, 384_044, "ab" * 32),))
    journal.save(manifest, destroy=True)
    entry = (journal.directory / "0123456789abcdef.json").read_bytes()
    key = (journal.directory / "0123456789abcdef.key").read_bytes()

    words = _words({"destroy": True, "manifest": manifest.to_mapping()})
    assert {"headcount", "consents", "policy_sha256", "0123456789abcdef", "ab" * 32, "2026-04-03", "withdrawn"} <= words
    assert [word for word in words if word.encode() in entry] == []
    plaintext = json.dumps({"destroy": True, "manifest": manifest.to_mapping()}, separators=(",", ":"))
    assert entry.startswith(ENTRY_HEADER) and len(entry) == len(ENTRY_HEADER) + 12 + len(plaintext) + 16
    assert len(key) == 32 and key not in entry
    assert journal.pending() == [JournalEntry(manifest, destroy=True)]


def test_a_session_gets_one_key_and_each_version_a_fresh_nonce(tmp_path, started):
    journal = Journal(tmp_path / "state", on_failure=_fail_on_any, random_bytes=random.Random(7).randbytes)
    expected = random.Random(7)
    key = expected.randbytes(32)
    for _ in range(3):
        journal.save(_manifest(started))
        nonce = expected.randbytes(12)
        entry = (journal.directory / "0123456789abcdef.json").read_bytes()
        assert entry[len(ENTRY_HEADER):len(ENTRY_HEADER) + 12] == nonce
        assert (journal.directory / "0123456789abcdef.key").read_bytes() == key


def test_an_entry_that_cannot_be_read_is_reported_and_left_for_a_person_to_look_at(tmp_path, started):
    failures: list[JournalError] = []
    journal = Journal(tmp_path / "state", on_failure=failures.append)
    directory = journal.directory
    for session in ("0123456789abcdef", "1111111111111111", "2222222222222222", "3333333333333333"):
        journal.save(_manifest(started, session))
    entry, key = (directory / "0123456789abcdef.json").read_bytes(), (directory / "0123456789abcdef.key").read_bytes()
    tampered = bytearray((directory / "1111111111111111.json").read_bytes())
    tampered[len(ENTRY_HEADER) + 20] ^= 0x01
    (directory / "1111111111111111.json").write_bytes(tampered)
    (directory / "2222222222222222.key").write_bytes(os.urandom(32))  # another key
    (directory / "3333333333333333.key").unlink()
    for name, content in (("4444444444444444.json", entry), ("4444444444444444.key", key)):
        (directory / name).write_bytes(content)  # renamed, key and all: another session's entry
    (directory / "5555555555555555.json").write_text('{"destroy": false, "manifest": {}}')  # not encrypted
    bad = encrypt_message(key, b'{"destroy": false, "manifest": {}}', b"6666666666666666")
    (directory / "6666666666666666.json").write_bytes(ENTRY_HEADER + bad)  # decrypts, but is no entry
    (directory / "6666666666666666.key").write_bytes(key)
    (directory / "7777777777777777.json").write_bytes(entry)
    (directory / "7777777777777777.key").write_bytes(key[:5])  # a key cut short
    before = {path.name: path.read_bytes() for path in directory.iterdir()}

    assert [entry.manifest.session for entry in journal.pending()] == ["0123456789abcdef"]
    reasons = {
        "1111111111111111.json": "it does not decrypt with its key 1111111111111111.key: damaged, or not this "
                                 "session's entry",
        "2222222222222222.json": "it does not decrypt with its key 2222222222222222.key",
        "3333333333333333.json": "its key 3333333333333333.key is missing",
        "4444444444444444.json": "it does not decrypt with its key 4444444444444444.key",
        "5555555555555555.json": "it does not start with the line consentbox-journal/v1: not an encrypted journal "
                                 "entry",
        "6666666666666666.json": "manifest field format is missing",
        "7777777777777777.json": "its key 7777777777777777.key holds 5 bytes, not 32",
    }
    assert len(failures) == len(reasons)
    for failure, (name, reason) in zip(failures, reasons.items(), strict=True):
        assert str(failure).startswith(f"journal {directory / name} could not be read ("), failure
        assert reason in str(failure) and "\n" not in str(failure), failure
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == before  # all left alone


def test_removing_a_session_shreds_its_key_in_place_after_its_entry_is_gone(journal, started, tmp_path, monkeypatch):
    journal.save(_manifest(started))
    journal.save(_manifest(started, "ffffffffffffffff"))
    key_path = journal.directory / "0123456789abcdef.key"
    key = key_path.read_bytes()
    held = tmp_path / "held-key"
    os.link(key_path, held)  # the key file's inode, to read after its name is gone
    inode = held.stat().st_ino
    seen: list[tuple[bytes, bool]] = []
    real_ftruncate = os.ftruncate

    def ftruncate(fd, length):
        if os.fstat(fd).st_ino == inode:  # what the key's own blocks hold, just before they are freed
            seen.append((held.read_bytes(), (journal.directory / "0123456789abcdef.json").exists()))
        real_ftruncate(fd, length)

    monkeypatch.setattr(os, "ftruncate", ftruncate)
    journal.remove("0123456789abcdef")

    [(overwritten, entry_left)] = seen
    assert len(overwritten) == 32 and overwritten != key and not entry_left
    assert held.stat().st_ino == inode and held.read_bytes() == b""
    assert sorted(path.name for path in journal.directory.iterdir()) == ["ffffffffffffffff.json",
                                                                         "ffffffffffffffff.key"]
    journal.remove("0123456789abcdef")  # again: nothing left to do, nothing reported


def test_a_key_whose_entry_is_gone_is_shredded_at_the_next_start(tmp_path, started):
    journal = Journal(tmp_path / "state", on_failure=_fail_on_any)
    journal.save(_manifest(started))
    journal.save(_manifest(started, "ffffffffffffffff"))
    (journal.directory / "0123456789abcdef.json").unlink()  # cut off before its first entry, or in `remove`
    (journal.directory / "1111111111111111.key").write_bytes(b"")  # cut off while its key was written
    held = tmp_path / "held-key"
    os.link(journal.directory / "0123456789abcdef.key", held)

    again = Journal(tmp_path / "state", on_failure=_fail_on_any)
    assert held.read_bytes() == b"" and held.stat().st_nlink == 1
    assert sorted(path.name for path in again.directory.iterdir()) == ["ffffffffffffffff.json",
                                                                       "ffffffffffffffff.key"]
    assert [entry.manifest.session for entry in again.pending()] == ["ffffffffffffffff"]


def test_an_entry_that_cannot_be_removed_keeps_its_key(tmp_path, started, monkeypatch):
    failures: list[JournalError] = []
    journal = Journal(tmp_path / "state", on_failure=failures.append)
    journal.save(_manifest(started))
    key = (journal.directory / "0123456789abcdef.key").read_bytes()
    real_unlink = os.unlink

    def failing_disk(path, *args, **kwargs):
        if Path(path).name == "0123456789abcdef.json":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", failing_disk)
    journal.remove("0123456789abcdef")
    monkeypatch.undo()

    assert [str(f).split(" (")[0] for f in failures] == [
        f"journal {journal.directory / '0123456789abcdef.json'} could not be removed"]
    # Still readable, so the next start finishes the session and removes it then.
    assert (journal.directory / "0123456789abcdef.key").read_bytes() == key
    assert journal.pending() == [JournalEntry(_manifest(started), destroy=False)]


def _fail_on_any(error: JournalError) -> None:
    raise AssertionError(f"the journal failed: {error}")


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failing_journal_is_reported_never_raised(tmp_path, started, monkeypatch, failing):
    failures: list[JournalError] = []
    journal = Journal(tmp_path / "state", on_failure=failures.append)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, failing, no_space)  # the entry's rename; the key's sync, the first sync of all
    assert journal.save(_manifest(started)) is False
    monkeypatch.undo()

    name = "0123456789abcdef.json" if failing == "replace" else "0123456789abcdef.key"
    problem = "could not be saved" if failing == "replace" else "could not be made or read"
    assert len(failures) == 1 and isinstance(failures[0], OSError)
    assert str(failures[0]).startswith(f"journal {journal.directory / name} {problem} "
                                       "(No space left on device): recording goes on")
    assert journal.pending() == []
    # The key of a session whose first entry failed stays for its next save, until the session is removed.
    kept = ["0123456789abcdef.key"] if failing == "replace" else []
    assert sorted(path.name for path in journal.directory.iterdir()) == kept
    journal.remove("0123456789abcdef")
    assert list(journal.directory.iterdir()) == [] and len(failures) == 1


def test_a_key_is_made_exclusively_and_synced_before_its_entry_and_forgotten_only_after_it(journal, started,
                                                                                           monkeypatch):
    from consentbox.recording import journal as module

    directory = journal.directory
    calls: list[tuple[str, ...]] = []
    key_files: set[int] = set()  # inodes: a closed key's fd number is soon another file's
    real_open, real_fsync = os.open, os.fsync
    real_sync, real_replace, real_shred = module.sync_directory, module.replace_file, module.shred

    def names() -> str:
        return " ".join(sorted(path.name for path in directory.iterdir() if not path.name.startswith(".")))

    def open_(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if str(path).endswith(".key") and flags & os.O_CREAT:
            key_files.add(os.fstat(fd).st_ino)
            wanted = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY
            calls.append(("create key", str(flags & wanted == wanted), oct(args[0])))
        return fd

    def fsync(fd):
        real_fsync(fd)
        if os.fstat(fd).st_ino in key_files:
            calls.append(("fsync key", str(os.fstat(fd).st_size)))

    def sync(path):
        real_sync(path)
        calls.append(("sync directory", names()))

    def replace(path, name, *args, **kwargs):
        real_replace(path, name, *args, **kwargs)
        calls.append(("entry in place", name))

    def shred(path, *args):
        calls.append(("shred", path.name, names()))
        key_files.discard(path.stat().st_ino)  # its own syncs are storage/shred.py's, tested there
        real_shred(path, *args)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(module, "sync_directory", sync)
    monkeypatch.setattr(module, "replace_file", replace)
    monkeypatch.setattr(module, "shred", shred)

    session = "0123456789abcdef"
    journal.save(_manifest(started, session))
    assert calls == [("create key", "True", "0o600"),
                     ("fsync key", "32"),
                     ("sync directory", f"{session}.key"),
                     ("entry in place", f"{session}.json")]

    calls.clear()
    journal.save(_manifest(started, session))  # a later version: the key is read, never made again
    assert calls == [("entry in place", f"{session}.json")]

    calls.clear()
    journal.remove(session)
    assert calls == [("sync directory", f"{session}.key"),  # the entry unlinked, and that synced, first
                     ("shred", f"{session}.key", f"{session}.key"),
                     ("sync directory", "")]
