"""Reading the one bundle off a stick's top directory without trusting the stick.

Real files of every kind a hostile stick can hold (links, FIFOs, device nodes, sockets, directories,
huge sparse files), made as root as CI runs. Nothing may be followed, block, or be read past the cap;
each is refused with the reason IT can act on. Block devices are mounted in tests/system/test_provisioning.py.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import stat
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentbox.core.provisioning import BundleRefusal, Refused
from consentbox.provisioning import stick
from consentbox.provisioning.bundle import MAX_BUNDLE_BYTES, seal
from consentbox.provisioning.stick import read_bundle, read_bundle_from_directory


@pytest.fixture(autouse=True)
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("these tests make device nodes, which needs root: run them as root, as CI does")


@pytest.fixture
def stick_dir(tmp_path: Path) -> Path:
    path = tmp_path / "stick"
    path.mkdir()
    return path


@pytest.fixture
def good(org, make_bundle) -> bytes:
    return seal(make_bundle(2), org)


@contextlib.contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail (rather than hang the run) if the block takes longer than `seconds`."""
    def expired(signum, frame):
        raise AssertionError(f"still reading after {seconds} s: the stick blocked the read")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refused(source: Path) -> Refused:
    with within(5), pytest.raises(Refused) as error:
        read_bundle(source)
    return error.value


def test_the_one_bundle_is_read_whole(stick_dir, good):
    (stick_dir / "consentbox-v2.cbundle").write_bytes(good)
    assert read_bundle(stick_dir) == ("consentbox-v2.cbundle", good)
    assert read_bundle_from_directory(stick_dir) == ("consentbox-v2.cbundle", good)


@pytest.mark.parametrize("name", ["x.cbundle", "CLINIC.CBUNDLE", "Neu.CBundle", "with space.cbundle"])
def test_the_suffix_is_matched_in_any_case(stick_dir, good, name):
    (stick_dir / name).write_bytes(good)
    assert read_bundle(stick_dir) == (name, good)


def test_dot_files_other_names_and_subdirectories_are_ignored(stick_dir, good):
    (stick_dir / "consentbox-v2.cbundle").write_bytes(good)
    (stick_dir / "._consentbox-v2.cbundle").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS leaves these
    (stick_dir / ".hidden.cbundle").write_bytes(good)
    for name in ("consentbox-v3.cbundle.txt", "consentbox-v3.cbundle~", "README", "cbundle"):
        (stick_dir / name).write_bytes(good)
    (stick_dir / "older").mkdir()
    (stick_dir / "older" / "consentbox-v1.cbundle").write_bytes(good)
    assert read_bundle(stick_dir) == ("consentbox-v2.cbundle", good)


def test_an_empty_stick_has_no_bundle(stick_dir):
    assert refused(stick_dir).reason is BundleRefusal.NO_BUNDLE


def test_a_bundle_only_below_the_top_or_hidden_is_no_bundle(stick_dir, good):
    (stick_dir / "bundles").mkdir()
    (stick_dir / "bundles" / "consentbox-v2.cbundle").write_bytes(good)
    (stick_dir / "._consentbox-v2.cbundle").write_bytes(good)
    assert refused(stick_dir).reason is BundleRefusal.NO_BUNDLE


def test_two_bundles_are_refused_naming_both(stick_dir, good):
    (stick_dir / "a.cbundle").write_bytes(good)
    (stick_dir / "b.CBUNDLE").write_bytes(good)
    error = refused(stick_dir)
    assert error.reason is BundleRefusal.SEVERAL_BUNDLES and error.detail == "'a.cbundle', 'b.CBUNDLE'"


def test_a_bundle_beside_a_directory_named_like_one_is_two(stick_dir, good):
    (stick_dir / "a.cbundle").write_bytes(good)
    (stick_dir / "b.cbundle").mkdir()
    assert refused(stick_dir).reason is BundleRefusal.SEVERAL_BUNDLES


def make_socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays


def make_directory_holding(path: Path, bundle: Path) -> None:
    path.mkdir()
    (path / "consentbox-v2.cbundle").write_bytes(bundle.read_bytes())


#: Things at the top of a stick, named *.cbundle, that are not a regular file, each made from the path it
#: takes and a valid bundle elsewhere: each is refused by its kind.
NOT_FILES = {
    "symbolic link to a good bundle": (lambda path, bundle: os.symlink(bundle, path), "symbolic link"),
    "relative symbolic link": (lambda path, bundle: os.symlink("inside/real", path), "symbolic link"),
    "dangling symbolic link": (lambda path, bundle: os.symlink("/nonexistent/x.cbundle", path), "symbolic link"),
    "FIFO": (lambda path, bundle: os.mkfifo(path), "FIFO"),
    "character device (/dev/zero)": (lambda path, bundle: os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5)),
                                     "character device"),
    "block device (/dev/loop0)": (lambda path, bundle: os.mknod(path, 0o644 | stat.S_IFBLK, os.makedev(7, 0)),
                                  "block device"),
    "socket": (lambda path, bundle: make_socket(path), "socket"),
    "directory holding a bundle": (make_directory_holding, "directory"),
}


@pytest.mark.parametrize("kind", NOT_FILES)
def test_anything_but_a_regular_file_is_refused_by_its_kind_without_reading_it(stick_dir, tmp_path, good, kind):
    elsewhere = tmp_path / "elsewhere.cbundle"
    elsewhere.write_bytes(good)
    (stick_dir / "inside").mkdir()
    (stick_dir / "inside" / "real").write_bytes(good)
    make, word = NOT_FILES[kind]
    make(stick_dir / "consentbox-v2.cbundle", elsewhere)
    error = refused(stick_dir)
    assert error.reason is BundleRefusal.NOT_A_FILE
    assert error.detail == f"'consentbox-v2.cbundle' is a {word}"


def test_a_fifo_with_a_writer_waiting_is_refused_and_the_writer_never_served(stick_dir):
    fifo = stick_dir / "consentbox-v2.cbundle"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # holds it open, as a process on the box could
    try:
        os.write(writer, b"consentbox-bundle/v1\n")
        assert refused(stick_dir).reason is BundleRefusal.NOT_A_FILE
        assert os.read(writer, 100) == b"consentbox-bundle/v1\n"  # nothing was read from it
    finally:
        os.close(writer)


def test_a_huge_sparse_file_is_refused_by_its_size_without_being_read(stick_dir, good, monkeypatch):
    path = stick_dir / "consentbox-v2.cbundle"
    path.write_bytes(good)
    os.truncate(path, 64 << 30)  # 64 GiB of holes, a million times the cap: reading it would take minutes
    reads: list[int] = []

    class WatchedFile(io.BufferedReader):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    monkeypatch.setattr(stick.os, "fdopen", lambda fd, mode: WatchedFile(io.FileIO(fd, mode)))
    error = refused(stick_dir)
    assert reads == [], "the file was read before its size refused it"
    assert error.reason is BundleRefusal.TOO_LARGE
    assert error.detail.startswith(f"'consentbox-v2.cbundle' is {64 << 30} bytes")


def test_a_file_at_the_cap_is_read_and_one_byte_over_is_refused(stick_dir):
    path = stick_dir / "x.cbundle"
    path.write_bytes(b"a" * MAX_BUNDLE_BYTES)
    assert read_bundle(stick_dir) == ("x.cbundle", b"a" * MAX_BUNDLE_BYTES)
    path.write_bytes(b"a" * (MAX_BUNDLE_BYTES + 1))
    assert refused(stick_dir).reason is BundleRefusal.TOO_LARGE


@pytest.mark.parametrize("swap", ["symbolic link", "FIFO"])
def test_a_bundle_swapped_after_it_was_looked_at_is_still_refused(stick_dir, tmp_path, good, monkeypatch, swap):
    # A stick's file system can change between the look and the open (a FUSE or network file system,
    # or a race on a directory): the open itself refuses to follow or to block, and the open file is checked.
    path = stick_dir / "consentbox-v2.cbundle"
    path.write_bytes(good)
    elsewhere = tmp_path / "elsewhere.cbundle"
    elsewhere.write_bytes(good)
    real_stat = os.stat

    def stat_then_swap(*args, **kwargs):
        status = real_stat(*args, **kwargs)
        if args[0] == path.name:
            path.unlink()
            os.symlink(elsewhere, path) if swap == "symbolic link" else os.mkfifo(path)
        return status

    monkeypatch.setattr(stick.os, "stat", stat_then_swap)
    assert refused(stick_dir).reason is BundleRefusal.NOT_A_FILE


@pytest.mark.parametrize("source", ["missing", "a regular file", "a character device"])
def test_a_source_that_is_neither_a_stick_nor_a_directory_is_unreadable(tmp_path, good, source):
    path = tmp_path / "source"
    if source == "a regular file":
        path.write_bytes(good)  # the bundle itself, not the stick holding it
    elif source == "a character device":
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    assert refused(path).reason is BundleRefusal.UNREADABLE


def test_a_stick_of_many_bundles_is_refused_holding_only_the_names_it_shows(stick_dir):
    for number in range(2_000):  # a stick can hold millions
        os.close(os.open(stick_dir / f"{number:05d}.cbundle", os.O_CREAT | os.O_WRONLY))
    tracemalloc.start()
    try:
        error = refused(stick_dir)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error.reason is BundleRefusal.SEVERAL_BUNDLES
    assert error.detail == ", ".join(f"'{number:05d}.cbundle'" for number in range(5)) + " and 1995 more"
    assert peak < 32 * 1024, f"{peak} bytes held while listing the stick"  # every name: 150 KB
