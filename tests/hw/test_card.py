"""CardDirectory on real file systems: a missing card, a locked one, a full one, a healthy one, and one of the
wrong format (its type read from mountinfo: the kernel's own, or a file the test writes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from consentbox.box.config import load_config
from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem
from consentbox.hw.card import CardDirectory, Mount, mount_at
from consentbox.hw.ports import Card
from tests.support.cards import ext4_card, read_only_card, small_card

ROOMY = Policy(min_free_mb=1)


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 4 MiB tmpfs: a card that really has a mount point and really fills up."""
    try:
        with small_card(tmp_path / "card", 4 << 20) as path:
            yield path
    except OSError as error:
        pytest.fail(str(error))


def test_a_writable_directory_with_room_has_no_problems(tmp_path):
    card: Card = CardDirectory(tmp_path, ROOMY)
    assert card.problems() == frozenset()
    assert card.path == tmp_path


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.write_bytes(b"")], ids=["missing", "a file"])
def test_no_directory_is_no_card(tmp_path, make):
    path = tmp_path / "card"
    make(path)
    assert CardDirectory(path, ROOMY).problems() == {Problem.NO_CARD}


def test_an_empty_mount_point_is_no_card_when_a_mount_is_required(tmp_path, tmpfs):
    # The card pulled out leaves its mount point behind as a plain directory on the root file system.
    assert CardDirectory(tmp_path, ROOMY, require_mount=True).problems() == {Problem.NO_CARD}
    assert CardDirectory(tmpfs, ROOMY, require_mount=True).problems() == frozenset()


def test_a_locked_card_is_read_only(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    try:
        with read_only_card(source, tmp_path / "locked") as locked:
            assert CardDirectory(locked, ROOMY).problems() == {Problem.CARD_READ_ONLY}
    except OSError as error:
        pytest.fail(str(error))


def test_a_card_short_of_min_free_mb_is_full(tmpfs):
    assert CardDirectory(tmpfs, Policy(min_free_mb=8)).problems() == {Problem.CARD_FULL}
    assert CardDirectory(tmpfs, Policy(min_free_mb=3)).problems() == frozenset()
    (tmpfs / "recording").write_bytes(bytes(2 << 20))  # what a session leaves behind
    assert CardDirectory(tmpfs, Policy(min_free_mb=3)).problems() == {Problem.CARD_FULL}
    assert CardDirectory(tmpfs, Policy(min_free_mb=0)).problems() == frozenset()


# --- The card's file system type, from mountinfo ------------------------------------------------------------

#: The mountinfo tail (after " - ") a card gets from each driver: the two the box takes, and ext4, NTFS through the
#: kernel's ntfs3, and NTFS-3G or exfat-fuse through FUSE, which it refuses.
MOUNTED_AS = {
    "vfat": "vfat /dev/sda1 rw,uid=999,gid=999,fmask=0077,dmask=0077,allow_utime=0022,codepage=437,iocharset=ascii,"
            "shortname=mixed,errors=remount-ro,discard",
    "exfat": "exfat /dev/sda1 rw,uid=999,gid=999,fmask=0077,dmask=0077,allow_utime=0022,iocharset=utf8,"
             "errors=remount-ro,discard",
    "ext4": "ext4 /dev/sda1 rw,errors=remount-ro",
    "ntfs3": "ntfs3 /dev/sda1 rw,uid=999,gid=999,fmask=77,dmask=77,iocharset=utf8",
    "fuseblk": "fuseblk /dev/sda1 rw,user_id=0,group_id=0,default_permissions,allow_other,blksize=4096",
}
DEPLOYED = ("exfat", "vfat")


def mountinfo(tmp_path: Path, *mounts: tuple[Path, str]) -> Path:
    """A mountinfo file listing the root file system, then each (mount point, tail) in turn."""
    lines = ["22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw"]
    for number, (point, tail) in enumerate(mounts, start=40):
        escaped = os.path.realpath(point).replace("\\", "\\134").replace(" ", "\\040")
        lines.append(f"{number} 22 8:1 / {escaped} rw,nosuid,nodev,noexec,noatime,nosymfollow shared:{number} - {tail}")
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("kind", MOUNTED_AS)
def test_mountinfo_names_the_file_system_mounted_at_the_card(tmp_path, kind):
    card = tmp_path / "consentbox card"  # a space, which mountinfo writes as \040
    mount = mount_at(card, mountinfo(tmp_path, (card, MOUNTED_AS[kind])))
    assert mount is not None and mount.file_system == kind
    assert mount.options == frozenset(MOUNTED_AS[kind].split()[2].split(","))
    assert mount_at(card / "inside", mountinfo(tmp_path, (card, MOUNTED_AS[kind]))) is None, "only the mount point"


def test_the_last_mount_on_the_card_path_is_the_one_in_use(tmp_path):
    card = tmp_path / "card"
    stacked = mountinfo(tmp_path, (card, MOUNTED_AS["vfat"]), (card, MOUNTED_AS["ext4"]))
    assert mount_at(card, stacked) == Mount("ext4", frozenset({"rw", "errors=remount-ro"}))
    assert mount_at(card, tmp_path / "no such file") is None


@pytest.mark.parametrize(("kind", "problems"), [
    ("vfat", frozenset()),
    ("exfat", frozenset()),
    ("ext4", {Problem.CARD_WRONG_FORMAT}),
    ("ntfs3", {Problem.CARD_WRONG_FORMAT}),
    ("fuseblk", {Problem.CARD_WRONG_FORMAT}),
])
def test_a_required_card_mount_of_another_type_than_exfat_or_vfat_is_the_wrong_format(tmp_path, tmpfs, kind,
                                                                                      problems):
    listed = mountinfo(tmp_path, (tmpfs, MOUNTED_AS[kind]))
    card = CardDirectory(tmpfs, ROOMY, require_mount=True, file_systems=DEPLOYED, mountinfo=listed)
    assert card.problems() == problems
    # Only a required mount is checked: a plain directory (the simulator's card) may be on anything.
    assert CardDirectory(tmpfs, ROOMY, file_systems=DEPLOYED, mountinfo=listed).problems() == frozenset()


def test_a_required_card_mount_the_kernel_does_not_list_is_the_wrong_format(tmp_path, tmpfs):
    unlisted = CardDirectory(tmpfs, ROOMY, require_mount=True, file_systems=DEPLOYED, mountinfo=mountinfo(tmp_path))
    assert unlisted.problems() == {Problem.CARD_WRONG_FORMAT}
    unreadable = CardDirectory(tmpfs, ROOMY, require_mount=True, file_systems=DEPLOYED, mountinfo=tmp_path / "gone")
    assert unreadable.problems() == {Problem.CARD_WRONG_FORMAT}


def test_a_loop_mounted_ext4_card_is_refused_as_deployed_and_taken_when_ext4_is_configured(tmp_path):
    deployed = load_config().card_file_systems
    assert deployed == frozenset(DEPLOYED)
    try:
        with ext4_card(tmp_path, 8 << 20) as card:
            assert CardDirectory(card, ROOMY, require_mount=True, file_systems=deployed).problems() == {
                Problem.CARD_WRONG_FORMAT}
            assert CardDirectory(card, ROOMY, require_mount=True, file_systems={"ext4"}).problems() == frozenset()
            assert CardDirectory(card, ROOMY, require_mount=True).problems() == frozenset(), "no types named: any"
            assert sorted(os.listdir(card)) == ["lost+found"], "the check itself writes nothing"
    except OSError as error:
        pytest.fail(str(error))
