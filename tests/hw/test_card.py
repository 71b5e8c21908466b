"""CardDirectory on real file systems: a missing card, a locked one, a full one, and a healthy one."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem
from consentbox.hw.card import CardDirectory
from consentbox.hw.ports import Card
from tests.support.cards import read_only_card, small_card

ROOMY = Policy(min_free_mb=1)


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 4 MiB tmpfs: a card that really has a mount point and really fills up."""
    try:
        with small_card(tmp_path / "card", 4 << 20) as path:
            yield path
    except OSError as error:
        pytest.fail(str(error))


def test_a_writable_directory_with_room_has_no_problems(tmp_path):
    card: Card = CardDirectory(tmp_path, ROOMY)
    assert card.problems() == frozenset()
    assert card.path == tmp_path


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.write_bytes(b"")], ids=["missing", "a file"])
def test_no_directory_is_no_card(tmp_path, make):
    path = tmp_path / "card"
    make(path)
    assert CardDirectory(path, ROOMY).problems() == {Problem.NO_CARD}


def test_an_empty_mount_point_is_no_card_when_a_mount_is_required(tmp_path, tmpfs):
    # The card pulled out leaves its mount point behind as a plain directory on the root file system.
    assert CardDirectory(tmp_path, ROOMY, require_mount=True).problems() == {Problem.NO_CARD}
    assert CardDirectory(tmpfs, ROOMY, require_mount=True).problems() == frozenset()


def test_a_locked_card_is_read_only(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    try:
        with read_only_card(source, tmp_path / "locked") as locked:
            assert CardDirectory(locked, ROOMY).problems() == {Problem.CARD_READ_ONLY}
    except OSError as error:
        pytest.fail(str(error))


def test_a_card_short_of_min_free_mb_is_full(tmpfs):
    assert CardDirectory(tmpfs, Policy(min_free_mb=8)).problems() == {Problem.CARD_FULL}
    assert CardDirectory(tmpfs, Policy(min_free_mb=3)).problems() == frozenset()
    (tmpfs / "recording").write_bytes(bytes(2 << 20))  # what a session leaves behind
    assert CardDirectory(tmpfs, Policy(min_free_mb=3)).problems() == {Problem.CARD_FULL}
    assert CardDirectory(tmpfs, Policy(min_free_mb=0)).problems() == frozenset()
