"""Asking the card to forget the blocks a wipe freed (FITRIM), where the file system and the card can.

The overwrite itself (storage/shred.py) replaces what the file system's blocks held; discarding tells
the card's controller that the freed blocks hold nothing worth keeping. Only the box does this: it
needs the mount point and, without `-o discard`, CAP_SYS_ADMIN.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
from pathlib import Path

_FITRIM = 0xC0185879  # _IOWR('X', 121, struct fstrim_range)


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
