"""Opening, creating, listing and removing files on the card without trusting what the card holds.

A card is removable media that anyone can prepare on their own computer (issue 16): a name the box
uses may hold a symbolic link (to the box's own state, or to nothing yet), a FIFO that blocks whoever
opens it, a directory, a device node, a hard link to a file elsewhere on the same file system, a file
of gigabytes, or one the box may not open. So every name on the card is looked up in the card's
directory, open as a descriptor (never through a path that a link could redirect), and looked at
before it is opened: only a regular file with one name is ever opened (a device never is), with
O_NOFOLLOW and O_NONBLOCK, and the open file is checked again to be the one looked at. New files are
made with O_EXCL; a temporary name already taken (a power cut's leftover, or anything planted there)
is unlinked first, which removes a link and never its target. Listings keep at most `MAX_LISTED`
names, since a card can hold millions. Anything else is a `ForeignEntry`: the box leaves it where it
is, reports it and goes on. docs/reliability.md ("Hostile cards") lists every case and its test.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from consentbox.core.errors import ConsentBoxError
from consentbox.storage import portable

#: The most names one listing of the card keeps: far more than the files of every session a card
#: can hold (three each), and a few megabytes of memory at most, however many the card has.
MAX_LISTED = 65_536


class ForeignEntry(ConsentBoxError, OSError):
    """A name the box uses on the card holds something the box did not put there; the box leaves it."""

    def __init__(self, name: str, what: str) -> None:
        # ascii(): a name from a card may hold newlines, terminal escapes or bytes that are not UTF-8.
        super().__init__(f"{ascii(name)} on the card is {what}, which the box did not put there: left as it is; "
                         "remove it from the card")
        self.name = name
        self.what = what


def open_directory(card: Path) -> int:
    """A descriptor on the card's directory (its mount point, or the simulator's directory)."""
    return os.open(card, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


@contextlib.contextmanager
def card_directory(card: Path | int) -> Iterator[int]:
    """A descriptor on the card's directory: `card` itself if it is one (left open), else `card` opened
    for the duration (OSError if it cannot be)."""
    if isinstance(card, int):
        yield card
        return
    directory = open_directory(card)
    try:
        yield directory
    finally:
        os.close(directory)


def look(directory: int, name: str) -> os.stat_result | None:
    """What `name` in the card's directory is, a link not followed; None if there is no such entry."""
    try:
        return os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return None


def foreign(status: os.stat_result, max_bytes: int | None = None) -> str | None:
    """Why an entry with `status` is not a file the box could have written, in words (None if it could be):
    the box writes only regular files with one name, and none larger than `max_bytes` (when given)."""
    if not stat.S_ISREG(status.st_mode):
        return kind_of(status.st_mode)
    if status.st_nlink != 1:
        return f"a file with {status.st_nlink} names (a hard link)"
    if max_bytes is not None and status.st_size > max_bytes:
        return f"a file of {status.st_size} bytes, larger than any the box writes there ({max_bytes})"
    return None


def sort_out(directory: int, names: list[str], max_bytes: int | None = None) -> tuple[list[str], list[ForeignEntry]]:
    """Of `names` in the card's directory, those that are files the box could have written (see `foreign`),
    and why each of the others is not; names no longer there are in neither."""
    files, left = [], []
    for name in names:
        status = look(directory, name)
        why = None if status is None else foreign(status, max_bytes)
        if why is not None:
            left.append(ForeignEntry(name, why))
        elif status is not None:
            files.append(name)
    return files, left


def open_file(directory: int, name: str, flags: int = os.O_RDONLY, *, max_bytes: int | None = None) -> int:
    """Open `name`, one of the box's files in the card's directory, with `flags` (O_RDONLY, O_WRONLY).

    FileNotFoundError if it is not there; ForeignEntry if it is anything but a regular file with one
    name (of at most `max_bytes`), or one the box may not open.
    """
    status = os.stat(name, dir_fd=directory, follow_symlinks=False)
    _refuse_foreign(name, status, max_bytes)
    try:
        fd = os.open(name, flags | _safe_flags(), dir_fd=directory)
    except PermissionError:
        raise ForeignEntry(name, "a file the box may not open") from None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENOTDIR):  # swapped since looked at
            raise ForeignEntry(name, "no longer the file it was a moment before") from None
        raise
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (status.st_dev, status.st_ino):
            raise ForeignEntry(name, "no longer the file it was a moment before")
        _refuse_foreign(name, opened, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_file(directory: int, name: str, mode: int, *, replace: bool = False) -> int:
    """A new, empty regular file `name` in the card's directory, open for writing.

    If the name is taken: ForeignEntry (the box never makes one of its files twice), unless `replace`
    (a temporary name): whatever has it is unlinked first, and ForeignEntry only if it cannot be (a
    directory).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _safe_flags()
    try:
        return os.open(name, flags, mode, dir_fd=directory)
    except FileExistsError:
        if not replace:
            status = look(directory, name)
            raise ForeignEntry(name, "already there" if status is None else foreign(status) or "a file") from None
    try:
        os.unlink(name, dir_fd=directory)  # never follows a link: the link goes, its target stays
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise ForeignEntry(name, "a directory") from None
    except PermissionError:
        raise ForeignEntry(name, "an entry the box may not remove") from None
    return os.open(name, flags, mode, dir_fd=directory)


def remove_file(directory: int, name: str, *, max_bytes: int | None = None) -> bool:
    """Unlink `name`, one of the box's files, from the card's directory; whether it was there.

    ForeignEntry, and nothing removed, if it is anything the box does not write there (see `foreign`).
    """
    status = look(directory, name)
    if status is None:
        return False
    _refuse_foreign(name, status, max_bytes)
    try:
        os.unlink(name, dir_fd=directory)
    except FileNotFoundError:
        return False
    return True


def listed_names(directory: int | Path, wanted: Callable[[str], bool], limit: int = MAX_LISTED) -> list[str]:
    """The names in the card's directory (a descriptor, or a path on a workstation) that `wanted` keeps, in
    the directory's order: at most `limit` of them, the rest never kept, so that no card can fill the
    box's memory; OSError if it cannot be listed."""
    kept: list[str] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if wanted(entry.name):
                kept.append(entry.name)
                if len(kept) == limit:
                    break
    return kept


def open_for_reading(path: Path, *, max_bytes: int | None = None) -> BinaryIO:
    """A file on a card, opened for reading by the workstation's tools as the box opens one (`open_file`):
    only a regular file, never through a link, never blocking on a FIFO. Where the OS has no directory
    descriptors (Windows) the same look is taken at the path, then at the open file, which must be the
    one looked at."""
    if portable.DIRECTORY_DESCRIPTORS:
        with card_directory(path.parent) as directory:
            return os.fdopen(open_file(directory, path.name, max_bytes=max_bytes), "rb")
    status = os.lstat(path)
    _refuse_foreign(path.name, status, max_bytes)
    try:
        fd = portable.open_unfollowed(path, os.O_RDONLY)
    except OSError as error:
        if error.errno == errno.ELOOP:  # swapped since looked at
            raise ForeignEntry(path.name, "no longer the file it was a moment before") from None
        raise
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (status.st_dev, status.st_ino):
            raise ForeignEntry(path.name, "no longer the file it was a moment before")
        _refuse_foreign(path.name, opened, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _refuse_foreign(name: str, status: os.stat_result, max_bytes: int | None) -> None:
    why = foreign(status, max_bytes)
    if why is not None:
        raise ForeignEntry(name, why)


def _safe_flags() -> int:
    """What every open of a card file adds: never follow a link, never wait on a FIFO, never become a
    terminal's controlling process, never pass to a child. (A function: os.O_NOFOLLOW and the others are
    missing on Windows, where the admin tool imports this module for `listed_names`.)"""
    return os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def kind_of(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    for test, words in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a file")):
        if test(mode):
            return words
    return "a special file"
