"""Reading a bundle off a USB stick without trusting the stick.

A block device is mounted read-only, nosuid, nodev, noexec and nosymfollow on a private mount point
(its block device set read-only first, so not even a journal replay writes to it), read, and
unmounted again. Only the stick's top level is looked at: exactly one entry must end in `.cbundle`
(any case; names starting with a dot, such as the `._` files macOS leaves, are ignored), and it must
be a regular file no larger than the cap. It is opened with O_NOFOLLOW and O_NONBLOCK, so a symbolic
link or a FIFO cannot redirect or block the read, and checked again on the open file.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from consentbox.core.provisioning import BundleRefusal, Refused
from consentbox.provisioning.bundle import MAX_BUNDLE_BYTES, SUFFIX

#: File systems a stick may carry, with the read-only options each needs beyond the common ones.
FILE_SYSTEMS = {"vfat": "", "exfat": "", "ext2": "", "ext3": ",noload", "ext4": ",noload"}
_MOUNT_OPTIONS = "ro,nosuid,nodev,noexec,nosymfollow,noatime"
_COMMAND_SECONDS = 30
_LISTED = 5  # bundle names a "several bundles" refusal names


def read_bundle(source: Path) -> tuple[str, bytes]:
    """The name and bytes of the one bundle on `source`, a stick's block device or a directory."""
    try:
        mode = os.stat(source).st_mode
    except OSError as error:
        raise Refused(BundleRefusal.UNREADABLE, f"{source}: {error.strerror}") from None
    if stat.S_ISBLK(mode):
        with mounted_read_only(source) as root:
            return read_bundle_from_directory(root)
    if stat.S_ISDIR(mode):
        return read_bundle_from_directory(source)
    raise Refused(BundleRefusal.UNREADABLE, f"{source} is neither a block device nor a directory")


def read_bundle_from_directory(root: Path) -> tuple[str, bytes]:
    """The name and bytes of the one bundle at the top of `root`; `Refused` for anything else."""
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise Refused(BundleRefusal.UNREADABLE, f"{root}: {error.strerror}") from None
    try:
        names, count = _bundle_names(root_fd)
        if not count:
            raise Refused(BundleRefusal.NO_BUNDLE, f"no *{SUFFIX} file at the top of the stick")
        if count > 1:
            listed = ", ".join(shown_name(name) for name in names)
            raise Refused(BundleRefusal.SEVERAL_BUNDLES, listed + (f" and {count - len(names)} more"
                                                                   if count > len(names) else ""))
        return names[0], _read_regular_file(root_fd, names[0])
    except OSError as error:
        raise Refused(BundleRefusal.UNREADABLE, f"{root}: {error.strerror or error}") from None
    finally:
        os.close(root_fd)


def _bundle_names(root_fd: int) -> tuple[list[str], int]:
    """The first few bundle names at the top of the stick, in order, and how many there are: a stick can
    hold millions of them, and only a few are ever shown."""
    first: list[str] = []
    count = 0
    for entry in os.scandir(root_fd):
        if entry.name.lower().endswith(SUFFIX) and not entry.name.startswith("."):
            count += 1
            bisect.insort(first, entry.name)
            del first[_LISTED:]
    return first, count


def shown_name(name: str) -> str:
    """A file name from a stick, fit for a message: quoted, with anything unprintable escaped (a name
    can hold newlines, terminal escapes, or bytes that are not UTF-8)."""
    return ascii(name)


def _read_regular_file(root_fd: int, name: str) -> bytes:
    shown = shown_name(name)
    kind = _kind(os.stat(name, dir_fd=root_fd, follow_symlinks=False).st_mode)
    if kind != "regular file":
        raise Refused(BundleRefusal.NOT_A_FILE, f"{shown} is a {kind}")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                     dir_fd=root_fd)
    except OSError as error:  # swapped for a link or a FIFO since the look above
        raise Refused(BundleRefusal.NOT_A_FILE, f"{shown}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as src:
        status = os.fstat(src.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise Refused(BundleRefusal.NOT_A_FILE, f"{shown} is a {_kind(status.st_mode)}")
        if status.st_size > MAX_BUNDLE_BYTES:
            raise Refused(BundleRefusal.TOO_LARGE, f"{shown} is {status.st_size} bytes, the cap is {MAX_BUNDLE_BYTES}")
        data = src.read(MAX_BUNDLE_BYTES + 1)
    if len(data) > MAX_BUNDLE_BYTES:  # it grew while we looked
        raise Refused(BundleRefusal.TOO_LARGE, f"{shown} is over the {MAX_BUNDLE_BYTES}-byte cap")
    return data


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISREG, "regular file"), (stat.S_ISLNK, "symbolic link"), (stat.S_ISDIR, "directory"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return word
    return "special file"


@contextlib.contextmanager
def mounted_read_only(device: Path) -> Iterator[Path]:
    """Mount `device` read-only (see the module's words) on a new private directory; unmount after."""
    kind = _run(["blkid", "-p", "-o", "value", "-s", "TYPE", str(device)], device).strip()
    if kind not in FILE_SYSTEMS:
        raise Refused(BundleRefusal.UNREADABLE, f"{device} holds {kind or 'no known file system'}; "
                      f"a stick must be {', '.join(FILE_SYSTEMS)}")
    was_read_only = _run(["blockdev", "--getro", str(device)], device).strip() == "1"
    _run(["blockdev", "--setro", str(device)], device)
    try:
        with tempfile.TemporaryDirectory(prefix="consentbox-stick-") as where:
            os.chmod(where, 0o700)
            _run(["mount", "-t", kind, "-o", _MOUNT_OPTIONS + FILE_SYSTEMS[kind], str(device), where], device)
            try:
                yield Path(where)
            finally:
                _run(["umount", where], device)
    finally:
        if not was_read_only:  # leave the device as it was found (a loop device keeps the flag)
            _run(["blockdev", "--setrw", str(device)], device)


def _run(command: list[str], device: Path) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_COMMAND_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Refused(BundleRefusal.UNREADABLE, f"{device}: {command[0]}: {error}") from None
    if done.returncode != 0 and not (command[0] == "blkid" and done.returncode == 2):  # 2: nothing found
        message = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise Refused(BundleRefusal.UNREADABLE, f"{device}: {command[0]}: {message}")
    return done.stdout
