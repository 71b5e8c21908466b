"""Opening, creating, listing and removing card files without trusting the card (storage/card_files.py).

The whole box meets these in tests/system/test_hostile_card.py; here each rule on its own: what is
foreign, that nothing foreign is ever opened (a FIFO would block), that a taken temporary name is
unlinked and never followed, and that a listing keeps a bounded number of names however many there are.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from consentbox.core.errors import ConsentBoxError
from consentbox.storage import portable
from consentbox.storage.card_files import (
    ForeignEntry,
    create_file,
    listed_names,
    open_directory,
    open_file,
    open_for_reading,
    remove_file,
    sort_out,
)

SECRET = b"the box's own file, outside the card\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "device.key"
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def card(tmp_path: Path) -> Path:
    path = tmp_path / "card"
    path.mkdir()
    return path


@pytest.fixture
def directory(card: Path):
    fd = open_directory(card)
    yield fd
    os.close(fd)


def _plant(card: Path, kind: str, outside: Path) -> str:
    """An entry of `kind` named `x` in the card; its name."""
    path = card / "x"
    if kind == "symbolic link":
        path.symlink_to(outside)
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "hard link":
        os.link(outside, path)
    elif kind == "huge file":
        path.write_bytes(b"x")
        os.truncate(path, 1 << 40)
    else:
        raise AssertionError(kind)
    return path.name


FOREIGN = ("symbolic link", "FIFO", "directory", "hard link", "huge file")


def _within(seconds: float, call):
    """The result of `call()`, which must return (or raise) within `seconds`: a blocked open is a failure."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # handed to the test's thread
            outcome.append(error)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "it blocked"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


@pytest.mark.parametrize("kind", FOREIGN)
@pytest.mark.parametrize("flags", [os.O_RDONLY, os.O_WRONLY])
def test_anything_but_a_file_the_box_wrote_is_foreign_and_never_opened(card, directory, outside, kind, flags):
    name = _plant(card, kind, outside)
    before = os.lstat(card / name)
    with pytest.raises(ForeignEntry) as error:
        _within(10, lambda: open_file(directory, name, flags, max_bytes=1 << 30))
    assert isinstance(error.value, ConsentBoxError) and isinstance(error.value, OSError)
    assert "\n" not in str(error.value) and "remove it from the card" in str(error.value)
    assert outside.read_bytes() == SECRET
    assert os.lstat(card / name) == before, "a foreign entry was changed"


def test_a_file_the_box_may_not_open_is_foreign(card, directory, monkeypatch):
    (card / "x").write_bytes(b"locked")

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(ForeignEntry, match="a file the box may not open"):
        open_file(directory, "x")


@pytest.mark.parametrize("kind", ["symbolic link", "hard link"])
def test_a_file_swapped_between_the_look_and_the_open_is_refused(card, directory, outside, monkeypatch, kind):
    (card / "x").write_bytes(b"looked at")
    real_open = os.open

    def swapped(name, flags, *args, dir_fd=None, **kwargs):
        os.unlink(name, dir_fd=dir_fd)
        _plant(card, kind, outside)
        return real_open(name, flags, *args, dir_fd=dir_fd, **kwargs)
    monkeypatch.setattr(os, "open", swapped)
    with pytest.raises(ForeignEntry, match="no longer the file it was"):
        open_file(directory, "x", os.O_WRONLY)
    assert outside.read_bytes() == SECRET


def test_a_file_the_box_wrote_opens(card, directory):
    (card / "x").write_bytes(b"the box's")
    fd = open_file(directory, "x", max_bytes=9)
    try:
        assert os.read(fd, 100) == b"the box's"
    finally:
        os.close(fd)
    with pytest.raises(FileNotFoundError):
        open_file(directory, "gone")


@pytest.mark.parametrize("kind", ["symbolic link", "FIFO", "hard link", "huge file"])
def test_a_taken_temporary_name_is_unlinked_never_followed(card, directory, outside, kind):
    name = _plant(card, kind, outside)
    fd = _within(10, lambda: create_file(directory, name, 0o600, replace=True))
    try:
        os.write(fd, b"new")
    finally:
        os.close(fd)
    assert (card / name).read_bytes() == b"new" and os.lstat(card / name).st_nlink == 1
    assert outside.read_bytes() == SECRET and os.stat(outside).st_nlink == 1


def test_a_directory_at_a_temporary_name_is_foreign(card, directory):
    (card / "x").mkdir()
    with pytest.raises(ForeignEntry, match="'x' on the card is a directory"):
        create_file(directory, "x", 0o600, replace=True)
    assert (card / "x").is_dir()


@pytest.mark.parametrize("kind", FOREIGN)
def test_a_new_file_never_takes_a_name_that_is_taken(card, directory, outside, kind):
    name = _plant(card, kind, outside)
    with pytest.raises(ForeignEntry):
        create_file(directory, name, 0o600)
    assert outside.read_bytes() == SECRET


@pytest.mark.parametrize("kind", FOREIGN)
def test_only_the_box_s_files_are_removed(card, directory, outside, kind):
    name = _plant(card, kind, outside)
    (card / "mine").write_bytes(b"the box's")
    with pytest.raises(ForeignEntry):
        remove_file(directory, name, max_bytes=1 << 30)
    assert os.path.lexists(card / name)
    assert remove_file(directory, "mine") and not remove_file(directory, "mine")


def test_sort_out_tells_the_box_s_files_from_the_rest(card, directory, outside):
    (card / "mine").write_bytes(b"the box's")
    name = _plant(card, "FIFO", outside)
    files, left = sort_out(directory, ["mine", name, "gone"])
    assert files == ["mine"] and [(error.name, error.what) for error in left] == [(name, "a FIFO")]
    assert stat.S_ISFIFO(os.lstat(card / name).st_mode)


def test_a_listing_keeps_at_most_its_limit_however_many_names_the_card_holds(card, directory):
    for number in range(2000):
        (card / f"{number:04}.x").touch()
    (card / "wanted").touch()
    assert len(listed_names(directory, lambda name: True, limit=100)) == 100
    assert listed_names(directory, lambda name: name == "wanted", limit=100) == ["wanted"]
    assert sorted(listed_names(card, lambda name: name.startswith("000"))) == [f"{n:04}.x" for n in range(10)]


@pytest.fixture(params=["posix", "windows"])
def workstation(request, monkeypatch) -> str:
    """The workstation's OS: this one, or one with no directory descriptors nor O_NOFOLLOW, as Windows."""
    if request.param == "windows":
        monkeypatch.setattr(portable, "DIRECTORY_DESCRIPTORS", False)
        monkeypatch.setattr(portable, "NOFOLLOW", 0)
    return request.param


def test_the_workstation_opens_a_card_file_only_if_it_is_a_regular_file_and_never_through_a_link(
        tmp_path, workstation):
    card, elsewhere = tmp_path / "card", tmp_path / "elsewhere"
    card.mkdir()
    elsewhere.write_bytes(b"not the card's")
    (card / "real.age").write_bytes(b"age\r\n\x1a and after")
    (card / "link.age").symlink_to(elsewhere)
    os.mkfifo(card / "fifo.age")  # opening it for reading would block a naive reader for ever
    (card / "dir.age").mkdir()
    os.link(elsewhere, card / "hard.age")

    with open_for_reading(card / "real.age") as src:
        assert src.read() == b"age\r\n\x1a and after"
    for name, words in (("link.age", "a symbolic link"), ("fifo.age", "a FIFO"), ("dir.age", "a directory"),
                        ("hard.age", "a hard link")):
        with pytest.raises(ForeignEntry, match=words):
            open_for_reading(card / name)
    with pytest.raises(ForeignEntry, match="larger than any"):
        open_for_reading(card / "real.age", max_bytes=2)
    assert elsewhere.read_bytes() == b"not the card's"


def test_without_directory_descriptors_a_file_swapped_after_the_look_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(portable, "DIRECTORY_DESCRIPTORS", False)
    monkeypatch.setattr(portable, "NOFOLLOW", 0)
    path = tmp_path / "real.age"
    path.write_bytes(b"age")
    real_open = os.open

    def swapped(target, flags, *args, **kwargs):
        os.replace(tmp_path / "planted", target)  # another regular file, with one name, put there after the look
        return real_open(target, flags, *args, **kwargs)
    (tmp_path / "planted").write_bytes(b"planted")
    monkeypatch.setattr(os, "open", swapped)
    with pytest.raises(ForeignEntry, match="no longer the file it was a moment before"):
        open_for_reading(path)
