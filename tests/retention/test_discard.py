"""Asking the card to forget freed blocks (issue 8, item 2): where the file system cannot, the wipe says so."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import pytest

from consentbox.retention import wipe as wipe_module
from consentbox.retention.discard import discard_free_space
from tests.support.cards import small_card

from .conftest import DAY, NOW


def test_a_file_system_that_cannot_discard_says_so(tmp_path):
    # tmpfs has no FITRIM; the ext4 card that can is in tests/system/test_retention.py.
    with small_card(tmp_path / "tmpfs", 1 << 20) as mount:
        assert discard_free_space(mount) == "discard not supported by this card or file system"


NOT_PERMITTED = "discard not permitted (needs CAP_SYS_ADMIN; or mount the card with -o discard)"
NOT_SUPPORTED = "discard not supported by this card or file system"


def _refuse_fitrim(monkeypatch, code: int) -> None:
    def ioctl(fd, request, *args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "ioctl", ioctl)


@pytest.mark.parametrize(("code", "words"), [
    (errno.EPERM, NOT_PERMITTED),  # the unit lacks CAP_SYS_ADMIN
    (errno.EOPNOTSUPP, NOT_SUPPORTED),
    (errno.EIO, "discard failed: Input/output error"),
], ids=["not-permitted", "not-supported", "failed"])
def test_each_reason_fitrim_is_refused_is_said_in_its_own_words(tmp_path, monkeypatch, code, words):
    _refuse_fitrim(monkeypatch, code)
    assert discard_free_space(tmp_path) == words


def test_a_wipe_run_without_cap_sys_admin_says_the_discard_was_not_permitted(box, monkeypatch):
    box.record("a0000000000000aa", started=NOW - 40 * DAY)
    monkeypatch.setattr(wipe_module.os.path, "ismount", lambda path: Path(path) == box.card)
    monkeypatch.setattr(wipe_module, "super_options", lambda path: "rw")  # mounted without -o discard
    _refuse_fitrim(monkeypatch, errno.EPERM)
    assert box.wipe() == ["destroyed session a0000000000000aa (2 files)", NOT_PERMITTED]
