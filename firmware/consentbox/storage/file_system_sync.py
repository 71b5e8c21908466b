"""syncfs(2): every dirty block of one file system written out, for where fsync of a file and its directory
is not enough (the box's card). Python's os has no syncfs, so it is called through ctypes; where libc has
none, sync(2) writes out every file system instead.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable


def sync_file_system(fd: int) -> None:
    """Write out every dirty block of the file system that `fd` is on (Linux's syncfs(2); elsewhere sync(2)).

    Needed where fsync of the file and of its directory is not enough: on a FAT32 card, Linux left a new
    file's first directory sector unwritten after both, when the name's entries straddled two sectors (the
    VM test's power cuts: the short entry was on the card, the long name's head was not, so the name was
    lost and the file hidden under its 8.3 alias; fsck: "Long filename fragment found outside a LFN
    sequence"). syncfs writes the whole block device's dirty buffers, that sector among them.
    """
    syncfs = _libc_syncfs()
    if syncfs is None:
        os.sync()
        return
    if syncfs(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    """libc's syncfs, looked up once; None where there is none."""
    return getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None) if os.name == "posix" else None
