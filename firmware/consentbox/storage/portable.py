"""What differs between the systems `consentbox-admin` runs on (Linux, macOS, Windows), in one place.

The box runs on Linux; the supervisor's tool shares its storage, crypto and ledger modules and also runs on
a Mac or a Windows PC, where they must give the same bytes, with no less care where the OS allows it:
- os.open's POSIX flags (O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_CLOEXEC) are missing on Windows: 0 here then,
  and `open_unfollowed` looks at the path first where there is no O_NOFOLLOW;
- Windows's O_BINARY: without it a descriptor writes "\\n" as "\\r\\n" and stops reading at a Ctrl-Z byte;
- os.fdatasync is Linux's: macOS and Windows sync with os.fsync (which syncs the file's times too);
- Windows opens no directory: nothing is reached through a directory's descriptor there, and its names
  need no sync (NTFS journals them);
- Windows keeps who may read a file in ACLs: its mode bits say nothing of that.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

BINARY: int = getattr(os, "O_BINARY", 0)
NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
#: Whether directories can be opened, and files reached through their descriptors (dir_fd=).
DIRECTORY_DESCRIPTORS = hasattr(os, "O_DIRECTORY")
#: Whether a file's mode bits say who may read and write it.
POSIX_MODES = os.name == "posix"


def datasync(fd: int) -> None:
    """Make the open file's data durable: fdatasync where the OS has it, else fsync."""
    getattr(os, "fdatasync", os.fsync)(fd)


def restrict_mode(fd: int, mode: int) -> None:
    """Give the open file `mode` where mode bits mean something (on Windows the file keeps its ACL)."""
    if POSIX_MODES:
        os.fchmod(fd, mode)


def open_unfollowed(path: Path, flags: int, mode: int = 0o600) -> int:
    """os.open of `path` with `flags`, binary and not inherited, never through a symbolic link at `path` itself
    (ELOOP): with O_NOFOLLOW where the OS has it; elsewhere (Windows) the path is looked at first, and the open
    file must be the one looked at (anything swapped in between: ELOOP too)."""
    flags |= BINARY | CLOEXEC
    if NOFOLLOW:
        return os.open(path, flags | NOFOLLOW, mode)
    try:
        seen: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        if not flags & os.O_CREAT:
            raise
        seen = None
    if seen is not None and stat.S_ISLNK(seen.st_mode):
        raise OSError(errno.ELOOP, "a symbolic link, not followed", str(path))
    fd = os.open(path, flags, mode)
    opened = os.fstat(fd)
    if seen is not None and (opened.st_dev, opened.st_ino) != (seen.st_dev, seen.st_ino):
        os.close(fd)
        raise OSError(errno.ELOOP, "swapped for another file while it was opened", str(path))
    return fd
