"""Whether a block device is still in the system."""

from __future__ import annotations

import os
from pathlib import Path

SYS_DEV_BLOCK = Path("/sys/dev/block")


def device_gone(device: int, sys_dev_block: Path = SYS_DEV_BLOCK) -> bool:
    """Whether the block device `device` (a file's st_dev) has left the system: a card reader's disk pulled
    out is dropped from sysfs at once, while its file system may still be mounted or its files open. False
    when it cannot tell (no sysfs, or a file system on no block device, such as tmpfs)."""
    if os.major(device) == 0 or not sys_dev_block.is_dir():
        return False
    return not (sys_dev_block / f"{os.major(device)}:{os.minor(device)}").exists()
