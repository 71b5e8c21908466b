"""Whether a block device is still in the system."""

from __future__ import annotations

import os
import time
from pathlib import Path

SYS_DEV_BLOCK = Path("/sys/dev/block")
#: The states (`device/state` in sysfs) of a SCSI disk, such as a USB card reader's, that is being removed.
_GOING = frozenset({"cancel", "deleted", "offline", "transport-offline"})
#: How long an I/O error waits for the kernel to finish telling that the device went (below).
SETTLE_SECONDS = 0.5
_LOOK_EVERY = 0.05


def device_gone(device: int, sys_dev_block: Path = SYS_DEV_BLOCK, *, settle: float = 0.0) -> bool:
    """Whether the block device `device` (a file's st_dev) has left the system: a card reader's disk pulled
    out is dropped from sysfs, while its file system may still be mounted or its files open. False when it
    cannot tell (no sysfs, or a file system on no block device, such as tmpfs).

    The first I/O errors of a pulled reader come while the kernel is still removing its disk: `settle`
    seconds are given for its sysfs entry to go or its SCSI state to say so."""
    if os.major(device) == 0 or not sys_dev_block.is_dir():
        return False
    node = sys_dev_block / f"{os.major(device)}:{os.minor(device)}"
    deadline = time.monotonic() + settle
    while not _leaving(node):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_LOOK_EVERY)
    return True


def _leaving(node: Path) -> bool:
    """Whether the block device whose sysfs entry is `node` has gone or is being removed."""
    if not node.exists():
        return True
    disk = node.resolve()
    if (disk / "partition").exists():
        disk = disk.parent  # a partition's disk holds the device
    try:
        return (disk / "device" / "state").read_text().strip() in _GOING
    except OSError:
        return False  # no SCSI state (a loop device, an SD slot's mmcblk), or it went since: look again
