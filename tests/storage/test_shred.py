"""Destroying one file (issue 8, item 2): overwrite in place with random bytes, sync each chunk,
truncate, sync, unlink; a session that begins stops it between chunks.

What the overwrite leaves on a real file system's blocks is measured on a raw ext4 image in
tests/system/test_retention.py; here, the order of the system calls and the bytes the file holds.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from consentbox.storage import portable
from consentbox.storage import shred as shred_module
from consentbox.storage.card_files import ForeignEntry
from consentbox.storage.shred import Paused, shred

CHUNK = 4096
SIZE = 2 * CHUNK + 1808


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(shred_module, "CHUNK", CHUNK)


def _differs_everywhere(new: bytes, old: bytes) -> bool:
    """Whether no 16-byte piece of `old` survived in place in `new` (random bytes: 2**-128 each by chance)."""
    return all(new[i:i + 16] != old[i:i + 16] for i in range(0, len(old), 16))


def _spy(monkeypatch, path: Path) -> tuple[list[str], list[bytes]]:
    """Record the calls shred makes on `path` (by name), and the file's bytes just before it is truncated."""
    calls: list[str] = []
    at_truncation: list[bytes] = []

    def ours(fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            return False

    for name in ("write", "fdatasync", "fsync", "ftruncate"):
        real = getattr(os, name)

        def call(fd, *args, _name=name, _real=real):
            if ours(fd):
                calls.append(_name)
                if _name == "ftruncate":
                    at_truncation.append(path.read_bytes())
            return _real(fd, *args)
        monkeypatch.setattr(os, name, call)
    real_unlink = os.unlink

    def unlink(target, *args, **kwargs):
        if os.fspath(target) == str(path):
            calls.append("unlink")
        return real_unlink(target, *args, **kwargs)
    monkeypatch.setattr(os, "unlink", unlink)
    return calls, at_truncation


def test_every_byte_is_overwritten_in_place_and_synced_chunk_by_chunk_before_the_file_goes(
        tmp_path, monkeypatch, small_chunks):
    path = tmp_path / "0123456789abcdef.000.wav.age"
    original = os.urandom(SIZE)
    path.write_bytes(original)
    asked = []
    calls, at_truncation = _spy(monkeypatch, path)

    assert shred(path, lambda: asked.append(True) or True) == SIZE

    assert calls == ["write", "fdatasync"] * 3 + ["ftruncate", "fsync", "unlink"]
    assert len(asked) == 3, "asked whether it may go on before each chunk"
    [overwritten] = at_truncation
    assert len(overwritten) == SIZE and _differs_everywhere(overwritten, original)
    assert not path.exists()


def test_a_session_beginning_stops_the_overwrite_between_chunks(tmp_path, small_chunks):
    path = tmp_path / "0123456789abcdef.000.wav.age"
    original = os.urandom(SIZE)
    path.write_bytes(original)
    answers = iter([True, False])
    open_files = len(os.listdir("/proc/self/fd"))

    with pytest.raises(Paused, match=str(path)):
        shred(path, lambda: next(answers))

    left = path.read_bytes()
    assert len(left) == SIZE and left[CHUNK:] == original[CHUNK:]
    assert _differs_everywhere(left[:CHUNK], original[:CHUNK])
    assert len(os.listdir("/proc/self/fd")) == open_files, "the file was left open"


def test_a_file_that_is_gone_already_is_not_an_error(tmp_path):
    gone = tmp_path / "0123456789abcdef.000.wav.age"
    assert shred(gone, lambda: pytest.fail("asked about a file that is not there")) == 0


def test_an_empty_file_is_just_removed(tmp_path):
    path = tmp_path / "0123456789abcdef.manifest.age"
    path.touch()
    shred(path, lambda: pytest.fail("asked about a file with nothing to overwrite"))
    assert not path.exists()


def test_a_fifo_or_a_directory_is_refused_at_once_and_left(tmp_path):
    # A hostile card's FIFO at a segment's name would have kept `consentbox-admin destroy` waiting for ever.
    fifo = tmp_path / "0123456789abcdef.000.wav.age"
    os.mkfifo(fifo)
    directory = tmp_path / "0123456789abcdef.manifest.age"
    directory.mkdir()
    for path, what in ((fifo, "a FIFO"), (directory, "a directory")):
        with pytest.raises(ForeignEntry, match=f"is {what}, which the box did not put there") as error:
            shred(path, lambda: pytest.fail("asked to overwrite what is not a file"))
        assert "\n" not in str(error.value) and path.exists()


@pytest.mark.parametrize("workstation", ["posix", "windows"])
def test_a_symbolic_link_is_refused_and_its_target_untouched(tmp_path, monkeypatch, workstation):
    if workstation == "windows":  # no O_NOFOLLOW: the path is looked at before it is opened
        monkeypatch.setattr(portable, "NOFOLLOW", 0)
    target = tmp_path / "device.key"
    target.write_bytes(b"not the card's to destroy")
    link = tmp_path / "0123456789abcdef.000.wav.age"
    link.symlink_to(target)
    with pytest.raises(OSError) as error:
        shred(link, lambda: True)
    assert error.value.errno == errno.ELOOP
    assert target.read_bytes() == b"not the card's to destroy" and link.is_symlink()


def test_without_o_nofollow_a_link_swapped_in_after_the_look_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(portable, "NOFOLLOW", 0)
    target = tmp_path / "device.key"
    target.write_bytes(b"not the card's to destroy")
    path = tmp_path / "0123456789abcdef.000.wav.age"
    path.write_bytes(b"the card's")
    real_open = os.open

    def swapped(name, flags, *args, **kwargs):
        os.unlink(name)
        os.symlink(target, name)
        return real_open(name, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", swapped)
    with pytest.raises(OSError) as error:
        shred(path, lambda: True)
    assert error.value.errno == errno.ELOOP
    assert target.read_bytes() == b"not the card's to destroy"

