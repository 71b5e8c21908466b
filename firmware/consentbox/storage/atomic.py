"""Replacing a file so that a power cut leaves either the old version or the new one, never a mix.

Used for the card's manifests and for the box's journal: the new version is written to a hidden
temporary file beside the old one (`.<name>.tmp`), synced, renamed over it, and the directory is
synced. Readers skip names that start with a dot, so a temporary file is never taken for the real one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from consentbox.storage.durable import sync_directory, write_all


def temporary_name(name: str) -> str:
    """The hidden name under which the next version of `name` is written before it replaces it."""
    return f".{name}.tmp"


def replace_file(directory: Path, name: str, data: bytes, mode: int) -> None:
    """Make `directory/name` hold `data` (a new file gets `mode`), old or new whole even across a power cut."""
    temporary = directory / temporary_name(name)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, directory / name)
    except OSError:
        with contextlib.suppress(OSError):  # the disk is failing; the first error is the one to report
            os.unlink(temporary)
        raise
    sync_directory(directory)
