"""Looking for input audio where it must never be: on a card's raw image, in the temp directories.

The box must never put audio in the clear on a disk, not even in a temporary file (docs/product.md,
"Recording and encryption"). A test feeds it input that nothing else can hold by chance (fresh random
bytes, or the position signal), then looks for any 4 KiB run of that input in the places a leak would
land: the raw image of a loop-mounted card (deleted files and free blocks included) and the temp
directories.

Any 4096 bytes in a row of the input contain one of its 2048-byte blocks that start at a multiple of
2048, so looking for those blocks finds every 4 KiB run, wherever it starts. That search is slow (one
pass over a file per block), so a quick one goes first: the 8 bytes at every 1024th offset of the
input go in a set, and every 8 bytes of a file, at every offset, are looked up in it. A 4 KiB run
holds at least three of those probes, so a file the quick search passes holds no run.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

#: The shortest run of input that counts as a leak.
RUN_BYTES = 4096
_BLOCK = RUN_BYTES // 2
_PROBE = 8  # bytes: one unsigned 64-bit word
_PROBE_STRIDE = 1024
_WINDOW = 64 << 20  # read at a time, so a huge file in a temp directory cannot exhaust memory


def temp_directories() -> list[Path]:
    """Where temporary files go on this machine: $TMPDIR (or /tmp), /var/tmp, /dev/shm."""
    places = {Path(tempfile.gettempdir()), Path("/var/tmp"), Path("/dev/shm")}
    return sorted(place for place in places if place.is_dir())


def files_holding(
    pcm: bytes,
    places: Iterable[Path],
    *,
    changed_since: float | None = None,
    skip: Iterable[Path] = (),
) -> list[Path]:
    """The regular files in `places` (files, or directories searched through) holding a 4 KiB run of `pcm`.

    `changed_since` (a `time.time()`) leaves out files not modified since then: with input made
    fresh for the test, no older file can hold it. Paths in `skip`, and everything under them, are
    left out (the supervisor's export, which is plaintext by design).
    """
    blocks = [pcm[start : start + _BLOCK] for start in range(0, len(pcm) - _BLOCK + 1, _BLOCK)]
    probes = frozenset(int.from_bytes(pcm[start : start + _PROBE], sys.byteorder)
                       for start in range(0, len(pcm) - _PROBE + 1, _PROBE_STRIDE))
    found = []
    for path in _files(places, {os.fspath(path) for path in skip}):
        try:
            status = path.lstat()
            if not stat.S_ISREG(status.st_mode) or status.st_size < RUN_BYTES:
                continue
            if changed_since is not None and max(status.st_mtime, status.st_ctime) < changed_since - 1:
                continue
            if any(_has_probe(window, probes) and any(block in window for block in blocks)
                   for window in _windows(path)):
                found.append(path)
        except OSError:  # gone, or not ours to read: other processes use the temp directories too
            continue
    return found


def _windows(path: Path) -> Iterator[bytes]:
    """The file's data in windows of at most `_WINDOW` bytes, each overlapping the last by a run less one
    byte, so every run lies whole in one window; holes of a sparse file are skipped, not read."""
    with open(path, "rb") as file:
        fd = file.fileno()
        size = os.fstat(fd).st_size
        position = 0
        while position < size:
            try:
                position = os.lseek(fd, position, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                return
            yield os.pread(fd, _WINDOW, position)
            position += _WINDOW - (RUN_BYTES - 1)


def _has_probe(content: bytes, probes: frozenset[int]) -> bool:
    """Whether any 8 bytes of `content`, at any offset, are one of the input's probes."""
    view = memoryview(content)
    for offset in range(_PROBE):
        usable = (len(content) - offset) // _PROBE * _PROBE
        if usable and not probes.isdisjoint(view[offset : offset + usable].cast("Q")):
            return True
    return False


def _files(places: Iterable[Path], skip: set[str]) -> Iterator[Path]:
    for place in places:
        if os.fspath(place) in skip:
            continue
        if not place.is_dir() or place.is_symlink():
            yield place
            continue
        for directory, subdirectories, names in os.walk(place):
            subdirectories[:] = [name for name in subdirectories if os.path.join(directory, name) not in skip]
            yield from (Path(directory, name) for name in names if os.path.join(directory, name) not in skip)
