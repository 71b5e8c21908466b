"""The card's identity (issue 15, item 5): written once on a card that has none, read back strictly.

The wipe trusts the id to say "this is the card the session was recorded on", so what it reads must be
exactly an id the box wrote: no link followed, no FIFO waited on, no large file read.
"""

from __future__ import annotations

import os
import stat
import threading

import pytest

from consentbox.core.errors import ConsentBoxError
from consentbox.recording.card_id import CARD_ID_NAME, CardIdError, card_identity, is_card_id, read_card_id
from consentbox.storage.file_times import FIXED_TIME


def test_a_card_without_an_id_gets_one_and_keeps_it(tmp_path):
    assert read_card_id(tmp_path) is None
    made = card_identity(tmp_path, random_bytes=lambda n: bytes(range(1, n + 1)))
    assert made == "0102030405060708" and is_card_id(made)
    assert (tmp_path / CARD_ID_NAME).read_bytes() == b"0102030405060708\n"
    assert card_identity(tmp_path) == made == read_card_id(tmp_path), "a second id for the same card"
    assert sorted(os.listdir(tmp_path)) == [CARD_ID_NAME], "a temporary file was left"


def test_the_id_s_file_tells_nothing_of_when_it_was_written(tmp_path):
    card_identity(tmp_path)
    info = (tmp_path / CARD_ID_NAME).stat()
    assert info.st_mtime == info.st_atime == FIXED_TIME.timestamp()
    assert stat.S_IMODE(info.st_mode) == 0o644


def test_two_cards_get_different_ids(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert card_identity(tmp_path / "a") != card_identity(tmp_path / "b")


@pytest.mark.parametrize("content", [b"", b"0102030405060708", b"0102030405060708\n\n", b"01020304050607089\n",
                                     b"0102030405O60708\n", b"0102030405060708\n" + b"x" * 1_000_000,
                                     b"ABCDEF0102030405\n"])
def test_a_file_that_is_not_exactly_an_id_is_refused_and_left_alone(tmp_path, content):
    (tmp_path / CARD_ID_NAME).write_bytes(content)
    with pytest.raises(CardIdError, match=f"is not 16 hex digits and a newline: remove {tmp_path / CARD_ID_NAME}"):
        card_identity(tmp_path)
    assert (tmp_path / CARD_ID_NAME).read_bytes() == content, "a bad id was overwritten"


def test_a_symbolic_link_is_refused_and_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"0102030405060708\n")
    card = tmp_path / "card"
    card.mkdir()
    (card / CARD_ID_NAME).symlink_to(elsewhere)
    with pytest.raises(CardIdError, match="is a symbolic link") as error:
        read_card_id(card)
    assert isinstance(error.value, ConsentBoxError) and "\n" not in str(error.value)


def test_a_fifo_or_a_directory_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / CARD_ID_NAME)
    outcome: list[BaseException] = []
    reader = threading.Thread(target=lambda: outcome.append(_error(lambda: read_card_id(tmp_path))), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO hung"
    assert isinstance(outcome[0], CardIdError) and "not a regular file" in str(outcome[0])

    os.unlink(tmp_path / CARD_ID_NAME)
    (tmp_path / CARD_ID_NAME).mkdir()
    with pytest.raises(CardIdError, match="not a regular file"):
        read_card_id(tmp_path)


def _error(call) -> BaseException | None:
    try:
        call()
    except BaseException as error:  # handed to the test's thread to check
        return error
    return None
