"""Destroying one file: overwrite it with random bytes, sync, truncate, sync, unlink.

Overwriting in place replaces the ciphertext in the blocks the file occupies, on file systems that
write data in place (ext4 without data journalling, FAT, exFAT). An SD card's controller may still
keep old copies in blocks it has remapped; docs/threat-model.md says what that means and why the
protection rests on encryption. The box's retention wipe (`shred_at`, through the card's directory:
it never writes through a link, a device node or a hard link planted on the card) and the
supervisor's `consentbox-admin destroy` (`shred`) both destroy files this way; asking the card to
forget freed blocks is the box's own step (retention/discard.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from consentbox.storage import portable
from consentbox.storage.card_files import ForeignEntry, kind_of, open_file
from consentbox.storage.durable import write_all

CHUNK = 4 << 20  # written between asks whether to go on


class Paused(Exception):
    """The caller said stop between two chunks: the file is left, half overwritten, for a later run."""


def shred(path: Path, may_continue: Callable[[], bool], *, unlink: bool = True) -> int:
    """Overwrite `path` with random bytes, sync, truncate, sync, and unlink it (unless told not to);
    the bytes it held. `may_continue` is asked before each chunk; when it says no, `Paused` is raised
    and the file is left (half overwritten) for the next run. A file already gone is not an error (0);
    a symbolic link is (ELOOP), and its target is left; anything else that is not a regular file (a FIFO,
    a device node planted on a card) is ForeignEntry, and nothing is written to it."""
    try:  # O_NONBLOCK: opening a FIFO would wait for a reader for ever
        fd = portable.open_unfollowed(path, os.O_WRONLY | portable.NONBLOCK)
    except FileNotFoundError:
        return 0
    except IsADirectoryError:
        raise ForeignEntry(path.name, "a directory") from None
    except OSError as error:
        if error.errno == errno.ENXIO:  # a FIFO no one reads
            raise ForeignEntry(path.name, "a FIFO") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ForeignEntry(path.name, kind_of(mode))
    size = _overwrite(fd, str(path), may_continue)
    if unlink:
        path.unlink(missing_ok=True)
    return size


def shred_at(directory: int, name: str, may_continue: Callable[[], bool], *, unlink: bool = True,
             max_bytes: int | None = None) -> int:
    """`shred` of `name` in the card's directory open as `directory` (the box's wipe).

    ForeignEntry, and nothing written, if `name` is not a regular file with one name of at most
    `max_bytes` (`storage.card_files`): a link, a FIFO, a device node or a hard link planted on the card
    would take the random bytes somewhere else, and a huge file would take them for hours.
    """
    try:
        fd = open_file(directory, name, os.O_WRONLY, max_bytes=max_bytes)
    except FileNotFoundError:
        return 0
    size = _overwrite(fd, name, may_continue)
    if unlink:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=directory)
    return size


def _overwrite(fd: int, shown: str, may_continue: Callable[[], bool]) -> int:
    """Overwrite the open file `fd` (`shown` in messages) with random bytes, sync, truncate and sync, then close
    it; the bytes it held. `Paused` if `may_continue` says stop between chunks."""
    try:
        size = os.fstat(fd).st_size
        done = 0
        while done < size:
            if not may_continue():
                raise Paused(shown)
            length = min(CHUNK, size - done)
            os.lseek(fd, done, os.SEEK_SET)
            write_all(fd, os.urandom(length))
            portable.datasync(fd)
            done += length
        os.ftruncate(fd, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    return size
