"""A session's id is drawn when the session is set up, and the files its capture makes later carry it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from consentbox.state.files import LEDGER
from tests.support.simulated import play


def test_the_id_is_drawn_at_set_up_and_the_files_made_at_capture_carry_it(tmp_path: Path):
    # Set up at 0.1 s, capture from 5 s: the ledger's `setup` entry names the id 5 s before any file
    # exists, and every file the session leaves on the card is named by that same id.
    timeline: list[dict[str, Any]] = []
    play(tmp_path, "0 tap record\n1 tap consent 1\n2 tap consent 2\n4 hold record 1.2\n8 hold record 2.5\n",
         timeline.append)
    [setup] = [entry for entry in timeline if entry["event"] == "setup"]
    first_file = next(entry for entry in timeline if entry["event"] == "file")
    assert setup["t"] < 1 < 5 <= first_file["t"]
    ledger = [json.loads(line) for line in (tmp_path / "state" / LEDGER).read_text().splitlines()]
    [entry] = [entry for entry in ledger if entry["kind"] == "setup"]
    assert entry["session"] == setup["id"] and entry["mono"] == setup["t"]
    session_files = sorted(path.name for path in (tmp_path / "card").iterdir() if path.name != "consentbox-card.id")
    assert session_files == [f"{setup['id']}.000.wav.age", f"{setup['id']}.ledger.age",
                             f"{setup['id']}.manifest.age"]
