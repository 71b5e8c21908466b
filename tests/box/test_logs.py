"""The box's log: structured journald records under systemd, JSON lines on stderr elsewhere (issue 9, item 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from consentbox.box.logs import JournalReport, choose_report, journal_fields, stderr_report
from consentbox.box.timeline import command_entry, provisioning_entry
from consentbox.core.commands import ShowStatus
from consentbox.core.feedback import status_pattern
from consentbox.core.provisioning import BundleRefusal
from consentbox.core.reasons import Problem
from consentbox.core.table import State
from consentbox.provisioning.installed import Result
from tests.support.simulated import play

FAULT = {"t": 12.5, "event": "fault", "problem": "card full", "detail": "No space left on device"}
SESSION_END = {"t": 40.0, "event": "session", "id": "0123456789abcdef", "end": "ended", "kept": True}
NOT_READY = {"t": 0.0, "event": "status", "colour": "red", "rhythm": "code", "count": 1}
REFUSED_STICK = {"t": 3.0, "event": "provisioning", "installed": False, "code": 3, "detail": "…"}


def test_each_entry_becomes_a_record_with_the_documented_fields():
    assert journal_fields(FAULT) == {"MESSAGE": json.dumps(FAULT, separators=(",", ":")),
                                     "CONSENTBOX_EVENT": "fault", "PRIORITY": "4", "STATUS_CODE": "3"}
    assert journal_fields(SESSION_END)["SESSION_ID"] == "0123456789abcdef"
    assert journal_fields(SESSION_END)["PRIORITY"] == "6"
    assert journal_fields(NOT_READY)["STATUS_CODE"] == "1" and journal_fields(NOT_READY)["PRIORITY"] == "7"
    assert journal_fields(REFUSED_STICK)["PROVISIONING_CODE"] == "3"
    assert "SESSION_ID" not in journal_fields(FAULT) and "STATUS_CODE" not in journal_fields(SESSION_END)


@pytest.mark.parametrize(("event", "priority"), [
    # Every LED change (the seat LEDs' too) and tone: kept, below the default view.
    ("led", 7), ("status", 7), ("seats", 7), ("flash", 7), ("tone", 7),
    ("fault", 4), ("clock", 4), ("refused", 4),
    ("ledger", 3), ("journal", 3),
    ("session", 6), ("setup", 6), ("consent", 6), ("file", 6),
])
def test_each_event_has_the_documented_priority(event: str, priority: int):
    # docs/cli.md: LED and tone changes debug; faults, clock corrections and refusals warning; ledger and
    # journal failures error; the rest info.
    assert journal_fields({"t": 1.0, "event": event})["PRIORITY"] == str(priority)


def test_blink_codes_and_provisioning_codes_have_a_field_each():
    # Two numberings: provisioning code 3 (version not newer) is not blink code 3 (card full). Each from the
    # code that makes the entry: every red code the STATUS LED can show, and every refusal of a stick.
    for problem in Problem:
        shown = command_entry(0.0, ShowStatus(status_pattern(State.IDLE, frozenset({problem}), 0)), "")
        assert journal_fields(shown)["STATUS_CODE"] == str(problem.code)
        assert "PROVISIONING_CODE" not in journal_fields(shown)
    for refusal in BundleRefusal:
        refused = provisioning_entry(3.0, Result(refusal, refusal.text, None))
        assert journal_fields(refused)["PROVISIONING_CODE"] == str(refusal.code)
        assert "STATUS_CODE" not in journal_fields(refused)
    installed = journal_fields(provisioning_entry(3.0, Result(None, "installed bundle version 2", 2)))
    assert "STATUS_CODE" not in installed and "PROVISIONING_CODE" not in installed


def test_systemd_s_journal_stream_chooses_journald_and_its_absence_stderr(monkeypatch):
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    assert isinstance(choose_report(), JournalReport)
    monkeypatch.delenv("JOURNAL_STREAM")
    assert choose_report() is stderr_report


def test_stderr_gets_one_json_line_an_entry(capsys):
    stderr_report(FAULT)
    assert capsys.readouterr().err == json.dumps(FAULT, separators=(",", ":")) + "\n"


# The real systemd.journal.send, into a journald socket of our own: a private mount namespace (unshare,
# as root) with a tmpfs over /run/systemd, so the machine's own journal (if any) is never touched.
_JOURNALD = textwrap.dedent("""
    import json, os, socket, sys
    os.makedirs("/run/systemd/journal", exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("/run/systemd/journal/socket")
    server.settimeout(10)
    from consentbox.box.logs import JournalReport
    JournalReport()(json.loads(sys.argv[1]))
    record = server.recv(65536).decode()
    print(json.dumps(dict(line.split("=", 1) for line in record.splitlines() if "=" in line)))
""")


def test_records_reach_journald_through_systemd_python_with_their_fields():
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           'mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd && exec "$@"', "sh",
                           sys.executable, "-c", _JOURNALD, json.dumps(FAULT)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["CONSENTBOX_EVENT"] == "fault" and record["STATUS_CODE"] == "3" and record["PRIORITY"] == "4"
    assert json.loads(record["MESSAGE"]) == FAULT


def test_every_record_of_a_session_carries_its_session_id_and_no_other_does(tmp_path):
    # A set-up withdrawn from, then a session recorded, paused, resumed and cut by a fault: IT selects one
    # session's whole story with journalctl SESSION_ID=…, its consents, captures, files and faults included,
    # though only its `setup` and `session` entries name it.
    script = ("0 tap record\n1 tap consent 1\n1.5 tap consent 2\n2 hold consent 1 2.5\n"
              "10 tap record\n11 tap consent 1\n12 tap consent 2\n13 hold record 1.2\n18 tap record\n"
              "19 tap record\n22 audio lost\n30 end\n")
    journal = JournalReport()
    records: list[tuple[dict[str, Any], dict[str, str]]] = []
    play(tmp_path, script, lambda entry: records.append((entry, journal.fields(entry))))
    withdrawn, recorded = [entry["id"] for entry, _ in records if entry["event"] == "setup"]
    story = {session: [entry["event"] for entry, fields in records if fields.get("SESSION_ID") == session]
             for session in (withdrawn, recorded)}
    assert story[withdrawn][0] == "setup" and story[withdrawn][-1] == "session"
    assert {"consent", "withdrawal"} <= set(story[withdrawn])
    assert story[recorded][0] == "setup" and story[recorded][-1] == "session"
    assert {"consent", "led", "file", "capture", "fault"} <= set(story[recorded])
    assert story[recorded].count("capture") == 4 and story[recorded].count("consent") == 2
    outside = [entry for entry, fields in records if "SESSION_ID" not in fields]
    assert outside and {entry["event"] for entry in outside} <= {"settings", "state", "selftest", "status", "seats",
                                                                 "tone"}
    assert all(entry["state"] in ("IDLE", "WITHDRAWN") for entry in outside if entry["event"] == "state")
