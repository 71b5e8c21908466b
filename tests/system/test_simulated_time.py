"""Rehearsing time in a simulation (`consentbox simulate --start-at`, `advance` steps; docs/cli.md): the shipped
retention scenario's session is destroyed by the first wipe after it expires, with the receipts the box's
ledger, the card's extract and an audit show; the wipe runs as its timer would, never during a session; a
withdrawal window closes as the clock moves on."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentbox.admin.extracts import load_extract
from consentbox.core.policy import Policy
from consentbox.crypto import parse_identity_file
from consentbox.recording.manifest import extract_name
from consentbox.testing.signal import position_pcm, write_wav

from .conftest import BIN, SimulatedBox

SCENARIOS = Path(__file__).parents[2] / "firmware/consentbox/sim/scenarios"
RECORDED = "0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.2\n20 hold record 2.5\n"  # ends at 22


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, position_pcm(0, 30 * Policy().rate, Policy()), Policy())
    return path


@pytest.fixture
def box(tmp_path, supervisor, microphone) -> SimulatedBox:
    return SimulatedBox(tmp_path, supervisor[1], key_file=supervisor[0], microphone=microphone)


def box_ledger(box: SimulatedBox) -> list[dict]:
    """The box's own ledger, after `consentbox-admin verify-ledger` says it is intact."""
    path = box.state / "ledger.jsonl"
    verified = subprocess.run([BIN / "consentbox-admin", "verify-ledger", path], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_retention_scenario_destroys_its_session_at_the_first_wipe_after_it_expires(box, supervisor):
    # A month in seconds: the command must finish well within half a minute (it takes about three).
    timeline = box.simulate((SCENARIOS / "retention.txt").read_text(), "--start-at", "2027-03-01T09:00", timeout=30)
    [session] = [e["id"] for e in timeline.of("session", end="ended", kept=True)]
    # Recorded at 09:00:04 on 1 March, so it expires at 09:00:04 on 31 March; the timer fires on the hour.
    assert [(e["from"], e["to"]) for e in timeline.of("advance")] == [
        ("2027-03-01T09:00:30Z", "2027-03-30T09:00:30Z"), ("2027-03-30T09:00:31Z", "2027-04-01T09:00:31Z")]
    assert [(e["wall"], e["lines"]) for e in timeline.of("wipe")] == [
        ("2027-03-01T10:00:00Z", ["nothing has expired"]),
        ("2027-03-30T10:00:00Z", ["nothing has expired"]),
        ("2027-03-31T10:00:00Z", [f"destroyed session {session} (2 files)",
                                  "no discard: the card directory is not a mount point"]),
    ]
    assert box.card_files() == {}, "its recording is gone from the card"

    entries = box_ledger(box)
    [receipt] = [e for e in entries if e["kind"] == "destruction"]
    assert receipt["session"] == session
    assert receipt["fields"] == {"cause": "retention", "due": "2027-03-31", "files": 2}
    assert datetime.fromisoformat(receipt["wall"]) == datetime(2027, 3, 31, 10, tzinfo=UTC)
    kinds = [e["kind"] for e in entries]
    assert kinds[kinds.index("destruction") + 1] == "wipe"
    [setup] = [e for e in entries if e["kind"] == "setup"]
    set_up = datetime.fromisoformat(setup["wall"])  # at 0.1 s: the box's dates are the simulated ones
    assert datetime(2027, 3, 1, 9, tzinfo=UTC) <= set_up < datetime(2027, 3, 1, 9, 0, 1, tzinfo=UTC)

    # The card keeps the session's record, which now ends with the receipt.
    identities = parse_identity_file(supervisor[0].read_text(), str(supervisor[0]))
    extract = load_extract(box.card / extract_name(session), identities)
    assert json.loads(extract.entries[-1].line)["kind"] == "destruction"

    # The audit a compliance reviewer runs over the card says it was destroyed when due.
    audit = subprocess.run([BIN / "consentbox-admin", "audit", "-i", supervisor[0], "--boxes", box.trusted_boxes(),
                            box.card], capture_output=True, text=True)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "destroyed 2027-03-31 (retention, due 2027-03-31)" in audit.stdout
    assert "consent complete and evidence intact" in audit.stdout


def test_the_wipe_does_not_run_during_a_session_and_runs_at_the_next_hour_once_it_has_ended(box):
    # Paused at 09:59:10; the timer fires at 10:00 and the session is open; the pause timeout ends it at
    # 10:29:10 and the 11:00 run goes ahead.
    timeline = box.simulate("0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.2\n10 tap record\n"
                            "20 advance 2h\n", "--start-at", "2027-03-01T09:59:00")
    assert [e["end"] for e in timeline.of("session")] == ["pause timeout"]
    assert [e["t"] for e in timeline.of("wipe")] == [60.0, 3660.0], "t counts the advanced time"
    assert [(e["wall"], e["lines"]) for e in timeline.of("wipe")] == [
        ("2027-03-01T10:00:00Z", ["stopped: a session is open; the next run continues"]),
        ("2027-03-01T11:00:00Z", ["nothing has expired"]),
    ]


@pytest.mark.parametrize(("later", "withdrawn"), [("10m", True), ("20m", False)])
def test_the_withdrawal_window_closes_as_the_clock_moves_on(box, later, withdrawn):
    # withdraw_window is 15 minutes from the session's end (22 s).
    timeline = box.simulate(RECORDED + f"30 advance {later}\n40 hold consent 2 2.5\n", "--start-at", "2027-03-01")
    [session] = [e["id"] for e in timeline.of("session")]
    assert bool(timeline.of("withdrawal", after=True)) is withdrawn
    assert bool(box.card_files()) is not withdrawn, "the recording is destroyed only by a withdrawal in time"
    receipts = [e for e in box_ledger(box) if e["kind"] == "destruction"]
    assert [(e["session"], e["fields"]["cause"]) for e in receipts] == ([(session, "withdrawn")] if withdrawn else [])
