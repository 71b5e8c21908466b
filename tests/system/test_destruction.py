"""Destruction always accounted for, on the whole box (issue 15, item 5).

The box records with `consentbox simulate --state` on a card directory, `consentbox provision` installs
bundles from a stick, `consentbox wipe` runs as systemd runs it (hourly, and each time a card is
mounted), and a supervisor runs `consentbox-admin destroy` on the card at a workstation. Then, as an
auditor reads the box's ledger (after `consentbox-admin verify-ledger` says it is intact): each session
whose files were made has an `expiry` entry from its set-up and one more for each bundle that shortened
it, and exactly one `destruction` receipt, due on the last expiry recorded, whether the box destroyed
it (withdrawal, retention) or found it gone from its card (`absent`, `off_box`). A session of another
card is never taken for gone.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from consentbox.core.policy import Policy
from consentbox.recording.card_id import CARD_ID_NAME, read_card_id
from consentbox.recording.recorded import destroyed_mark_name, recorded_files, recorded_sessions
from consentbox.retention.index import Expiry, RetentionIndex
from consentbox.testing.signal import write_wav

from .conftest import BIN, SimulatedBox

POLICY = Policy(min_free_mb=1)
INPUT_SECONDS = 6


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, os.urandom(INPUT_SECONDS * POLICY.rate * POLICY.frame_bytes), POLICY)
    return path


@pytest.fixture(scope="module")
def org(tmp_path_factory) -> Path:
    """The organisation's key pair, from `consentbox-admin init-org`."""
    path = tmp_path_factory.mktemp("org")
    subprocess.run([BIN / "consentbox-admin", "init-org", "--out", path], capture_output=True, check=True)
    return path


def script(*sessions: str) -> str:
    """One session per word, 20 s apart, each recording about 4 s: "kept" ends normally, "withdrawn" is
    withdrawn by seat 2 while recording (destroyed: the default policy)."""
    lines = []
    for number, kind in enumerate(sessions):
        t = 20 * number
        lines += [f"{t} tap record", f"{t + 1} tap consent 1", f"{t + 2} tap consent 2", f"{t + 3} hold record 1.2"]
        lines.append(f"{t + 8} hold record 2.5" if kind == "kept" else f"{t + 6} hold consent 2 2.5")
    return "\n".join(lines) + "\n"


class Box(SimulatedBox):
    """One box on a plain card directory, its configuration as /etc/consentbox/config.toml would be."""

    def __init__(self, root: Path, microphone: Path, supervisor: tuple[Path, str], org: Path) -> None:
        super().__init__(root, supervisor[1], key_file=supervisor[0], microphone=microphone)
        self.org = org
        self.sticks = 0
        self.configure(f'[policy]\nmin_free_mb = 1\nmax_session = 60\n[card]\npath = "{self.card}"\n'
                       f'require_mount = false\n[box]\nstate_dir = "{self.state}"\n'
                       f'[keys]\norg_key = "{org / "org.pub"}"\n')

    def record(self, *sessions: str) -> list[str]:
        """Record the sessions (see `script`); their ids."""
        ended = self.simulate(script(*sessions)).of("session")
        assert [e["kept"] for e in ended] == [kind == "kept" for kind in sessions], ended
        return [e["id"] for e in ended]

    def wipe(self) -> list[str]:
        """`consentbox wipe --config …`, as systemd runs it: the lines it printed, without their prefix."""
        done = subprocess.run([BIN / "consentbox", "wipe", "--config", self.config], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and not done.stderr, done.stderr
        prefix = "consentbox: wipe: "
        return [line.removeprefix(prefix) for line in done.stdout.splitlines()]

    def provision(self, version: int, retention_days: int, *options: str) -> None:
        """A bundle with `retention_days` (and `options` for `consentbox-admin bundle`), installed from a stick."""
        self.sticks += 1
        stick, policy = self.root / f"stick{self.sticks}", self.root / "policy.toml"
        stick.mkdir()
        policy.write_text(f"[policy]\nretention_days = {retention_days}\nmin_free_mb = 1\nmax_session = 60\n")
        subprocess.run([BIN / "consentbox-admin", "bundle", "--org-key", self.org / "org.key", "--recipient",
                        self.recipient, "--policy", policy, "--version", str(version), "--single-recipient", *options,
                        "--out", stick],
                       capture_output=True, check=True)
        done = subprocess.run([BIN / "consentbox", "provision", "--config", self.config, stick],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def ledger(self) -> list[dict[str, Any]]:
        """The box's ledger, after `consentbox-admin verify-ledger` says it is intact."""
        path = self.state / "ledger.jsonl"
        done = subprocess.run([BIN / "consentbox-admin", "verify-ledger", path], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return [json.loads(line) for line in path.read_bytes().splitlines()]

    def of(self, kind: str) -> dict[str, list[dict[str, Any]]]:
        """For each session, the fields of its entries of `kind`, in order."""
        found: dict[str, list[dict[str, Any]]] = {}
        for entry in self.ledger():
            if entry["kind"] == kind:
                found.setdefault(entry["session"], []).append(entry["fields"])
        return found

    def index(self) -> dict[str, Expiry]:
        return RetentionIndex(self.state).entries()


@pytest.fixture
def box(tmp_path, microphone, supervisor, org) -> Box:
    return Box(tmp_path / "box", microphone, supervisor, org)


def on(expiry: Expiry) -> str:
    return expiry.due.isoformat()


def start_date(expiry: Expiry) -> str:
    """The date, in the box's time zone, on which a session started (its expiry under existing_days 0)."""
    return date.fromtimestamp(expiry.started).isoformat()


def test_every_expiry_set_or_shortened_is_in_the_ledger_and_every_receipt_is_due_on_the_last(box: Box):
    first, withdrawn, second = box.record("kept", "withdrawn", "kept")

    card = read_card_id(box.card)
    assert card is not None, f"the box gave its card no id ({CARD_ID_NAME})"
    index = box.index()
    assert set(index) == {first, second} and {e.card for e in index.values()} == {card}
    recorded = box.of("expiry")
    assert recorded[first] == [{"expires": on(index[first]), "reason": "recorded"}]
    assert recorded[second] == [{"expires": on(index[second]), "reason": "recorded"}]
    [set_at_start] = recorded[withdrawn]
    assert set_at_start["reason"] == "recorded"
    assert box.of("destruction") == {
        withdrawn: [{"cause": "withdrawn", "files": 2, "due": set_at_start["expires"]}]}

    # A bundle keeps new recordings 30 days and those already made not at all: both expire now.
    box.provision(1, 30, "--existing-days", "0")
    recorded = box.of("expiry")
    assert recorded[first][1:] == [{"expires": start_date(index[first]), "reason": "bundle"}]
    assert recorded[second][1:] == [{"expires": start_date(index[second]), "reason": "bundle"}]
    entries = box.ledger()
    expiries = [n for n, e in enumerate(entries) if e["kind"] == "expiry" and e["fields"]["reason"] == "bundle"]
    assert entries[max(expiries) + 1]["kind"] == "provisioning", "the moves are recorded with the bundle's entry"

    # Both expire in the same second: the wipe takes them in the order of their (random) ids.
    assert sorted(box.wipe()[:2]) == sorted([f"destroyed session {first} (2 files)",
                                            f"destroyed session {second} (2 files)"])
    receipts = box.of("destruction")
    for session in (first, second):
        assert receipts[session] == [{"cause": "retention", "files": 2, "due": recorded[session][-1]["expires"]}]
    assert all("due" in fields for fields in sum(receipts.values(), [])), "a receipt without its due date"
    assert box.index() == {} and recorded_sessions(box.card) == set(), "a recording is left on the card"


def test_sessions_gone_from_their_card_are_receipted_once_when_it_is_back_and_never_from_another_card(
        box: Box, tmp_path):
    by_hand, off_box, kept = box.record("kept", "kept", "kept")
    for path in recorded_files(box.card, by_hand):
        path.unlink()  # deleted by hand at a workstation
    names = set(box.card_files()) - {path.name for path in recorded_files(box.card, off_box)}
    kept_files = box.card_files(kept)
    done = subprocess.run([BIN / "consentbox-admin", "destroy", "--session", off_box, box.card],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 2, done.stdout + done.stderr
    assert (box.card / destroyed_mark_name(off_box)).read_bytes() == b""

    # Another card in the slot: the box starts with it (and gives it an id); its wipes take nothing for gone.
    first_card = tmp_path / "first-card-in-the-drawer"
    box.card.rename(first_card)
    box.card.mkdir()
    box.simulate("1 end\n")
    assert read_card_id(box.card) not in (None, read_card_id(first_card))
    for _ in range(2):
        assert box.wipe() == ["nothing has expired"]
    assert box.of("destruction") == {} and set(box.index()) == {by_hand, off_box, kept}

    # The first card back: one receipt each, the mark removed, everything else on the card as it was.
    box.card.rename(tmp_path / "second-card")
    first_card.rename(box.card)
    assert sorted(box.wipe()) == sorted([
        f"session {by_hand} is gone from this card (its files were removed without the box): recorded as absent",
        f"session {off_box} is gone from this card (destroyed with consentbox-admin destroy): recorded as off_box"])
    receipts = box.of("destruction")
    assert set(receipts) == {by_hand, off_box}
    assert receipts[by_hand] == [{"cause": "absent", "files": 0, "due": box.of("expiry")[by_hand][-1]["expires"]}]
    assert receipts[off_box] == [{"cause": "off_box", "files": 0, "due": box.of("expiry")[off_box][-1]["expires"]}]
    assert set(box.index()) == {kept}
    assert set(box.card_files()) == names and box.card_files(kept) == kept_files

    entries = len(box.ledger())
    assert box.wipe() == ["nothing has expired"]
    assert len(box.ledger()) == entries, "the next run said it again"
