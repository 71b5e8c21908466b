"""Which files are a session's recording (issue 15, item 5): what the wipe and `consentbox-admin destroy`
destroy, and what must be gone before the box receipts a session as gone from its card."""

from __future__ import annotations

from consentbox.recording.card_id import CARD_ID_NAME
from consentbox.recording.manifest import manifest_name, segment_name
from consentbox.recording.recorded import destroyed_mark_name, recorded_files, recorded_sessions
from consentbox.storage.atomic import temporary_name

A, B = "a0000000000000aa", "b0000000000000bb"


def test_a_recording_is_its_segments_and_its_manifest_and_nothing_else(tmp_path):
    recording = [segment_name(A, 0), segment_name(A, 1), segment_name(A, 1000), temporary_name(manifest_name(A)),
                 manifest_name(A)]
    others = [f"{A}.ledger.age", destroyed_mark_name(A), segment_name(B, 0), manifest_name(B), CARD_ID_NAME,
              "ledger.jsonl", f"{A}.notes.txt", f"{A.upper()}.000.wav.age", f"{A}.000.wav"]
    for name in recording + others:
        (tmp_path / name).write_bytes(b"x")
    assert [path.name for path in recorded_files(tmp_path, A)] == sorted(recording[:-1]) + [manifest_name(A)]
    assert recorded_files(tmp_path, "c0000000000000cc") == []


def test_the_sessions_recorded_on_a_card_are_those_with_a_segment_or_a_manifest(tmp_path):
    for name in [segment_name(A, 0), manifest_name(B), temporary_name(manifest_name("c0000000000000cc")),
                 "d0000000000000dd.ledger.age", destroyed_mark_name("e0000000000000ee"), CARD_ID_NAME]:
        (tmp_path / name).write_bytes(b"x")
    assert recorded_sessions(tmp_path) == {A, B}
