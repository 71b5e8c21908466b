"""`consentbox wipe` (jobs/wipe.py) and a card of the wrong format: it stops before touching anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from consentbox.box.config import load_config
from consentbox.jobs.wipe import wipe_card
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
