"""Segment numbers have three digits, 000 to 999: the one reader of segment names, the manifest's cap, the
box ending a session that would need one more, and start-up recovery counting no further."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from consentbox.admin.export import read_manifest
from consentbox.core.policy import Policy
from consentbox.hw.card import CardDirectory
from consentbox.hw.errors import CardFull
from consentbox.recording import session as session_module
from consentbox.recording.manifest import (
    MAX_SEGMENTS,
    ManifestError,
    Segment,
    SegmentNameError,
    manifest_name,
    segment_index,
    segment_name,
)
from consentbox.recording.recovery import recover_interrupted
from consentbox.recording.session import SessionFiles
from consentbox.storage.ids import new_session_id
from tests.recording.test_manifest import RECORDING, SESSION

SMALL = Policy(segment_bytes=1 << 20)


@pytest.mark.parametrize("name, index", [
    (f"{SESSION}.000.wav.age", 0), (f"{SESSION}.007.wav.age", 7), (f"{SESSION}.999.wav.age", 999),
    (f"{SESSION}.manifest.age", None), ("fedcba9876543210.000.wav.age", None), (f"{SESSION}.000.wav", None),
    (f".{SESSION}.000.wav.age.tmp", None), (f"{SESSION}.wav.age", None),
])
def test_a_card_file_name_gives_its_segment_number_or_none(name, index):
    assert segment_index(SESSION, name) == index


@pytest.mark.parametrize("number", ["0" * 199 + "1", "1" + "0" * 199, "1000", "0001", "01", "", "١٢٣", "+12",
                                    " 12", "00a", "0\n1"])
def test_a_segment_name_without_three_ascii_digits_is_refused_in_one_line(number):
    name = f"{SESSION}.{number}.wav.age"
    with pytest.raises(SegmentNameError) as refused:
        segment_index(SESSION, name)
    message = str(refused.value)
    assert "\n" not in message and message.isprintable()
    assert message.startswith(name if name.isascii() and name.isprintable() else ascii(name))
    assert "three digits (000 to 999)" in message


def test_a_manifest_lists_at_most_a_thousand_segments():
    segments = tuple(Segment(segment_name(SESSION, n), 1) for n in range(MAX_SEGMENTS + 1))
    assert len(replace(RECORDING, segments=segments[:MAX_SEGMENTS]).segments) == MAX_SEGMENTS
    with pytest.raises(ManifestError, match=r"^manifest field segments: a session has at most 1000, got 1001$"):
        replace(RECORDING, segments=segments)


def _begin(card: Path, identity, started, journal) -> SessionFiles:
    return SessionFiles.create(card, new_session_id(), [identity.recipient], SMALL, headcount=2,
                               consents=[(1, 2.0), (2, 3.0)], started=started, journal=journal)


def _card_segments(card: Path, files: SessionFiles, identity) -> list[str]:
    return [s.name for s in read_manifest(card / manifest_name(files.session), [identity]).segments]


def test_a_session_that_would_need_one_segment_more_ends_as_if_the_card_were_full(
        journal, card, identity, started, monkeypatch):
    monkeypatch.setattr(session_module, "MAX_SEGMENTS", 3)  # a thousand capture intervals is slow to record
    files = _begin(card, identity, started, journal)
    for number in range(3):
        files.start_interval(10.0 * number)
        files.stop_interval(10.0 * number + 1, 0)
    with pytest.raises(CardFull, match=r"has used all 3 of its segment names on card .*: raise the policy's "
                                       r"segment_bytes for longer sessions$"):
        files.start_interval(40.0)
    names = [segment_name(files.session, n) for n in range(3)]
    assert sorted(p.name for p in card.glob("*.wav.age")) == names
    assert isinstance(files.fault, CardFull) and _card_segments(card, files, identity) == names


def test_recovery_lists_no_segment_past_the_thousandth(card, journal, identity, started, pcm):
    files = _begin(card, identity, started, journal)
    files.start_interval(5.0)
    files.write(pcm(SMALL, SMALL.rate, 0))  # then the power goes
    for number in range(1, MAX_SEGMENTS + 5):  # and someone put more files beside its first segment
        (card / segment_name(files.session, number)).write_bytes(b"")
    recover_interrupted(CardDirectory(card, SMALL), journal, [identity.recipient])
    assert _card_segments(card, files, identity) == [segment_name(files.session, n) for n in range(MAX_SEGMENTS)]
