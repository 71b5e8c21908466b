"""Where an `os.replace` call puts its file (or an `os.unlink` call removes one), for tests that stand in
for them to fail one directory.

The box replaces and removes files through an open directory (`src_dir_fd`, `dst_dir_fd`, `dir_fd`: see
`storage.atomic` and `storage.card_files`), so a stand-in sees a bare name and the directory's
descriptor, not a path.
"""

from __future__ import annotations

import os
from pathlib import Path


def replace_target(target: str | os.PathLike[str], *, dst_dir_fd: int | None = None, **_: object) -> Path:
    """The path an `os.replace(source, target, …)` call writes to (its keyword arguments passed on as given)."""
    if dst_dir_fd is None:
        return Path(target)
    return Path(os.readlink(f"/proc/self/fd/{dst_dir_fd}")) / target


def unlink_target(path: str | os.PathLike[str], *, dir_fd: int | None = None, **_: object) -> Path:
    """The path an `os.unlink(path, …)` call removes (its keyword arguments passed on as given)."""
    return replace_target(path, dst_dir_fd=dir_fd)
