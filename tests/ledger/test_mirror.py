"""The card's copy of the ledger: the box's bytes after each entry, caught up later, never overwritten."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem
from consentbox.hw.card import CardDirectory
from consentbox.ledger import LEDGER_NAME, Kind, Tail, verify
from tests.support.ledgers import TORN_LINE, SteppingClocks, open_ledger, sample_ledger


@dataclass
class SwitchableCard:
    """A card directory whose problems the test sets (a card pulled out, or turned read-only)."""

    path: Path
    trouble: set[Problem] = field(default_factory=set)

    def problems(self) -> frozenset[Problem]:
        return frozenset(self.trouble)


def box_and_card(tmp_path: Path) -> tuple[Path, Path]:
    card = tmp_path / "card"
    card.mkdir()
    return tmp_path / "box-ledger.jsonl", card


def test_the_card_holds_the_same_bytes_after_every_entry(tmp_path: Path, device_key):
    box, card = box_and_card(tmp_path)
    with open_ledger(box, card, device_key, SteppingClocks()) as ledger:
        for seat in range(1, 6):
            ledger.append(Kind.CONSENT, "0123456789abcdef", seat=seat)
            assert ledger.mirrored
            assert (card / LEDGER_NAME).read_bytes() == box.read_bytes()
    assert (card / LEDGER_NAME).read_bytes() == box.read_bytes()


def test_a_card_that_is_out_catches_up_when_it_returns(tmp_path: Path, device_key):
    box, card_dir = box_and_card(tmp_path)
    card = SwitchableCard(card_dir, {Problem.NO_CARD})
    with open_ledger(box, card, device_key, SteppingClocks()) as ledger:
        ledger.append(Kind.WIPE, files=0)
        assert not ledger.mirrored and not (card_dir / LEDGER_NAME).exists()
        card.trouble.clear()
        assert ledger.sync_mirror()  # the box calls this when the card is back
        assert (card_dir / LEDGER_NAME).read_bytes() == box.read_bytes()
        card.trouble.add(Problem.CARD_READ_ONLY)
        ledger.append(Kind.WIPE, files=1)
        assert not ledger.mirrored and (card_dir / LEDGER_NAME).read_bytes() != box.read_bytes()
        card.trouble.clear()
        ledger.append(Kind.WIPE, files=2)  # the next entry brings the copy up to date
        assert ledger.mirrored and (card_dir / LEDGER_NAME).read_bytes() == box.read_bytes()


def test_an_empty_mount_point_is_not_the_card(tmp_path: Path, device_key):
    box, mount_point = box_and_card(tmp_path)
    card = CardDirectory(mount_point, Policy(), require_mount=True)  # tmp_path is no mount point
    with open_ledger(box, card, device_key, SteppingClocks()) as ledger:
        ledger.append(Kind.WIPE, files=0)
        assert not ledger.mirrored
    assert os.listdir(mount_point) == []


def test_a_missing_card_directory_only_leaves_the_copy_behind(tmp_path: Path, device_key):
    box = tmp_path / "ledger.jsonl"
    gone = tmp_path / "gone"
    with open_ledger(box, SwitchableCard(gone), device_key, SteppingClocks()) as ledger:  # no problem reported,
        entry = ledger.append(Kind.WIPE, files=0)                                       # yet the writes fail
        assert entry.seq == 1 and not ledger.mirrored
    assert verify(box).entries == 3 and not gone.exists()


def test_a_new_card_gets_the_whole_ledger(tmp_path: Path, device_key):
    box, first = box_and_card(tmp_path)
    second = tmp_path / "second"
    second.mkdir()
    card = SwitchableCard(first)
    with open_ledger(box, card, device_key, SteppingClocks()) as ledger:
        ledger.append(Kind.WIPE, files=0)
        card.path = second  # the card was swapped
        ledger.append(Kind.WIPE, files=1)
        assert (second / LEDGER_NAME).read_bytes() == box.read_bytes()
        assert len((first / LEDGER_NAME).read_bytes()) < len(box.read_bytes())


def test_a_torn_copy_on_the_card_is_cut_and_copied_again(tmp_path: Path, device_key):
    box, card = box_and_card(tmp_path)
    sample_ledger(box, card, device_key, runs=1)
    for tail in (TORN_LINE, b"\0" * 500):
        with open(card / LEDGER_NAME, "ab") as copy:
            copy.write(tail)
        assert verify(card / LEDGER_NAME).tail is Tail.TORN
        with open_ledger(box, card, device_key, SteppingClocks()):
            assert (card / LEDGER_NAME).read_bytes() == box.read_bytes()
    assert os.listdir(card) == [LEDGER_NAME]


def test_a_copy_cut_short_on_the_card_is_caught_up(tmp_path: Path, device_key):
    box, card = box_and_card(tmp_path)
    sample_ledger(box, card, device_key, runs=1)
    lines = (card / LEDGER_NAME).read_bytes().splitlines(keepends=True)
    (card / LEDGER_NAME).write_bytes(b"".join(lines[:5]))
    with open_ledger(box, card, device_key, SteppingClocks()):
        pass
    assert (card / LEDGER_NAME).read_bytes() == box.read_bytes()


def test_another_ledger_on_the_card_is_set_aside_never_overwritten(tmp_path: Path, device_key, other_box_key,
                                                                    other_sample: bytes):
    box, card = box_and_card(tmp_path)
    (card / LEDGER_NAME).write_bytes(other_sample)
    with open_ledger(box, card, device_key, SteppingClocks()) as ledger:
        assert (card / "ledger.other-1.jsonl").read_bytes() == other_sample
        assert (card / LEDGER_NAME).read_bytes() == box.read_bytes()
        ledger.append(Kind.WIPE, files=0)
    assert verify(card / LEDGER_NAME).device_key == device_key.public_key
    # A second foreign ledger gets the next name.
    (card / LEDGER_NAME).write_bytes(other_sample[: other_sample.index(b"\n") + 1])
    with open_ledger(box, card, device_key, SteppingClocks()):
        pass
    assert sorted(os.listdir(card)) == [LEDGER_NAME, "ledger.other-1.jsonl", "ledger.other-2.jsonl"]
    assert (card / LEDGER_NAME).read_bytes() == box.read_bytes()


def test_an_edit_to_the_card_s_copy_stays_there_for_verify_ledger_to_find(tmp_path: Path, device_key):
    box, card = box_and_card(tmp_path)
    sample_ledger(box, card, device_key, runs=1)
    edited = (card / LEDGER_NAME).read_bytes().replace(b'"seat":1', b'"seat":2', 1)
    (card / LEDGER_NAME).write_bytes(edited)
    ledger = open_ledger(box, card, device_key, SteppingClocks())
    ledger.close()
    # Its last line is still the box's, so the copy is only extended: the edit is evidence, not ours to mend.
    assert (card / LEDGER_NAME).read_bytes().startswith(edited)
    assert not verify_ok(card / LEDGER_NAME)
    assert verify_ok(box)


def verify_ok(path: Path) -> bool:
    try:
        verify(path)
    except ValueError:
        return False
    return True
