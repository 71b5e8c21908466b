"""The box's log: structured journald records under systemd, JSON lines on stderr elsewhere (issue 9, item 2)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap

from consentbox.box.logs import choose_report, journal_fields, journal_report, stderr_report
from consentbox.box.timeline import command_entry, provisioning_entry
from consentbox.core.commands import ShowStatus
from consentbox.core.feedback import status_pattern
from consentbox.core.provisioning import BundleRefusal
from consentbox.core.reasons import Problem
from consentbox.core.table import State
from consentbox.provisioning.installed import Result

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
    assert choose_report() is journal_report
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
    from consentbox.box.logs import journal_report
    journal_report(json.loads(sys.argv[1]))
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


def test_a_whole_session_logs_nothing_of_its_audio_or_any_key(tmp_path):
    # The demo session (consents, recording, pause, withdrawal) with the audio and every key known:
    # none of them, in any encoding, is in any record the box would send to the journal.
    from consentbox.box.config import load_config
    from consentbox.core.policy import Policy
    from consentbox.crypto import X25519Identity
    from consentbox.sim.demo import DEMO_SCRIPT
    from consentbox.sim.script import parse_script
    from consentbox.sim.simulate import simulate, simulated_config
    from consentbox.testing.signal import position_pcm, write_wav

    identity = X25519Identity.generate()
    pcm = position_pcm(0, 30 * Policy().rate, Policy())
    write_wav(tmp_path / "input.wav", pcm, Policy())
    (tmp_path / "card").mkdir()
    config = simulated_config(load_config(None), card=tmp_path / "card", recipients=[identity.recipient],
                              seats=3, shared_consent=False, state_dir=tmp_path / "state")
    records: list[dict[str, str]] = []
    simulate(config, parse_script(DEMO_SCRIPT.read_text()), audio=tmp_path / "input.wav", realtime=False,
             report=lambda entry: records.append(journal_fields(entry)))
    text = "\n".join(value for record in records for value in record.values())
    assert '"event":"file"' in text and '"event":"capture"' in text  # a real session was logged
    device_key = (tmp_path / "state" / "device.key").read_text()
    secrets = [identity.to_string(), device_key.splitlines()[1], "PRIVATE KEY", "AGE-SECRET-KEY"]
    assert not any(secret in text for secret in secrets)
    samples = [pcm[start:start + 32] for start in range(0, len(pcm), 48_000)]
    assert not any(sample.hex() in text or base64.b64encode(sample).decode() in text for sample in samples)
    assert max(len(value) for record in records for value in record.values()) < 400
