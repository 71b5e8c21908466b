"""The card port: whether the removable card can take a recording now.

`CardDirectory` is the real adapter and works on any directory, so a plain directory or a
loop-mounted image stands in for the card off the box; on the box `require_mount` makes an empty
mount point (the card pulled out) count as no card, instead of filling the root file system.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Protocol

from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem

_MIB = 1 << 20


class Card(Protocol):
    """Where sessions are written, and what keeps the box from writing one there."""

    @property
    def path(self) -> Path:
        """The directory that session files go into."""
        ...

    def problems(self) -> frozenset[Problem]:
        """Why a session cannot be recorded on the card now; empty when it can."""
        ...


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
        if status.f_flag & os.ST_RDONLY or not os.access(self._path, os.W_OK):
            problems.add(Problem.CARD_READ_ONLY)
        if status.f_bavail * status.f_frsize < self._min_free:
            problems.add(Problem.CARD_FULL)
        return frozenset(problems)
