"""Destroying one file on the card: overwrite with random bytes, sync, truncate, unlink.

Overwriting in place replaces the ciphertext in the blocks the file occupies, on file systems that
write data in place (ext4 without data journalling, FAT, exFAT). An SD card's controller may still
keep old copies in blocks it has remapped; docs/threat-model.md says what that means and why the
protection rests on encryption. After a wipe, `discard_free_space` asks the card to forget freed
blocks (FITRIM), where the file system and the card support it.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from consentbox.storage.durable import write_all

CHUNK = 4 << 20  # written between checks that no session wants the card
_FITRIM = 0xC0185879  # _IOWR('X', 121, struct fstrim_range)


class Paused(Exception):
    """A session began while a file was being overwritten: stop, and let the next run finish."""


def shred(path: Path, may_continue: Callable[[], bool], *, unlink: bool = True) -> None:
    """Overwrite `path` with random bytes, sync, truncate, sync, and unlink it (unless told not to).
    `may_continue` is asked before each chunk; when it says no, `Paused` is raised and the file is
    left (half overwritten) for the next run. A file already gone is not an error."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        done = 0
        while done < size:
            if not may_continue():
                raise Paused(str(path))
            length = min(CHUNK, size - done)
            os.lseek(fd, done, os.SEEK_SET)
            write_all(fd, os.urandom(length))
            os.fdatasync(fd)
            done += length
        os.ftruncate(fd, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    if unlink:
        path.unlink(missing_ok=True)


def discard_free_space(mount_point: Path) -> str:
    """Ask the file system under `mount_point` to discard its free blocks (FITRIM); what happened, in words."""
    fd = os.open(mount_point, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # struct fstrim_range { u64 start; u64 len; u64 minlen; }: everything; len comes back as bytes trimmed.
        trim = array.array("Q", [0, 2**64 - 1, 0])
        fcntl.ioctl(fd, _FITRIM, trim, True)
        return f"discarded {trim[1]} bytes of free space"
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL):
            return "discard not supported by this card or file system"
        if error.errno == errno.EPERM:
            return "discard not permitted (needs CAP_SYS_ADMIN; or mount the card with -o discard)"
        return f"discard failed: {error.strerror}"
    finally:
        os.close(fd)
