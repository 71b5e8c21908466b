"""The card's copy of the ledger: an encrypted extract per session whose files are on the card, rewritten whole
after each of its entries and when a card comes back; nothing else of the ledger ever reaches the card."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consentbox.admin.extracts import load_extract
from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason, Problem
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.card import CardDirectory
from consentbox.ledger import Entry, Kind, verify
from consentbox.ledger.extract import Extract, ExtractError
from consentbox.ledger.session_entries import KEPT_SESSIONS
from consentbox.recording.manifest import extract_name, manifest_name
from consentbox.storage.file_times import FIXED_TIME
from tests.support.ledgers import POLICY_SHA256, SteppingClocks, open_ledger, sample_ledger

SESSION = "0123456789abcdef"
OTHER = "fedcba9876543210"


@dataclass
class SwitchableCard:
    """A card directory whose problems the test sets (a card pulled out, or turned read-only)."""

    path: Path
    trouble: set[Problem] = field(default_factory=set)

    def problems(self) -> frozenset[Problem]:
        return frozenset(self.trouble)


@pytest.fixture
def box(tmp_path: Path) -> Path:
    return tmp_path / "box-ledger.jsonl"


def recorded_on(card: Path, session: str) -> None:
    """The session's files reach the card (its manifest: the box cannot read it, only see it)."""
    (card / manifest_name(session)).write_bytes(b"age ciphertext")


def card_extract(card: Path, session: str, reader, key: DeviceSigningKey) -> Extract:
    return load_extract(card / extract_name(session), [reader], session=session, device_key=key.public_key)


def in_box(box: Path, session: str) -> tuple[Entry, ...]:
    """The session's entries in the box's ledger."""
    return verify(box, session=session).selected


def begin(ledger, session: str = SESSION) -> None:
    ledger.append(Kind.SETUP, session, headcount=2, policy_sha256=POLICY_SHA256)


def test_after_every_entry_of_a_session_on_the_card_its_extract_holds_them_all(box, card, device_key, reader):
    clocks = SteppingClocks()
    with open_ledger(box, card, device_key, clocks, readers=[reader.recipient]) as ledger:
        begin(ledger)
        ledger.append(Kind.CONSENT, SESSION, seat=1)
        assert os.listdir(card) == []  # nothing on the card yet, so nothing of its ledger either
        recorded_on(card, SESSION)
        for kind, fields in [(Kind.START, {}), (Kind.PAUSE, {}), (Kind.RESUME, {}),
                             (Kind.END, {"reason": EndReason.ENDED, "kept": True})]:
            clocks.advance(5)
            ledger.append(kind, SESSION, **fields)
            extract = card_extract(card, SESSION, reader, device_key)
            assert extract.entries == in_box(box, SESSION) and extract.entries[-1].kind is kind
        before = (card / extract_name(SESSION)).read_bytes()
        ledger.append(Kind.FAULT, problem=Problem.CARD_FULL)  # entries of no session stay on the box
        ledger.append(Kind.WIPE, files=0)
        assert (card / extract_name(SESSION)).read_bytes() == before
    assert sorted(os.listdir(card)) == sorted([manifest_name(SESSION), extract_name(SESSION)])
    assert card_extract(card, SESSION, reader, device_key).boot == verify(box).first


def test_sessions_that_never_reached_the_card_leave_nothing_of_the_ledger_there(tmp_path: Path, card, device_key,
                                                                                reader):
    sample_ledger(tmp_path / "ledger.jsonl", card, device_key, readers=[reader.recipient])
    assert os.listdir(card) == []


def test_an_extract_is_rewritten_whole_whatever_the_card_holds(box, card, device_key, reader, other_box_key):
    # The mirror this replaced only appended to the card's copy; an extract is signed as a whole, so the box
    # replaces it whole each time: an edit, a cut, garbage or another box's file there is simply replaced.
    with open_ledger(box, card, device_key, SteppingClocks(), readers=[reader.recipient]) as ledger:
        begin(ledger)
        recorded_on(card, SESSION)
        ledger.append(Kind.START, SESSION)
        path = card / extract_name(SESSION)
        whole = path.read_bytes()
        foreign = tmp_extract(card.parent, other_box_key, reader)
        for damage in (whole[:-40], whole[:200] + b"x" + whole[201:], b"", b"\0" * 4096, foreign):
            path.write_bytes(damage)
            with pytest.raises(ExtractError):
                card_extract(card, SESSION, reader, device_key)
            ledger.append(Kind.CONSENT, SESSION, seat=1)
            assert card_extract(card, SESSION, reader, device_key).entries == in_box(box, SESSION)
        inode = path.stat().st_ino
        ledger.append(Kind.CONSENT, SESSION, seat=2)
        assert path.stat().st_ino != inode  # a new file renamed over the old, never written in place
    assert sorted(os.listdir(card)) == sorted([manifest_name(SESSION), extract_name(SESSION)])  # no temporary left


def tmp_extract(directory: Path, key: DeviceSigningKey, reader) -> bytes:
    """Another box's extract of a session of the same id."""
    card = directory / "other-card"
    card.mkdir()
    recorded_on(card, SESSION)
    with open_ledger(directory / "other-box.jsonl", card, key, SteppingClocks(), readers=[reader.recipient]) as other:
        begin(other)
    return (card / extract_name(SESSION)).read_bytes()


def test_a_card_that_is_out_catches_up_when_it_comes_back(box, card, device_key, reader):
    switchable = SwitchableCard(card)
    with open_ledger(box, switchable, device_key, SteppingClocks(), readers=[reader.recipient]) as ledger:
        begin(ledger)
        recorded_on(card, SESSION)
        ledger.append(Kind.START, SESSION)
        switchable.trouble.add(Problem.NO_CARD)
        ledger.append(Kind.END, SESSION, reason=EndReason.CARD_LOST, kept=True)
        assert card_extract(card, SESSION, reader, device_key).entries[-1].kind is Kind.START  # behind
        switchable.trouble.clear()
        assert ledger.sync_card()  # the box calls this when the card is back
        assert card_extract(card, SESSION, reader, device_key).entries == in_box(box, SESSION)
        switchable.trouble.add(Problem.CARD_READ_ONLY)
        ledger.append(Kind.DESTRUCTION, SESSION, files=2, cause="withdrawn", due="2026-06-05")
        assert not ledger.sync_card()
        assert card_extract(card, SESSION, reader, device_key).entries[-1].kind is Kind.END
        switchable.trouble.clear()
        ledger.append(Kind.EXPIRY, SESSION, expires="2026-06-05", reason="policy")  # the next entry catches up
        assert card_extract(card, SESSION, reader, device_key).entries == in_box(box, SESSION)


def test_a_card_coming_back_gets_every_session_of_the_ledger_it_holds_and_no_other(box, card, device_key, reader,
                                                                                  other_box_key):
    sessions = [f"{n:016x}" for n in range(1, 4)]
    switchable = SwitchableCard(card, {Problem.NO_CARD})
    with open_ledger(box, switchable, device_key, SteppingClocks(), readers=[reader.recipient]) as ledger:
        for session in sessions:
            begin(ledger, session)
        begin(ledger, OTHER)  # never on this card
        for session in sessions[:2]:
            recorded_on(card, session)
        (card / extract_name(sessions[2])).write_bytes(b"left from before")  # only its extract is left
        foreign = tmp_extract(card.parent, other_box_key, reader)
        (card / extract_name(SESSION)).write_bytes(foreign)  # a session of another box: not ours to write
        switchable.trouble.clear()
        assert ledger.sync_card()
        for session in sessions:
            assert card_extract(card, session, reader, device_key).entries == in_box(box, session)
        assert not (card / extract_name(OTHER)).exists()
        assert (card / extract_name(SESSION)).read_bytes() == foreign


def test_an_empty_mount_point_is_not_the_card(box, card, device_key, reader):
    mount_point = CardDirectory(card, Policy(), require_mount=True)  # tmp_path is no mount point
    with open_ledger(box, mount_point, device_key, SteppingClocks(), readers=[reader.recipient]) as ledger:
        begin(ledger)
        recorded_on(card, SESSION)
        ledger.append(Kind.START, SESSION)
        assert not ledger.sync_card()
    assert os.listdir(card) == [manifest_name(SESSION)]


def test_a_missing_card_directory_only_leaves_the_extracts_behind(tmp_path: Path, box, device_key, reader):
    gone = tmp_path / "gone"
    with open_ledger(box, SwitchableCard(gone), device_key, SteppingClocks(),
                     readers=[reader.recipient]) as ledger:  # no problem reported, yet the writes fail
        begin(ledger)
        entry = ledger.append(Kind.START, SESSION)
        assert entry.seq == 2 and not ledger.sync_card()
    assert verify(box).entries == 4 and not gone.exists()


def test_without_readers_no_extract_is_written(box, card, device_key):
    with open_ledger(box, card, device_key, SteppingClocks()) as ledger:  # a box not provisioned
        begin(ledger)
        recorded_on(card, SESSION)
        ledger.append(Kind.START, SESSION)
        assert not ledger.sync_card()
    assert os.listdir(card) == [manifest_name(SESSION)]


def test_links_on_the_card_are_replaced_never_written_through(tmp_path: Path, box, card, device_key, reader):
    outside = tmp_path / "outside"
    outside.write_bytes(b"the box's own file")
    recorded_on(card, SESSION)
    os.symlink(outside, card / f".{extract_name(SESSION)}.tmp")  # planted at the temporary name
    with open_ledger(box, card, device_key, SteppingClocks(), readers=[reader.recipient]) as ledger:
        begin(ledger)
        (card / extract_name(SESSION)).unlink()
        os.symlink(outside, card / extract_name(SESSION))  # and at the extract's own name
        ledger.append(Kind.START, SESSION)
    assert outside.read_bytes() == b"the box's own file"
    assert not (card / extract_name(SESSION)).is_symlink()
    assert card_extract(card, SESSION, reader, device_key).entries == in_box(box, SESSION)
    assert sorted(os.listdir(card)) == sorted([manifest_name(SESSION), extract_name(SESSION)])


def test_an_extract_and_the_card_s_directory_carry_the_fixed_time_not_the_time_written(box, card, device_key,
                                                                                     reader):
    recorded_on(card, SESSION)
    with open_ledger(box, card, device_key, SteppingClocks(), readers=[reader.recipient]) as ledger:
        begin(ledger)
    fixed = int(FIXED_TIME.timestamp())
    for path in (card / extract_name(SESSION), card):
        status = path.stat()
        assert (status.st_mtime, status.st_atime) == (fixed, fixed), path


def test_entries_another_process_appended_are_in_the_next_extract(box, card, device_key, reader):
    # The box keeps its current session in memory; a job's entry for it (appended beside the box) must be
    # in the box's next extract, or the card would hold a signed record missing an entry.
    readers = [reader.recipient]
    with open_ledger(box, card, device_key, SteppingClocks(), readers=readers) as ledger:
        begin(ledger)
        recorded_on(card, SESSION)
        ledger.append(Kind.START, SESSION)
        job = open_ledger(box, card, device_key, SteppingClocks(), readers=readers)
        job.append(Kind.EXPIRY, SESSION, expires="2026-06-05", reason="bundle")
        job.close(shutdown=False)
        ledger.append(Kind.PAUSE, SESSION)
        extract = card_extract(card, SESSION, reader, device_key)
        assert [entry.kind for entry in extract.entries] == [Kind.SETUP, Kind.START, Kind.EXPIRY, Kind.PAUSE]
        assert extract.entries == in_box(box, SESSION)


def test_an_older_session_is_found_in_the_file_with_the_boot_of_its_own_run(box, card, device_key, reader):
    # More sessions than are kept in memory, over several starts of the box: a job that records a session's
    # destruction long after finds its entries, and the boot of the run it began in, in the file.
    sessions = [f"{n:016x}" for n in range(1, KEPT_SESSIONS + 3)]
    readers = [reader.recipient]
    for run, session in enumerate(sessions):
        with open_ledger(box, card, device_key, SteppingClocks(now=100.0 * run), readers=readers) as ledger:
            begin(ledger, session)
            recorded_on(card, session)
            ledger.append(Kind.START, session)
            ledger.append(Kind.END, session, reason=EndReason.ENDED, kept=True)
    with open_ledger(box, card, device_key, SteppingClocks(), readers=readers) as job:
        job.append(Kind.DESTRUCTION, sessions[0], files=2, cause="retention", due="2026-06-05")
    extract = card_extract(card, sessions[0], reader, device_key)
    assert extract.entries == in_box(box, sessions[0]) and extract.entries[-1].kind is Kind.DESTRUCTION
    assert extract.boot.seq == 0  # the first run's boot, not the job's start


def test_a_session_no_longer_kept_in_memory_is_found_in_the_file(box, card, device_key, reader):
    sessions = [f"{n:016x}" for n in range(1, KEPT_SESSIONS + 3)]
    with open_ledger(box, card, device_key, SteppingClocks(), readers=[reader.recipient]) as ledger:
        for session in sessions:
            begin(ledger, session)
            recorded_on(card, session)
        for session in sessions:  # the first ones were dropped from memory by the later ones
            ledger.append(Kind.END, session, reason=EndReason.ENDED, kept=True)
            assert card_extract(card, session, reader, device_key).entries == in_box(box, session)
