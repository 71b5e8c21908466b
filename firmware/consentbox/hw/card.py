"""The card port: whether the removable card can take a recording now.

`CardDirectory` is the real adapter and works on any directory, so a plain directory or a
loop-mounted image stands in for the card off the box; on the box `require_mount` makes an empty
mount point (the card pulled out) count as no card, instead of filling the root file system.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem

_MIB = 1 << 20
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


# Super options the kernel sets when it stops writing to a file system (ext4's errors=remount-ro,
# an aborted journal, a shut-down device) while statvfs still says read-write.
_KERNEL_READ_ONLY = {"emergency_ro", "abort", "shutdown"}


class CardDirectory:
    """A card as a directory: missing, read-only or short of `policy.min_free_mb` MiB free are problems."""

    def __init__(self, path: Path, policy: Policy, *, require_mount: bool = False) -> None:
        self._path = path
        self._min_free = policy.min_free_mb * _MIB
        self._require_mount = require_mount

    @property
    def path(self) -> Path:
        """The directory that session files go into."""
        return self._path

    def problems(self) -> frozenset[Problem]:
        """NO_CARD, or any of CARD_READ_ONLY and CARD_FULL; empty when a session can be recorded."""
        try:
            if not os.path.isdir(self._path) or (self._require_mount and not os.path.ismount(self._path)):
                return frozenset({Problem.NO_CARD})
            status = os.statvfs(self._path)
        except OSError as error:
            # A card that answers with I/O errors is there but failing; anything else means it is gone.
            return frozenset({Problem.CARD_WRITE_ERROR if error.errno == errno.EIO else Problem.NO_CARD})
        problems = set()
        if status.f_flag & os.ST_RDONLY or not os.access(self._path, os.W_OK) or _kernel_made_read_only(self._path):
            problems.add(Problem.CARD_READ_ONLY)
        if status.f_bavail * status.f_frsize < self._min_free:
            problems.add(Problem.CARD_FULL)
        return frozenset(problems)


def _kernel_made_read_only(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> bool:
    """Whether the kernel stopped writing to the file system mounted at `path` (see _KERNEL_READ_ONLY)."""
    return bool(super_options(path, mountinfo) & _KERNEL_READ_ONLY)


def super_options(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> set[str]:
    """The file system options (`errors=remount-ro`, `discard`, …) of the mount at `path`; empty if none."""
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return set()
    target = os.path.realpath(path)
    options: set[str] = set()
    for line in lines:  # the last mount on a path is the one in use
        mount, _, source = line.partition(" - ")
        before, after = mount.split(), source.split()
        if len(before) > 4 and len(after) > 2 and _unescape(before[4]) == target:
            options = set(after[2].split(","))
    return options


def _unescape(field: str) -> str:
    """A mountinfo path field: the kernel writes a space, tab, newline or backslash as \\ooo (octal)."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match[1], 8)), field)
