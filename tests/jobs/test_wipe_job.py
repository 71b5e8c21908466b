"""`consentbox wipe` (jobs/wipe.py): a card of the wrong format, and a damaged expiry index: it stops before
touching anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from consentbox.box.config import load_config
from consentbox.cli.consentbox import main
from consentbox.jobs.wipe import wipe_card
from consentbox.state.files import RETENTION_INDEX
from tests.support.cards import ext4_card


def test_the_wipe_leaves_a_card_of_the_wrong_format_alone(tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = tmp_path / "config.toml"
    try:
        with ext4_card(tmp_path / "card", 8 << 20) as card:
            # The card must be a mount, of exFAT or FAT32, as deployed; the test card is ext4.
            config.write_text(f'[card]\npath = "{card}"\n[box]\nstate_dir = "{state}"\n')
            assert wipe_card(load_config(config), wait=False).stopped == f"card wrong format at {card}"
            assert os.listdir(card) == ["lost+found"] and os.listdir(state) == []
            # The same card, once the box takes ext4: the run goes on (opening the box's ledger).
            config.write_text(f'[card]\npath = "{card}"\nfile_systems = ["ext4"]\n[box]\nstate_dir = "{state}"\n')
            assert wipe_card(load_config(config), wait=False).stopped == ""
            assert os.listdir(state) != []
    except OSError as error:
        pytest.fail(str(error))


def test_the_command_exits_1_with_one_line_when_the_index_is_damaged(tmp_path: Path, capsys):
    state, card = tmp_path / "state", tmp_path / "card"
    state.mkdir(mode=0o700)
    card.mkdir()
    (card / "a0000000000000aa.000.wav.age").write_bytes(b"a recording")
    (state / RETENTION_INDEX).write_bytes(b'{"format": 1, "sessions": {"a0')
    config = tmp_path / "config.toml"
    config.write_text(f'[card]\npath = "{card}"\nrequire_mount = false\n[box]\nstate_dir = "{state}"\n')

    assert main(["wipe", "--config", str(config)]) == 1
    said = capsys.readouterr()
    assert said.out == "" and said.err.count("\n") == 1
    assert said.err.startswith(f"consentbox: the expiry index {state / RETENTION_INDEX} is damaged")
    assert os.listdir(card) == ["a0000000000000aa.000.wav.age"]

    (state / RETENTION_INDEX).unlink()  # an empty index: the same command touches nothing, says so, exits 0
    assert main(["wipe", "--config", str(config)]) == 0
    assert capsys.readouterr().out == ("consentbox: wipe: 1 session(s) on the card are not in this box's index: "
                                       "not touched\n")
