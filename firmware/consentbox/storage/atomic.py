"""Replacing a file so that a power cut leaves either the old version or the new one, never a mix.

Used for the card's manifests and ledger extracts, and for the box's own state files: the new version
is written to a hidden temporary file beside the old one (`.<name>.tmp`), synced, renamed over it,
synced again (for FAT, below), and the directory is synced. Readers skip names that start with a dot, so
a temporary file is never taken for the real one. Every name is looked up in the directory itself,
without following a link (`storage.card_files`): whatever is planted at the temporary name is unlinked
first, a link or a FIFO at the real name is replaced, never written through, and a directory there is a
`ForeignEntry`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from consentbox.storage.card_files import ForeignEntry, create_file
from consentbox.storage.durable import sync_open_directory, write_all
from consentbox.storage.file_times import hide_times


def temporary_name(name: str) -> str:
    """The hidden name under which the next version of `name` is written before it replaces it."""
    return f".{name}.tmp"


def replace_file(directory: Path, name: str, data: bytes, mode: int, *, hidden_times: bool = False) -> None:
    """Make `directory/name` hold `data` (a new file gets `mode`), old or new whole even across a power cut.

    With `hidden_times`, the file and the directory are given `file_times.FIXED_TIME` (files on the card).
    """
    directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        replace_file_at(directory_fd, name, data, mode, hidden_times=hidden_times)
    finally:
        os.close(directory_fd)


def replace_file_at(directory_fd: int, name: str, data: bytes, mode: int, *, hidden_times: bool = False) -> None:
    """`replace_file` in the directory open as `directory_fd`: a card unmounted under the box (umount -l)
    still gets it, and nothing lands in the empty mount point left on the box's own disk."""
    temporary = temporary_name(name)
    fd = create_file(directory_fd, temporary, mode, replace=True)  # a power cut's leftover goes first
    try:
        try:
            write_all(fd, data)
            if hidden_times:
                hide_times(fd)  # before the sync, so the times reach the disk with the data
            os.fsync(fd)
            try:
                os.replace(temporary, name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
            except IsADirectoryError:
                raise ForeignEntry(name, "a directory") from None
            # FAT renames over a file by pointing the old name's directory entry at the new data, and
            # writes that entry only with the file, not with the directory; the old data's clusters are
            # freed at once. Without this sync a power cut or a pulled card within the next 30 s left the
            # name pointing at freed clusters: an earlier session's manifest read back empty (the VM test).
            os.fsync(fd)
        finally:
            os.close(fd)
        if hidden_times:
            hide_times(directory_fd)
        sync_open_directory(directory_fd)
    except OSError:
        with contextlib.suppress(OSError):  # the disk is failing; the first error is the one to report
            os.unlink(temporary, dir_fd=directory_fd)
        raise

