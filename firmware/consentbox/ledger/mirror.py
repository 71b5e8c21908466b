"""The card's copy of the box's ledger: `ledger.jsonl` in the card's directory, kept a byte-for-byte prefix.

The box's file is the ledger; the card's is a mirror that may lag while the card is out or failing,
and catches up at the next chance (the next entry appended, or `sync` when a card comes back): the
entries it lacks are copied in order. A torn last line on the card (a power cut while it was being
copied) is cut off and copied again. A card whose file holds entries the box does not (another box's
ledger, or one from before the box's storage was replaced) is never overwritten: the file is renamed
to `ledger.other-N.jsonl` and a fresh copy begins. Nothing but ledger lines is written to the card.
"""

from __future__ import annotations

import os
from pathlib import Path

from consentbox.hw.ports import UNUSABLE, Card
from consentbox.ledger.lines import LEDGER_NAME, last_newline
from consentbox.storage.durable import sync_directory, write_all

_COPY_CHUNK = 1 << 20


class CardMirror:
    """Keeps `card`/ledger.jsonl equal to a prefix of the box's ledger file, as long as it can."""

    def __init__(self, card: Card) -> None:
        self._card = card
        # (device, inode, size) of the card's file after the last sync: if the file still looks like
        # that, only new entries need copying; anything else (a new card, a lost write) is looked at.
        self._known: tuple[int, int, int] | None = None

    @property
    def path(self) -> Path:
        """The card's copy of the ledger."""
        return self._card.path / LEDGER_NAME

    @property
    def current(self) -> bool:
        """Whether the last sync succeeded (the card held every entry then)."""
        return self._known is not None

    def sync(self, box_fd: int, box_size: int) -> bool:
        """Bring the card's copy up to the box's first `box_size` bytes (read with `box_fd`); whether it is.

        Any failure of the card only leaves the copy behind; it never raises.
        """
        if self._card.problems() & UNUSABLE:
            self._known = None
            return False
        try:
            self._known = self._sync(box_fd, box_size)
        except OSError:
            self._known = None
        return self.current

    def _sync(self, box_fd: int, box_size: int) -> tuple[int, int, int]:
        fd = self._open()
        try:
            status = os.fstat(fd)
            if self._known == (status.st_dev, status.st_ino, status.st_size):
                start = status.st_size
            else:
                common = _common_length(fd, status.st_size, box_fd, box_size)
                if common is None:
                    os.close(fd)
                    fd = -1
                    self._set_aside()
                    fd, start = self._open(), 0
                    status = os.fstat(fd)
                else:
                    start = common
            if start < status.st_size:
                os.ftruncate(fd, start)  # a torn line of our own, copied again below
            _copy(box_fd, start, box_size, fd)
            os.fdatasync(fd)
            status = os.fstat(fd)
        finally:
            if fd >= 0:
                os.close(fd)
        if start == 0:  # the file may be new: its name must survive a power cut too
            sync_directory(self._card.path)
        return status.st_dev, status.st_ino, status.st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _set_aside(self) -> None:
        """Rename the card's ledger out of the way: it is someone's record, never ours to overwrite."""
        number = 1
        while (aside := self._card.path / f"ledger.other-{number}.jsonl").exists():
            number += 1
        os.rename(self.path, aside)


def _common_length(card_fd: int, card_size: int, box_fd: int, box_size: int) -> int | None:
    """How many bytes of the card's file are whole lines that the box's file has at the same place.

    None when the card's last whole line is not the box's: the card holds another ledger. Comparing
    the last line is enough, because each line names the hash of the one before it.
    """
    end = last_newline(card_fd, card_size) + 1  # 0 when the card holds no whole line
    if end == 0:
        return 0
    begin = last_newline(card_fd, end - 1) + 1
    if end > box_size:
        return None
    line = os.pread(card_fd, end - begin, begin)
    return end if os.pread(box_fd, end - begin, begin) == line else None



def _copy(box_fd: int, start: int, end: int, card_fd: int) -> None:
    """Write the box's bytes [start, end) at the same offsets of the card's file."""
    os.lseek(card_fd, start, os.SEEK_SET)
    while start < end:
        data = os.pread(box_fd, min(_COPY_CHUNK, end - start), start)
        if not data:
            raise OSError("the box's ledger is shorter than it was a moment ago")
        write_all(card_fd, data)
        start += len(data)
