"""Small real file systems that stand in for the card: one that fills up, one that is read-only.

A real file system shows what a fake cannot: the errno a full card gives mid-write, and the
read-only flag statvfs reports. Both mount, so they need root (the box's tests and CI run as root).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"mount {' '.join(args)} failed ({done.stderr.strip()}): mounting needs root")


@contextlib.contextmanager
def small_card(path: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of `size_bytes` mounted on the (created) directory `path`, unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


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
