"""device_gone: a card reader's disk pulled out, told from sysfs while its mount or files linger."""

from __future__ import annotations

import os
from pathlib import Path

from consentbox.storage.block_device import device_gone


def test_a_block_device_that_left_sysfs_is_gone(tmp_path: Path) -> None:
    sys_dev_block = tmp_path / "sys-dev-block"
    sys_dev_block.mkdir()
    device = os.makedev(8, 1)  # sda1
    (sys_dev_block / "8:1").mkdir()
    assert not device_gone(device, sys_dev_block)
    (sys_dev_block / "8:1").rmdir()
    assert device_gone(device, sys_dev_block)
    assert not device_gone(device, tmp_path / "no-sysfs")  # cannot tell
    assert not device_gone(os.makedev(0, 42), sys_dev_block)  # tmpfs, overlay: no block device
