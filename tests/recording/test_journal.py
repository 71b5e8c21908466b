"""The box's journal: plaintext copies of open sessions' manifests, private to the box, replaced whole."""

from __future__ import annotations

import errno
import os
import stat
from datetime import date

from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason
from consentbox.recording.journal import Journal, JournalEntry, JournalError
from consentbox.recording.manifest import Consent, Interval, Manifest, policy_digest
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
    assert sorted(p.name for p in journal.directory.iterdir()) == ["ffffffffffffffff.json"]


def test_a_version_cut_off_by_a_crash_is_never_read_and_is_deleted_at_the_next_start(journal, started, tmp_path):
    journal.save(_manifest(started))
    half_written = journal.directory / ".0123456789abcdef.json.tmp"
    half_written.write_bytes(b'{"destroy": false, "manif')
    assert [entry.manifest.session for entry in journal.pending()] == ["0123456789abcdef"]

    failures: list[JournalError] = []
    again = Journal(tmp_path / "state", on_failure=failures.append)
    assert not half_written.exists() and len(again.pending()) == 1 and failures == []


def test_an_unreadable_entry_is_reported_and_left_for_a_person_to_look_at(tmp_path, started):
    failures: list[JournalError] = []
    journal = Journal(tmp_path / "state", on_failure=failures.append)
    journal.save(_manifest(started))
    (journal.directory / "fedcba9876543210.json").write_text('{"destroy": false, "manifest": {}}')
    (journal.directory / "1111111111111111.json").write_bytes(
        (journal.directory / "0123456789abcdef.json").read_bytes())  # renamed: another session's entry

    assert [entry.manifest.session for entry in journal.pending()] == ["0123456789abcdef"]
    assert [str(f).split(" could not be read ")[0] for f in failures] == [
        f"journal {journal.directory / '1111111111111111.json'}",
        f"journal {journal.directory / 'fedcba9876543210.json'}",
    ]
    assert "manifest field format is missing" in str(failures[1]) and "\n" not in str(failures[1])
    assert (journal.directory / "fedcba9876543210.json").exists()


def test_a_failing_journal_is_reported_never_raised(tmp_path, started, monkeypatch):
    failures: list[JournalError] = []
    journal = Journal(tmp_path / "state", on_failure=failures.append)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", no_space)
    journal.save(_manifest(started))
    monkeypatch.undo()

    assert len(failures) == 1 and isinstance(failures[0], OSError)
    assert str(failures[0]).startswith(f"journal {journal.directory / '0123456789abcdef.json'} could not be saved "
                                       "(No space left on device): recording goes on")
    assert journal.pending() == [] and list(journal.directory.iterdir()) == []
