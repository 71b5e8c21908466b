"""Writes that survive a power cut: a whole buffer written, and a directory's names synced.

The box's own state (the device key, the consent ledger) and everything on the card depend on the
same two steps, so they live here once.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from consentbox.storage import portable


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of `data` to `fd` (a regular file may take a write in parts)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def sync_directory(directory: Path) -> None:
    """Make the names created, renamed or removed in `directory` survive a power cut (where the OS can open a
    directory: Windows cannot, and its NTFS journals names)."""
    if not portable.DIRECTORY_DESCRIPTORS:
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sync_open_directory(fd)
    finally:
        os.close(fd)


def sync_open_directory(fd: int) -> None:
    """`sync_directory` for a directory already open as `fd`."""
    try:
        os.fsync(fd)
    except OSError as error:
        # Some file systems cannot sync a directory at all; their renames are as durable as they get.
        if error.errno != errno.EINVAL:
            raise

