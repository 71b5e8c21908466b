"""Asking the card to forget freed blocks (issue 8, item 2): where the file system cannot, the wipe says so."""

from __future__ import annotations

from consentbox.retention.discard import discard_free_space
from tests.support.cards import small_card


def test_a_file_system_that_cannot_discard_says_so(tmp_path):
    # tmpfs has no FITRIM; the ext4 card that can is in tests/system/test_retention.py.
    with small_card(tmp_path / "tmpfs", 1 << 20) as mount:
        assert discard_free_space(mount) == "discard not supported by this card or file system"
