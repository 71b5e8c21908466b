"""device_gone: a card reader's disk pulled out, told from sysfs while its mount or files linger."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from consentbox.storage.block_device import device_gone

SDA1 = os.makedev(8, 1)


def sysfs(tmp_path: Path, state: str | None = "running") -> tuple[Path, Path]:
    """A sysfs with a SCSI disk sda (its SCSI state `state`, none for a disk that is not SCSI) and its
    partition sda1, as /sys/dev/block links them; the sys/dev/block directory and the state file."""
    disk = tmp_path / "devices" / "block" / "sda"
    (disk / "sda1").mkdir(parents=True)
    (disk / "sda1" / "partition").write_text("1\n")
    (disk / "device").mkdir()
    if state is not None:
        (disk / "device" / "state").write_text(f"{state}\n")
    sys_dev_block = tmp_path / "dev" / "block"
    sys_dev_block.mkdir(parents=True)
    (sys_dev_block / "8:0").symlink_to(disk)
    (sys_dev_block / "8:1").symlink_to(disk / "sda1")
    return sys_dev_block, disk / "device" / "state"


def test_a_block_device_that_left_sysfs_is_gone(tmp_path: Path) -> None:
    sys_dev_block, _ = sysfs(tmp_path)
    assert not device_gone(SDA1, sys_dev_block)
    (sys_dev_block / "8:1").unlink()
    assert device_gone(SDA1, sys_dev_block)
    assert not device_gone(SDA1, tmp_path / "no-sysfs")  # cannot tell
    assert not device_gone(os.makedev(0, 42), sys_dev_block)  # tmpfs, overlay: no block device


def test_a_disk_the_kernel_is_removing_is_gone_before_its_entry_goes(tmp_path: Path) -> None:
    sys_dev_block, state = sysfs(tmp_path)
    for going in ("cancel", "deleted", "offline", "transport-offline"):
        state.write_text(f"{going}\n")
        assert device_gone(SDA1, sys_dev_block), going
        assert device_gone(os.makedev(8, 0), sys_dev_block), going  # the whole disk too
    state.write_text("running\n")
    assert not device_gone(SDA1, sys_dev_block)


def test_a_disk_with_no_scsi_state_is_there_while_its_entry_is(tmp_path: Path) -> None:
    sys_dev_block, _ = sysfs(tmp_path, state=None)  # a loop device, an SD slot
    assert not device_gone(SDA1, sys_dev_block)


def test_an_i_o_error_waits_for_the_kernel_to_finish_removing_the_disk(tmp_path: Path) -> None:
    sys_dev_block, state = sysfs(tmp_path)
    assert not device_gone(SDA1, sys_dev_block, settle=0.2)  # still there when the wait is over
    removing = threading.Timer(0.1, lambda: state.write_text("cancel\n"))
    removing.start()
    try:
        assert device_gone(SDA1, sys_dev_block, settle=30)
    finally:
        removing.join()
