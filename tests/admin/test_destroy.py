"""`consentbox-admin destroy --session ID CARD` (issue 15, item 5): a supervisor destroys one session's
recording on a card as the box's wipe does, and leaves the mark the box receipts as `off_box`.

Run as a supervisor runs it (the installed command), on a card directory holding two sessions, the
card's id and the session's copy of its ledger entries. What the box then records is in
tests/retention/test_gone.py and, on the whole box, tests/system/test_destruction.py.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from consentbox.admin import cli
from consentbox.admin import destroy as destroy_module
from consentbox.recording.card_id import CARD_ID_NAME
from consentbox.recording.manifest import manifest_name, segment_name
from consentbox.recording.recorded import destroyed_mark_name
from consentbox.storage.atomic import temporary_name
from consentbox.storage.file_times import FIXED_TIME

ADMIN = Path(sys.executable).parent / "consentbox-admin"
A, B = "a0000000000000aa", "b0000000000000bb"


def admin(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ADMIN, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def card(tmp_path: Path) -> Path:
    """A card with session A (two segments, a manifest, a manifest being replaced, its ledger extract),
    session B, and the card's id."""
    path = tmp_path / "card"
    path.mkdir()
    for name, size in [(segment_name(A, 0), 70_000), (segment_name(A, 1), 5_000), (manifest_name(A), 900),
                       (temporary_name(manifest_name(A)), 950), (f"{A}.ledger.age", 2_000),
                       (segment_name(B, 0), 3_000), (manifest_name(B), 900), (CARD_ID_NAME, 17)]:
        (path / name).write_bytes(os.urandom(size))
    return path


def contents(card: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(card.iterdir())}


def test_destroy_removes_the_session_s_recording_says_each_file_and_leaves_the_mark(card):
    before = contents(card)
    done = admin("destroy", "--session", A, card)

    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == [
        f"destroyed {name}: {size} bytes overwritten, then removed" for name, size in
        [(temporary_name(manifest_name(A)), 950), (segment_name(A, 0), 70_000), (segment_name(A, 1), 5_000),
         (manifest_name(A), 900)]]
    kept = {name: data for name, data in before.items() if not name.startswith((A, f".{A}"))}
    assert contents(card) == {**kept, f"{A}.ledger.age": before[f"{A}.ledger.age"], destroyed_mark_name(A): b""}
    mark = (card / destroyed_mark_name(A)).stat()
    assert mark.st_mtime == FIXED_TIME.timestamp(), "the mark's time says when the session was destroyed"


def test_destroy_overwrites_each_file_with_the_wipe_s_own_code_before_removing_it(card, monkeypatch, capsys):
    shredded: list[tuple[str, bytes]] = []
    real = destroy_module.shred

    def shred(path, may_continue, **options):
        shredded.append((path.name, path.read_bytes()))
        return real(path, may_continue, **options)
    monkeypatch.setattr(destroy_module, "shred", shred)
    before = contents(card)

    assert cli.main(["destroy", "--session", A, str(card)]) == 0
    assert [name for name, _ in shredded] == [temporary_name(manifest_name(A)), segment_name(A, 0),
                                              segment_name(A, 1), manifest_name(A)], "the manifest last"
    assert all(data == before[name] for name, data in shredded)
    assert destroy_module.shred is shred and real.__module__ == "consentbox.storage.shred"
    assert len(capsys.readouterr().out.splitlines()) == 4


@pytest.mark.parametrize("session", ["a0000000000000a", "A0000000000000AA", "a0000000000000aa0", "../../etc/pass",
                                     "a000000000000*aa"])
def test_destroy_refuses_what_is_not_a_session_id_and_touches_nothing(card, session):
    before = contents(card)
    done = admin("destroy", "--session", session, card)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"consentbox-admin: {session!r} is not a session id: give the 16 lowercase hex "
                           "digits its files are named by\n")
    assert contents(card) == before


def test_destroy_refuses_a_session_with_no_recording_on_the_card(card, tmp_path):
    assert admin("destroy", "--session", A, card).returncode == 0
    before = contents(card)  # only A's ledger extract and its mark are left of it
    for session in (A, "c0000000000000cc"):
        done = admin("destroy", "--session", session, card)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr == f"consentbox-admin: session {session} has no recording on {card}: nothing to destroy\n"
    assert contents(card) == before

    done = admin("destroy", "--session", A, tmp_path / "no-such-card")
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1 and "is not a directory" in done.stderr


def test_a_destroy_stopped_half_way_by_a_failing_card_is_finished_by_running_it_again(card, monkeypatch, capsys):
    before = contents(card)
    real = destroy_module.shred

    def failing(path, may_continue, **options):
        if path.name == segment_name(A, 1):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        return real(path, may_continue, **options)

    with monkeypatch.context() as patch:
        patch.setattr(destroy_module, "shred", failing)
        assert cli.main(["destroy", "--session", A, str(card)]) == 1
    said = capsys.readouterr()
    assert said.out.splitlines() == [
        f"destroyed {temporary_name(manifest_name(A))}: 950 bytes overwritten, then removed",
        f"destroyed {segment_name(A, 0)}: 70000 bytes overwritten, then removed"]
    assert said.err.startswith("consentbox-admin: ") and said.err.count("\n") == 1
    # The mark is there and the manifest still is (it goes last), so the session is still found on the card.
    assert {segment_name(A, 1), manifest_name(A), destroyed_mark_name(A)} <= set(contents(card))

    assert cli.main(["destroy", "--session", A, str(card)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"destroyed {segment_name(A, 1)}: 5000 bytes overwritten, then removed",
        f"destroyed {manifest_name(A)}: 900 bytes overwritten, then removed"]
    kept = {name: data for name, data in before.items() if not name.startswith((A, f".{A}"))}
    assert contents(card) == {**kept, f"{A}.ledger.age": before[f"{A}.ledger.age"], destroyed_mark_name(A): b""}
