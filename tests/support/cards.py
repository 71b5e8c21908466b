"""Small real file systems that stand in for the card: one that fills up, one that is read-only, and
an ext4 image on a loop device that can be filled, turned read-only or pulled while in use.

A real file system shows what a fake cannot: the errno a full card gives mid-write, the read-only
flag statvfs reports, and what a lazily unmounted card still does with files held open. They all
mount, so they need root (the box's tests and CI run as root).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

# linux/fs.h: FS_IOC_SHUTDOWN = _IOR('X', 125, __u32); FS_GOING_FLAGS_NOLOGFLUSH = 2.
_FS_IOC_SHUTDOWN = 0x8004587D
_GOING_NOLOGFLUSH = 2


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"mount {' '.join(args)} failed ({done.stderr.strip()}): mounting needs root")


def _run(*args: str) -> None:
    """Run a system command; OSError naming it (and saying what it needs) if it fails or is missing."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise OSError(f"`{args[0]}` is not installed: it comes with e2fsprogs and util-linux") from None
    if done.returncode != 0:
        raise OSError(f"{' '.join(args)} failed ({done.stderr.strip()}): it needs root and loop devices")


@contextlib.contextmanager
def small_card(path: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of `size_bytes` mounted on the (created) directory `path`, unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        done = subprocess.run(["umount", str(path)], capture_output=True, text=True, check=False)
        if done.returncode != 0:  # still in use (a failed test left a file open there): never left mounted
            subprocess.run(["umount", "--lazy", str(path)], check=True)
            raise OSError(f"umount {path} failed ({done.stderr.strip()}): unmounted lazily")


@contextlib.contextmanager
def read_only_card(source: Path, path: Path) -> Iterator[Path]:
    """`source` seen read-only at the (created) directory `path`, as a card whose lock switch is on."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("--bind", str(source), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def card_image(directory: Path) -> Path:
    """The image file of the `ext4_card` made in `directory` (its raw bytes are the whole card)."""
    return directory / "card.img"


@contextlib.contextmanager
def ext4_card(directory: Path, size_bytes: int, *, options: tuple[str, ...] = ()) -> Iterator[Path]:
    """A new ext4 image of `size_bytes`, `card_image(directory)`, loop-mounted on `directory/card` with the
    mount `options` given (`discard`: the loop device then punches a hole in the image for each block freed).

    Made with mkfs.ext4's defaults (a journal; the kernel mounts it data=ordered) but no blocks
    reserved for root, so root's tests fill it exactly as the box's own user would. However the
    test left it (remounted, read-only, unmounted, lazily unmounted and mounted again), it ends
    unmounted and its loop device detached; a mount still busy is detached lazily.
    """
    image, mount = card_image(directory), directory / "card"
    mount.mkdir(parents=True, exist_ok=True)
    with open(image, "xb") as file:
        file.truncate(size_bytes)
    _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
    mount_image(image, mount, options)
    try:
        yield mount
    finally:
        while os.path.ismount(mount):
            if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode != 0:
                lazy_unmount(mount)
        _detach(image)


def mount_image(image: Path, mount: Path, options: tuple[str, ...] = ()) -> None:
    """Loop-mount the ext4 `image` on `mount`, read-write, with the mount `options` given: the card inserted
    (again)."""
    _mount("-t", "ext4", "-o", ",".join(("loop", *options)), str(image), str(mount))


def unmount(mount: Path) -> None:
    """Unmount the card cleanly, as before pulling it out of an idle box."""
    _run("umount", str(mount))


def remount_read_only(mount: Path) -> None:
    """Make the mounted card read-only. Linux refuses while a file on it is open for writing."""
    _mount("-o", "remount,ro", str(mount))


def remount_noatime(mount: Path) -> None:
    """Remount the card `noatime`, as deploy/README.md mounts it on a box: reading leaves no time on it."""
    _mount("-o", "remount,noatime", str(mount))


def remount_writable(mount: Path) -> None:
    """Make a card remounted read-only writable again."""
    _mount("-o", "remount,rw", str(mount))


def fail_read_only(mount: Path) -> None:
    """Turn the card read-only under open files, as the kernel does when ext4 meets an error on a failing
    card (errors=remount-ro): ext4's `abort` option. Writes then fail with EROFS until it is mounted again.
    """
    _mount("-o", "remount,abort", str(mount))


def stop_answering(mount: Path) -> None:
    """Make every operation on the card fail with EIO, as when it is pulled out while mounted: ext4's
    shutdown ioctl, without flushing its journal, so only what was synced survives. The mount stays
    until it is unmounted."""
    fd = os.open(mount, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, _FS_IOC_SHUTDOWN, struct.pack("I", _GOING_NOLOGFLUSH))
    finally:
        os.close(fd)


def lazy_unmount(mount: Path) -> None:
    """Detach the card from `mount` at once (`umount -l`), as the system does when a card goes away: the
    path no longer leads to it, but files held open still write to it until they are closed."""
    _run("umount", "-l", str(mount))


def loop_devices(image: Path) -> list[str]:
    """The loop devices backed by `image` (a lazily unmounted card keeps one until its files close)."""
    done = subprocess.run(["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)],
                          capture_output=True, text=True, check=False)
    return done.stdout.split()


def _detach(image: Path) -> None:
    # `mount -o loop` sets autoclear, so this matters only after a lazy unmount: a device still in
    # use is then detached as soon as its last user lets go.
    for device in loop_devices(image):
        subprocess.run(["losetup", "--detach", device], capture_output=True, check=False)
