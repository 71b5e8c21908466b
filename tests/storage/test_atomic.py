"""Replacing a file whole across a power cut (storage/atomic.py): the order of the system calls.

A SIGKILL cannot show a missing sync, since the kernel still writes the page cache out, and only a
power cut or a pulled card loses it (tests/vm shows it on FAT32). So here the calls are recorded: the new
version is written and synced under its temporary name before the rename, synced again under its own
name after it (FAT writes a renamed file's directory entry only with the file), then the directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from consentbox.storage.atomic import replace_file, replace_file_at, temporary_name

NAME = "manifest.json"


def _at_path(directory: Path, data: bytes) -> None:
    replace_file(directory, NAME, data, 0o600)


def _at_fd(directory: Path, data: bytes) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        replace_file_at(fd, NAME, data, 0o600)
    finally:
        os.close(fd)


def _spy(monkeypatch, directory: Path) -> list[str]:
    """Record write, fsync and replace as they happen, naming each fd by what it is open on."""
    names = {str(directory / temporary_name(NAME)): "temporary", str(directory / NAME): "renamed",
             str(directory): "directory"}
    calls: list[str] = []

    def what(fd: int) -> str:
        return names.get(os.readlink(f"/proc/self/fd/{fd}"), "other")

    for name in ("write", "fsync"):
        real = getattr(os, name)

        def call(fd, *args, _name=name, _real=real):
            calls.append(f"{_name} {what(fd)}")
            return _real(fd, *args)
        monkeypatch.setattr(os, name, call)
    real_replace = os.replace

    def replace(source, target, **kwargs):
        calls.append(f"replace {source} -> {target}")
        return real_replace(source, target, **kwargs)
    monkeypatch.setattr(os, "replace", replace)
    return calls


@pytest.mark.parametrize("entry", [_at_path, _at_fd], ids=["replace_file", "replace_file_at"])
@pytest.mark.parametrize("old", [None, b"old version\n"], ids=["new", "over-old"])
def test_the_temporary_is_synced_before_the_rename_the_file_again_after_it_then_the_directory(
        tmp_path, monkeypatch, entry: Callable[[Path, bytes], None], old: bytes | None):
    if old is not None:
        (tmp_path / NAME).write_bytes(old)
    calls = _spy(monkeypatch, tmp_path)

    entry(tmp_path, b"new version\n")

    rename = f"replace {temporary_name(NAME)} -> {NAME}"
    assert calls == ["write temporary", "fsync temporary", rename, "fsync renamed", "fsync directory"]
    assert (tmp_path / NAME).read_bytes() == b"new version\n"
    assert not (tmp_path / temporary_name(NAME)).exists()
