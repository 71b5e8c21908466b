"""Sessions gone from their card (issue 15, item 5): each gets one `destruction` receipt and leaves the index.

A session the box recorded on the card now in the slot (the index holds that card's id) whose segments
and manifest are all gone was deleted without the box, or destroyed with `consentbox-admin destroy`
(which leaves `<id>.destroyed`): the wipe receipts it once, `absent` or `off_box`, and forgets it, so
nothing repeats at the next run. A session of another card, or of a card whose id the index does not
know, is never taken for gone.
"""

from __future__ import annotations

from datetime import date

import pytest

from consentbox.admin.destroy import destroy_session
from consentbox.ledger.writer import Ledger
from consentbox.recording.card_id import CARD_ID_NAME, card_identity
from consentbox.recording.recorded import destroyed_mark_name
from consentbox.retention.index import Expiry, RetentionIndex
from consentbox.state.files import RETENTION_INDEX

from .conftest import DAY, NOW, Box

A, B = "a0000000000000aa", "b0000000000000bb"
WHY = {"absent": "its files were removed without the box", "off_box": "destroyed with consentbox-admin destroy"}


def gone(session: str, cause: str) -> str:
    return f"session {session} is gone from this card ({WHY[cause]}): recorded as {cause}"


def receipt(cause: str, started: float, days: int = 30) -> dict[str, object]:
    """The fields of a receipt for a session gone from its card: the box removed none of its files."""
    return {"cause": cause, "files": 0, "due": date.fromtimestamp(started + days * DAY).isoformat()}


def delete_by_hand(box: Box, files: dict[str, bytes]) -> None:
    for name in files:
        (box.card / name).unlink()


def test_a_session_deleted_by_hand_is_receipted_absent_once_and_leaves_the_index(box: Box):
    card = card_identity(box.card)
    delete_by_hand(box, box.record(A, started=NOW - 2 * DAY, card=card))  # not expired yet
    kept = box.record(B, started=NOW - DAY, card=card)

    assert box.wipe() == [gone(A, "absent")]
    assert box.receipts() == {A: [receipt("absent", NOW - 2 * DAY)]}
    assert set(box.index.entries()) == {B} and box.files() == kept
    assert box.entries("wipe") == [], "the box destroyed nothing"

    entries = len(box.entries())
    assert box.wipe() == ["nothing has expired"]
    assert len(box.entries()) == entries, "the next run said it again"


def test_an_expired_session_deleted_by_hand_is_accounted_for_not_waited_for_forever(box: Box):
    # Before card ids: "session … has expired but is not on this card" at every run, and no receipt ever.
    delete_by_hand(box, box.record(A, started=NOW - 40 * DAY, card=card_identity(box.card)))
    assert box.wipe() == [gone(A, "absent")]
    assert box.wipe() == ["nothing has expired"]
    assert box.receipts() == {A: [receipt("absent", NOW - 40 * DAY)]} and box.index.entries() == {}


def test_a_session_destroyed_off_the_box_is_receipted_off_box_and_its_mark_removed(box: Box):
    box.record(A, started=NOW - DAY, segments=2, card=card_identity(box.card))
    kept = box.record(B, started=NOW - DAY, card=card_identity(box.card))
    (box.card / f"{A}.ledger.age").write_bytes(b"the card's copy of A's ledger entries")
    said: list[str] = []
    destroy_session(box.card, A, said.append)
    assert len(said) == 3 and (box.card / destroyed_mark_name(A)).exists()

    assert box.wipe() == [gone(A, "off_box")]
    assert box.receipts() == {A: [receipt("off_box", NOW - DAY)]}
    assert box.files() == {**kept, f"{A}.ledger.age": b"the card's copy of A's ledger entries"}, \
        "the mark stayed, or the copy of the ledger went"
    assert box.wipe() == ["nothing has expired"]
    assert set(box.index.entries()) == {B}


def test_a_destruction_off_the_box_stopped_half_way_is_receipted_once_it_is_finished(box: Box):
    files = box.record(A, started=NOW - DAY, segments=2, card=card_identity(box.card))
    (box.card / destroyed_mark_name(A)).touch()  # the mark comes first; the segments went, then it stopped
    for name in files:
        if ".wav." in name:
            (box.card / name).unlink()

    assert box.wipe() == ["nothing has expired"]
    assert box.receipts() == {} and A in box.index.entries() and (box.card / destroyed_mark_name(A)).exists()

    destroy_session(box.card, A, lambda line: None)  # run again: the manifest goes too
    assert box.wipe() == [gone(A, "off_box")]


@pytest.mark.parametrize("other_has_an_id", [True, False])
def test_a_session_recorded_on_another_card_is_never_taken_for_gone(box: Box, tmp_path, other_has_an_id):
    first = card_identity(box.card)
    fresh = box.record(A, started=NOW - DAY, card=first)
    expired = box.record(B, started=NOW - 40 * DAY, card=first)
    other = tmp_path / "other-card"  # the clinic's second card, in the same slot
    other.mkdir()
    if other_has_an_id:
        card_identity(other)

    assert box.wipe(card=other) == [f"session {B} has expired but is not on this card"]
    assert box.wipe(card=other) == [f"session {B} has expired but is not on this card"]
    assert box.receipts() == {} and set(box.index.entries()) == {A, B}

    assert box.wipe() == [f"destroyed session {B} (2 files)", "no discard: the card directory is not a mount point"]
    assert box.files() == fresh and [e["fields"]["cause"] for e in box.entries("destruction")] == ["retention"]
    assert set(expired) - set(box.files()) == set(expired)


def test_sessions_indexed_before_cards_had_ids_are_never_taken_for_gone(box: Box):
    # An index as firmware before issue 15 wrote it: no "card" key, so the card is not known.
    (box.state / RETENTION_INDEX).write_bytes(
        b'{"format":1,"sessions":{"%s":{"destroying":null,"expires":%d,"started":%d}}}\n'
        % (A.encode(), NOW + 28 * DAY, NOW - 2 * DAY))
    card_identity(box.card)  # the box has since given the card an id; A's files are not on it

    assert box.wipe() == ["nothing has expired"]
    assert box.receipts() == {}
    assert box.index.entries() == {A: Expiry(NOW - 2 * DAY, NOW + 28 * DAY, card=None)}


class _Killed(BaseException):
    """The wipe's process dying (SIGKILL, a power cut) at the point where this is raised."""


def test_a_wipe_killed_right_after_the_receipt_leaves_one_receipt_with_its_cause(box: Box, monkeypatch):
    box.record(A, started=NOW - DAY, card=card_identity(box.card))
    assert box.wipe() == ["nothing has expired"]  # the ledger begun: the next append is the receipt
    destroy_session(box.card, A, lambda line: None)
    real = Ledger.append

    def append_then_die(self, *args, **fields):
        real(self, *args, **fields)
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr(Ledger, "append", append_then_die)
        with pytest.raises(_Killed):
            box.wipe()
    assert (box.card / destroyed_mark_name(A)).exists() and A in box.index.entries()

    assert box.wipe() == ["nothing has expired"]  # finished quietly: the receipt was given
    assert box.receipts() == {A: [receipt("off_box", NOW - DAY)]}
    assert box.index.entries() == {} and not (box.card / destroyed_mark_name(A)).exists()


def test_a_card_whose_id_file_is_damaged_takes_no_session_for_gone_and_says_why(box: Box):
    delete_by_hand(box, box.record(A, started=NOW - DAY, card=card_identity(box.card)))
    (box.card / CARD_ID_NAME).write_bytes(b"not an id\n")

    [line] = box.wipe()
    assert line.startswith("cannot tell which sessions are gone from this card: the card's id ")
    assert box.receipts() == {} and A in RetentionIndex(box.state).entries()
