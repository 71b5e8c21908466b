"""Hiding when the box wrote a file: every file it writes on the card, and the card's directory, get
one fixed access and modification time.

A file's times on a lost card would otherwise date each session (its first and last write) beside an
appointment diary. Linux cannot set a file's creation time (FAT and exFAT keep one; ext4 keeps a
change time too), so those still show when a file was made: docs/threat-model.md says what is left.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

#: The time every file the box writes on the card is given. Any fixed instant hides the real one; this
#: one is before any recording could exist, inside FAT's range (1980–2107) and exFAT's, and a whole
#: second, so every file system stores it exactly and all files on a card read the same.
FIXED_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_FIXED_NS = int(FIXED_TIME.timestamp()) * 1_000_000_000


def hide_times(fd: int, name: str | None = None) -> None:
    """Give FIXED_TIME as access and modification time to the open file or directory `fd`; with `name`,
    to that entry of directory `fd` (never following a link) and to the directory itself.

    OSError if the file system refuses (the card is failing: the caller handles it as any write's).
    """
    if name is not None:
        os.utime(name, ns=(_FIXED_NS, _FIXED_NS), dir_fd=fd, follow_symlinks=False)
    os.utime(fd, ns=(_FIXED_NS, _FIXED_NS))


def hide_path_times(path: Path) -> None:
    """`hide_times` of the file at `path`, never following a link where the OS can say so, for the
    workstation's tool (Windows sets no file's times through a descriptor, nor a link's own)."""
    os.utime(path, ns=(_FIXED_NS, _FIXED_NS), follow_symlinks=os.utime not in os.supports_follow_symlinks)
