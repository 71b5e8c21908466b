"""The expiry index (issue 8, item 1): `retention.json` in the box's state directory.

Expiries only ever move earlier; the file is replaced whole under a lock, by any of the three
processes that change it (the box, the wipe, provisioning); a damaged file stops every wipe with a
one-line error naming it, rather than being taken for "nothing recorded".
"""

from __future__ import annotations

import multiprocessing
import stat
import time
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentbox.core.errors import ConsentBoxError
from consentbox.retention.index import Expiry, RetentionIndex, RetentionIndexError
from consentbox.state.files import RETENTION_INDEX

from .conftest import DAY, NOW

A, B = "a0000000000000aa", "b0000000000000bb"
CARD = "c4d0000000000001"


def test_a_session_expires_its_retention_days_after_it_started(tmp_path):
    index = RetentionIndex(tmp_path)
    assert index.entries() == {}, "no file yet is an empty index"
    assert index.add(A, NOW + 0.75, 30) == Expiry(NOW, NOW + 30 * DAY)
    index.add(B, NOW, 1)
    assert RetentionIndex(tmp_path).entries() == {A: Expiry(NOW, NOW + 30 * DAY), B: Expiry(NOW, NOW + DAY)}


def test_the_file_is_canonical_json_readable_only_by_the_box(tmp_path):
    index = RetentionIndex(tmp_path)
    index.add(A, NOW, 30, CARD)
    index.add(B, NOW, 30)
    index.mark_destroying(A, 3)
    assert (tmp_path / RETENTION_INDEX).read_bytes() == (
        b'{"format":1,"sessions":{"a0000000000000aa":{"card":"%s","destroying":3,"expires":%d,"started":%d},'
        b'"b0000000000000bb":{"card":null,"destroying":null,"expires":%d,"started":%d}}}\n'
        % (CARD.encode(), NOW + 30 * DAY, NOW, NOW + 30 * DAY, NOW))
    assert stat.S_IMODE((tmp_path / RETENTION_INDEX).stat().st_mode) == 0o600
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [RETENTION_INDEX, "retention.lock"], "a temporary file was left"


def test_adding_a_session_again_never_moves_its_expiry(tmp_path):
    index = RetentionIndex(tmp_path)
    index.add(A, NOW, 7)
    index.add(A, NOW + DAY, 365)  # the same id again (a retried start, say)
    assert index.entries()[A] == Expiry(NOW, NOW + 7 * DAY)


def test_shorten_moves_only_the_expiries_it_shortens(tmp_path):
    index = RetentionIndex(tmp_path)
    index.add(A, NOW - 20 * DAY, 30)  # expires NOW + 10 days
    index.add(B, NOW, 5)  # NOW + 5 days
    assert index.shorten(60) == {}
    assert index.shorten(7) == {A: Expiry(NOW - 20 * DAY, NOW - 13 * DAY)}, "what moved, and to where"
    assert index.entries() == {A: Expiry(NOW - 20 * DAY, NOW - 13 * DAY), B: Expiry(NOW, NOW + 5 * DAY)}


def test_an_update_that_changes_nothing_leaves_the_file_alone(tmp_path):
    index = RetentionIndex(tmp_path)
    index.add(A, NOW, 30)
    before = (tmp_path / RETENTION_INDEX).stat()
    index.shorten(30)
    index.remove(B)  # not there
    index.add(A, NOW, 30)
    after = (tmp_path / RETENTION_INDEX).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_destruction_is_noted_then_the_session_forgotten(tmp_path):
    index = RetentionIndex(tmp_path)
    index.add(A, NOW, 30)
    index.add(B, NOW, 30)
    index.mark_destroying(A, 4)
    assert index.entries()[A] == Expiry(NOW, NOW + 30 * DAY, destroying=4)
    index.shorten(1)
    assert index.entries()[A].destroying == 4, "shortening forgot a destruction in progress"
    index.remove(A)
    assert list(index.entries()) == [B]


@settings(max_examples=60, deadline=None)
@given(started=st.lists(st.integers(NOW - 4000 * DAY, NOW), min_size=1, max_size=4),
       days=st.integers(1, 3650),
       limits=st.lists(st.integers(1, 3650), max_size=6))
def test_expiries_only_ever_move_earlier(tmp_path_factory, started, days, limits):
    directory = tmp_path_factory.mktemp("index")
    index = RetentionIndex(directory)
    sessions = [f"{n:016x}" for n in range(len(started))]
    for session, start in zip(sessions, started, strict=True):
        index.add(session, start, days)
    before = index.entries()
    for limit in limits:
        index.shorten(limit)
        now = index.entries()
        assert all(now[s].expires <= before[s].expires for s in sessions)
        before = now
    shortest = min([days, *limits])
    expected = {s: Expiry(start, start + shortest * DAY) for s, start in zip(sessions, started, strict=True)}
    assert index.entries() == expected


def _add_many(directory, first: int) -> None:
    index = RetentionIndex(directory)
    for n in range(first, first + 25):
        index.add(f"{n:016x}", NOW, 30)


def test_processes_changing_the_index_at_once_lose_nothing(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_add_many, args=(tmp_path, first)) for first in range(0, 100, 25)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert sorted(RetentionIndex(tmp_path).entries()) == [f"{n:016x}" for n in range(100)]


def test_each_session_keeps_the_card_it_was_recorded_on_through_every_change(tmp_path):
    index = RetentionIndex(tmp_path)
    assert index.add(A, NOW, 30, CARD) == Expiry(NOW, NOW + 30 * DAY, card=CARD)
    index.shorten(7)
    index.mark_destroying(A, 2)
    assert RetentionIndex(tmp_path).entries() == {A: Expiry(NOW, NOW + 7 * DAY, destroying=2, card=CARD)}


def test_an_index_written_before_cards_had_ids_loads_with_every_card_unknown(tmp_path):
    # As firmware before issue 15 wrote it: no "card" key at all.
    (tmp_path / RETENTION_INDEX).write_bytes(
        b'{"format":1,"sessions":{"a0000000000000aa":{"destroying":null,"expires":%d,"started":%d}}}\n'
        % (NOW + 30 * DAY, NOW))
    index = RetentionIndex(tmp_path)
    assert index.entries() == {A: Expiry(NOW, NOW + 30 * DAY, card=None)}
    index.add(B, NOW, 30, CARD)  # rewritten whole, the old session's card still unknown
    assert index.entries() == {A: Expiry(NOW, NOW + 30 * DAY, card=None), B: Expiry(NOW, NOW + 30 * DAY, card=CARD)}


def test_the_due_date_is_the_date_of_the_expiry_in_the_box_s_time_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "BOX-14")  # POSIX: 14 hours ahead of UTC, with no time zone database needed
    time.tzset()
    try:
        # Started 2026-04-10T23:00Z, expiring 2026-05-10T23:00Z: already 11 May in the box's time zone.
        expiry = RetentionIndex(tmp_path).add(A, NOW - 3600, 30)
        assert expiry.due == date(2026, 5, 11)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("content", [
    b"",
    b"{not json",
    b'{"format": 2, "sessions": {}}',
    b'{"format": 1}',
    b'{"format": 1, "sessions": []}',
    b'{"format": 1, "sessions": {"A0000000000000AA": {"started": 1, "expires": 2, "destroying": null}}}',
    b'{"format": 1, "sessions": {"a0000000000000aa": {"started": 1, "expires": 2}}}',
    b'{"format": 1, "sessions": {"a0000000000000aa": {"started": 1, "expires": true, "destroying": null}}}',
    b'{"format": 1, "sessions": {"a0000000000000aa": {"started": 1, "expires": 2.5, "destroying": null}}}',
    b'{"format": 1, "sessions": {"a0000000000000aa": {"started": 1, "expires": 2, "destroying": "3"}}}',
    b'{"format": 1, "sessions": {"a0000000000000aa": {"started": 1, "expires": 2, "destroying": false}}}',
    b'{"format": 1, "sessions": {"a0000000000000aa": {"started": 1, "expires": 2, "destroying": null, "card": 7}}}',
    b'{"format": 1, "sessions": {"a0000000000000aa": {"started": 1, "expires": 2, "destroying": null, '
    b'"card": "C4D0000000000001"}}}',
])
def test_a_damaged_index_is_an_error_naming_the_file_never_an_empty_index(tmp_path, content):
    (tmp_path / RETENTION_INDEX).write_bytes(content)
    index = RetentionIndex(tmp_path)
    damaged = f"^the expiry index {tmp_path / RETENTION_INDEX} is damaged"
    with pytest.raises(RetentionIndexError, match=damaged) as error:
        index.entries()
    assert isinstance(error.value, ConsentBoxError) and isinstance(error.value, ValueError)
    assert "\n" not in str(error.value)
    with pytest.raises(RetentionIndexError):
        index.add(A, NOW, 30)  # nor is it overwritten by a new one
    assert (tmp_path / RETENTION_INDEX).read_bytes() == content

