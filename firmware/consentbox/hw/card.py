"""The card port: whether the removable card can take a recording now.

`CardDirectory` is the real adapter and works on any directory, so a plain directory or a
loop-mounted image stands in for the card off the box; on the box `require_mount` makes an empty
mount point (the card pulled out) count as no card, instead of filling the root file system, and
`file_systems` names the types the card may be mounted with (exFAT and FAT32 as deployed): a card of
another type (ext4, NTFS) is the wrong format, refused whole.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem

_MIB = 1 << 20
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")
MOUNTINFO = Path("/proc/self/mountinfo")


# Super options the kernel sets when it stops writing to a file system (ext4's errors=remount-ro,
# an aborted journal, a shut-down device) while statvfs still says read-write.
_KERNEL_READ_ONLY = {"emergency_ro", "abort", "shutdown"}


@dataclass(frozen=True)
class Mount:
    """A mounted file system as the kernel lists it in mountinfo."""

    file_system: str  # the kernel's name for its type: vfat, exfat, ext4, ntfs3, fuseblk (NTFS-3G, exfat-fuse), …
    options: frozenset[str]  # its super options: errors=remount-ro, discard, …


class CardDirectory:
    """A card as a directory: missing, read-only or short of `policy.min_free_mb` MiB free are problems."""

    def __init__(self, path: Path, policy: Policy, *, require_mount: bool = False, file_systems: Collection[str] = (),
                 mountinfo: Path = MOUNTINFO) -> None:
        """`file_systems`: the types a required mount may have (empty: any); `mountinfo`: where the kernel lists
        mounts."""
        self._path = path
        self._min_free = policy.min_free_mb * _MIB
        self._require_mount = require_mount
        self._file_systems = frozenset(file_systems)
        self._mountinfo = mountinfo

    @property
    def path(self) -> Path:
        """The directory that session files go into."""
        return self._path

    def problems(self) -> frozenset[Problem]:
        """NO_CARD or CARD_WRONG_FORMAT, or any of CARD_READ_ONLY and CARD_FULL; empty when a session can be
        recorded."""
        try:
            if not os.path.isdir(self._path) or (self._require_mount and not os.path.ismount(self._path)):
                return frozenset({Problem.NO_CARD})
            mount = mount_at(self._path, self._mountinfo)
            if self._require_mount and not self._formatted_for_box(mount):
                # Not looked at further: a card the box was not set up for is refused whole, never half-used.
                return frozenset({Problem.CARD_WRONG_FORMAT})
            status = os.statvfs(self._path)
        except OSError as error:
            # A card that answers with I/O errors is there but failing; anything else means it is gone.
            return frozenset({Problem.CARD_WRITE_ERROR if error.errno == errno.EIO else Problem.NO_CARD})
        problems = set()
        stopped = mount is not None and bool(mount.options & _KERNEL_READ_ONLY)
        if status.f_flag & os.ST_RDONLY or not os.access(self._path, os.W_OK) or stopped:
            problems.add(Problem.CARD_READ_ONLY)
        if status.f_bavail * status.f_frsize < self._min_free:
            problems.add(Problem.CARD_FULL)
        return frozenset(problems)

    def _formatted_for_box(self, mount: Mount | None) -> bool:
        # A mount point the kernel does not list (mountinfo unreadable) has no type the box can trust.
        return not self._file_systems or (mount is not None and mount.file_system in self._file_systems)


def super_options(path: Path, mountinfo: Path = MOUNTINFO) -> set[str]:
    """The file system options (`errors=remount-ro`, `discard`, …) of the mount at `path`; empty if none."""
    mount = mount_at(path, mountinfo)
    return set() if mount is None else set(mount.options)


def mount_at(path: Path, mountinfo: Path = MOUNTINFO) -> Mount | None:
    """The file system mounted at `path` (its mount point, not a directory inside it); None if none is."""
    try:
        # Mount points are bytes: decoded as os.path.realpath decodes them, so any name still compares.
        lines = mountinfo.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    # Most lines are other mounts: those that do not name the target as a field anywhere are not parsed
    # (the box asks once a second while recording).
    named = f" {_escape(target)} "
    found = None
    for line in lines:  # the last mount on a path is the one in use
        if named not in line:
            continue
        mount, _, source = line.partition(" - ")
        before, after = mount.split(), source.split()
        if len(before) > 4 and len(after) > 2 and _unescape(before[4]) == target:
            found = Mount(after[0], frozenset(after[2].split(",")))
    return found


def _escape(path: str) -> str:
    """A path as mountinfo writes it: space, tab, newline and backslash as \\ooo (octal)."""
    return "".join(f"\\{ord(char):03o}" if char in " \t\n\\" else char for char in path)


def _unescape(field: str) -> str:
    """A mountinfo path field: the kernel writes a space, tab, newline or backslash as \\ooo (octal)."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match[1], 8)), field)
