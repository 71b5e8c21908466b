"""The `seal` entry: a segment's or a manifest's bytes, digest and frames, and nothing else, each checked.

A seal is what the supervisor's tool holds each file on the card against, so a seal that a reader could
take two ways (a count that is a boolean, a digest in capitals, a missing `final`) is refused on the way
in and on the way back out.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentbox.ledger import Entry, Kind, LedgerError, verify
from consentbox.recording.seal import Seal
from tests.support.ledgers import SteppingClocks, open_ledger

SESSION = "0123456789abcdef"
SEGMENT = Seal(2, 4_195_472, "ab" * 32, 2_097_130, final=False)
MANIFEST = Seal(None, 1_093, "cd" * 32, None, final=True)


def test_seals_of_a_segment_and_a_manifest_are_written_and_read_back_exactly(tmp_path: Path, device_key):
    path = tmp_path / "ledger.jsonl"
    with open_ledger(path, None, device_key, SteppingClocks()) as ledger:
        for seal in (SEGMENT, MANIFEST):
            entry = ledger.append(Kind.SEAL, SESSION, **asdict(seal))
            assert dict(entry.fields) == asdict(seal)
    summary = verify(path, session=SESSION)
    assert [Seal(**entry.fields) for entry in summary.selected] == [SEGMENT, MANIFEST]
    assert b'"fields":{"bytes":1093,"final":true,"frames":null,"segment":null,"sha256":"' in path.read_bytes()


@pytest.mark.parametrize(("change", "message"), [
    ({"segment": -1}, "field segment: expected a whole number of at least 0, or null"),
    ({"segment": True}, "field segment: expected a whole number of at least 0, or null"),
    ({"segment": "002"}, "field segment: expected a whole number of at least 0, or null"),
    ({"bytes": None}, "field bytes: expected a whole number of at least 0"),
    ({"bytes": 4.0}, "field bytes: expected a whole number of at least 0"),
    ({"sha256": "AB" * 32}, "field sha256: expected 64 lowercase hex digits"),
    ({"sha256": "ab" * 31}, "field sha256: expected 64 lowercase hex digits"),
    ({"frames": -5}, "field frames: expected a whole number of at least 0, or null"),
    ({"final": 1}, "field final: expected true or false"),
    ({"final": None}, "field final: expected true or false"),
])
def test_a_seal_field_out_of_its_range_is_refused(device_key, change, message):
    fields = {**asdict(SEGMENT), **change}
    with pytest.raises(LedgerError, match=message):
        Entry.create(device_key, seq=1, kind=Kind.SEAL, wall=datetime(2026, 5, 6, tzinfo=UTC), mono=1.0,
                     session=SESSION, fields=fields, prev="0" * 64)


@pytest.mark.parametrize(("session", "fields", "message"), [
    (None, asdict(MANIFEST), "a seal entry belongs to a session, but none was given"),
    (SESSION, {k: v for k, v in asdict(MANIFEST).items() if k != "final"}, "a seal entry needs field 'final'"),
    (SESSION, {**asdict(MANIFEST), "name": "room 2"}, "'name' is not a field of a seal entry"),
])
def test_a_seal_without_its_session_or_its_exact_fields_is_refused(device_key, session, fields, message):
    with pytest.raises(LedgerError, match=message):
        Entry.create(device_key, seq=1, kind=Kind.SEAL, wall=datetime(2026, 5, 6, tzinfo=UTC), mono=1.0,
                     session=session, fields=fields, prev="0" * 64)


def test_a_seal_edited_in_the_file_is_refused_when_read(device_key):
    entry = Entry.create(device_key, seq=1, kind=Kind.SEAL, wall=datetime(2026, 5, 6, tzinfo=UTC), mono=1.0,
                         session=SESSION, fields=asdict(SEGMENT), prev="0" * 64)
    edited = entry.line.replace(b'"segment":2', b'"segment":-2')
    with pytest.raises(LedgerError, match="line 2 field segment: expected a whole number"):
        Entry.parse(edited, "line 2")
