"""The audit's rules, on ledgers signed with a test key: what a box that broke them would have written.

A real box cannot record before everyone consented or after a withdrawal (tests/core proves that of the
session machine); the audit must still catch a ledger that says so, since it is the reviewer's check
that the box did. The whole command on a card from real box runs is tests/system/test_audit.py.
"""

from __future__ import annotations

import csv
import errno
import io
import os
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from consentbox.admin import cli
from consentbox.admin.audit.csv_table import COLUMNS, render_csv
from consentbox.admin.audit.html_page import render_html
from consentbox.admin.audit.sessions import NOTHING_RECORDED, PASSED, AuditedSession, Concern
from consentbox.admin.audit.sources import Audit, AuditError, Period, audit
from consentbox.admin.audit.text_table import render_text
from consentbox.admin.boxes import GivenDeviceKey, UnknownBoxError
from consentbox.core.reasons import EndReason, Problem
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import Kind
from consentbox.ledger.writer import Ledger
from tests.support.ledgers import EPOCH, POLICY_SHA256, TORN_LINE, SteppingClocks, open_ledger

KEY = DeviceSigningKey.generate(secret=bytes(range(32)))
MADE = EPOCH + timedelta(days=1)
SESSION = "5e5510000000000a"


class Box:
    """The box's ledger at `path`, written as the box would through the real writer, on stepping clocks."""

    def __init__(self, path: Path, epoch: datetime = EPOCH) -> None:
        self.path = path
        self.clocks = SteppingClocks(epoch=epoch)
        self.ledger: Ledger = open_ledger(path, None, KEY, self.clocks)

    def __call__(self, kind: Kind, seconds: float = 1.0, session: str = SESSION, **fields: object) -> None:
        """Let `seconds` pass, then append an entry of `kind` for `session`."""
        self.clocks.advance(seconds)
        self.ledger.append(kind, session, **fields)

    def set_up(self, headcount: int = 2, session: str = SESSION) -> None:
        self(Kind.SETUP, 0.0, session, headcount=headcount, policy_sha256=POLICY_SHA256)
        for seat in range(1, headcount + 1):
            self(Kind.CONSENT, 1.0, session, seat=seat)

    def power_cut(self) -> None:
        """The box stops while writing an entry; it starts again later, cuts the torn entry and records a gap."""
        self.ledger.close(shutdown=False)
        with open(self.path, "ab") as ledger:
            ledger.write(TORN_LINE)
        self.clocks = SteppingClocks(epoch=self.clocks.wall() + timedelta(minutes=5))
        self.ledger = open_ledger(self.path, None, KEY, self.clocks)

    def audited(self, **period: date) -> Audit:
        self.ledger.close(shutdown=True)
        return audit(self.path, [], GivenDeviceKey(KEY.public_key), period=Period(**period), made=MADE)

    def session(self) -> AuditedSession:
        [found] = self.audited().sessions
        return found


@pytest.fixture
def box(tmp_path) -> Box:
    return Box(tmp_path / "ledger.jsonl")


def test_a_session_recorded_as_the_box_should_passes_with_its_timeline(box: Box):
    box.set_up(2)
    box(Kind.START, 2)
    box(Kind.EXPIRY, 0, expires="2026-06-05", reason="recorded")
    box(Kind.PAUSE, 60)
    box(Kind.RESUME, 30)
    box(Kind.FAULT, 5, problem=Problem.AUDIO_LOST)
    box(Kind.END, 10, reason=EndReason.AUDIO_LOST, kept=True)
    session = box.session()
    assert session.intact and session.verdict() == PASSED and session.notes == ()
    assert [(c.seat, c.at.offset) for c in session.consents] == [(1, 1.0), (2, 2.0)]
    assert [(r.start.offset, r.end.offset if r.end else None) for r in session.recordings] == [(4.0, 64.0),
                                                                                              (94.0, 109.0)]
    assert [(p.start.offset, p.end.offset if p.end else None) for p in session.pauses] == [(64.0, 94.0)]
    assert session.recorded_seconds == 75.0
    assert [(f.problem, f.code, f.at.offset) for f in session.faults] == [("audio lost", 8, 99.0)]
    assert session.ending is not None and (session.ending.reason, session.ending.kept) == ("audio lost", True)
    assert session.expires == date(2026, 6, 5) and session.files is None


def test_recording_before_as_many_seats_as_the_headcount_consented_fails(box: Box):
    box(Kind.SETUP, 0, headcount=3, policy_sha256=POLICY_SHA256)
    box(Kind.CONSENT, seat=1)
    box(Kind.CONSENT, seat=3)
    box(Kind.START)
    box(Kind.END, reason=EndReason.ENDED, kept=True)
    session = box.session()
    assert not session.intact and session.concerns(Concern.CONSENT) and not session.concerns(Concern.EVIDENCE)
    assert session.verdict() == ("consent NOT complete, evidence intact: recording began at 3.0 s with 2 of 3 "
                                 "consents (seats consented: 1, 3)")


def test_any_seats_as_many_as_the_headcount_are_complete_consent(box: Box):
    # Two people at seats 1 and 3 of a three-seat panel, as in the shipped demo's second session.
    box(Kind.SETUP, 0, headcount=2, policy_sha256=POLICY_SHA256)
    box(Kind.CONSENT, seat=3)
    box(Kind.CONSENT, seat=1)
    box(Kind.START)
    box(Kind.END, reason=EndReason.ENDED, kept=True)
    session = box.session()
    assert session.intact and not session.concerns(Concern.CONSENT), session.verdict()


def test_a_late_arrival_must_consent_before_recording_resumes(tmp_path):
    for consents_first in (True, False):
        box = Box(tmp_path / f"{consents_first}.jsonl")
        box.set_up(2)
        box(Kind.START)
        box(Kind.PAUSE, 10)
        box(Kind.HEADCOUNT, headcount=3)
        if consents_first:
            box(Kind.CONSENT, seat=3)
        box(Kind.RESUME)
        box(Kind.END, 10, reason=EndReason.ENDED, kept=True)
        session = box.session()
        assert session.intact is consents_first, session.verdict()
        if not consents_first:
            assert [f.text for f in session.findings] == ["recording resumed at 15.0 s with 2 of 3 consents "
                                                          "(seats consented: 1, 2)"]


def test_recording_after_a_withdrawal_fails(box: Box):
    box.set_up(2)
    box(Kind.START)
    box(Kind.PAUSE, 10)
    box(Kind.WITHDRAWAL, seat=2)
    box(Kind.RESUME)
    box(Kind.END, 10, reason=EndReason.WITHDRAWN, kept=True)
    session = box.session()
    assert [f.text for f in session.findings] == ["recording resumed at 15.0 s, after seat 2 withdrew consent at "
                                                  "14.0 s"]
    assert "kept, marked withdrawn" in session.notes[0]


@pytest.mark.parametrize("destroyed", [True, False], ids=["destroyed", "kept"])
def test_a_withdrawal_after_the_end_passes_with_its_own_note(tmp_path, destroyed: bool):
    # Issue 17: within withdraw_window after the end, a party withdraws from the session that ended last.
    box = Box(tmp_path / "ledger.jsonl")
    box.set_up(2)
    box(Kind.START)
    box(Kind.EXPIRY, 0, expires="2026-06-05", reason="recorded")
    box(Kind.END, 10, reason=EndReason.ENDED, kept=True)
    box(Kind.WITHDRAWAL, 60, seat=1)
    if destroyed:
        box(Kind.DESTRUCTION, 0, files=2, cause="withdrawn", due="2026-06-05")
    session = box.session()
    assert session.intact and session.verdict() == PASSED
    assert [(w.seat, w.at.offset) for w in session.withdrawals] == [(1, 73.0)]
    if destroyed:
        assert session.destruction is not None and session.destruction.cause == "withdrawn"
        assert session.destruction.at.offset == 73.0, "the box's own receipt, on its clock"
        assert session.notes == ("consent was withdrawn after the session ended, and the recording destroyed",)
        assert "(withdrawn, due 2026-06-05)" in render_text(box.audited())
    else:
        assert session.destruction is None and session.notes == (
            "consent was withdrawn after the session ended and the recording kept, marked withdrawn "
            "(on_withdrawal = keep)",)


def test_an_entry_lost_to_a_power_cut_while_a_session_was_open_is_a_gap(box: Box):
    box.set_up(2)
    box(Kind.START)
    box.power_cut()
    box(Kind.END, 0, reason=EndReason.INTERRUPTED, kept=True)
    session = box.session()
    [finding] = session.findings
    assert finding.concern is Concern.EVIDENCE and finding.text.startswith("an entry written while the session was "
                                                                           "open was torn by a power cut")
    [recording] = session.recordings
    assert recording.cut_short and recording.end is not None and recording.end.offset == 3.0
    assert session.ending is not None and session.ending.at.offset is None  # written after the restart
    assert "ended it as interrupted" in session.notes[0]


def test_a_session_whose_end_the_ledger_never_got_fails(box: Box):
    box.set_up(2)
    box(Kind.START)
    box(Kind.SEAL, 22, segment=0, bytes=2097848, sha256="ab" * 32, frames=1048554, final=False)
    session = box.session()
    assert [f.text for f in session.findings] == ["the ledger records no end: the box stopped during the session "
                                                  "and has not started since"]
    assert session.recordings[0].cut_short and session.recorded_seconds == 22.0
    assert session.sealed_files == 1


def silence_ended(box: Box, after: float, lasted: float, heard: bool) -> None:
    """Let `after` seconds pass, then the box's `silence_ended` entry (whose field `seconds` Box() would take)."""
    box.clocks.advance(after)
    box.ledger.append(Kind.SILENCE_ENDED, SESSION, seconds=lasted, heard=heard)


def test_each_silence_the_box_alerted_is_a_note_in_every_rendering_and_fails_nothing(box: Box):
    # Issue 17, point 5: while recording, the microphone heard nothing for silence_alert (20 s) and the box
    # alerted (fault 11); sound came back, then later a silence was still going on when the session ended.
    box.set_up(2)
    box(Kind.START, 2)  # at 4.0 s
    box(Kind.FAULT, 26, problem=Problem.MICROPHONE_SILENT)  # silent since 10.0 s
    silence_ended(box, 7, 27.0, heard=True)  # sound came back at 37.0 s
    box(Kind.FAULT, 40, problem=Problem.MICROPHONE_SILENT)  # silent since 57.0 s
    silence_ended(box, 12, 32.0, heard=False)
    box(Kind.END, 0, reason=EndReason.ENDED, kept=True)
    session = box.session()
    assert session.intact and session.verdict() == PASSED, "silence is recorded, not a breach"
    assert [(f.problem, f.code, f.at.offset) for f in session.faults] == [("microphone silent", 11, 30.0),
                                                                           ("microphone silent", 11, 77.0)]
    silences = ["the microphone heard nothing from 10.0 s for 27 s (sound came back)",
                "the microphone heard nothing from 57.0 s for 32 s (still silent when capture closed)"]
    assert [note for note in session.notes if "heard nothing" in note] == silences
    audited = box.audited()
    text, page = render_text(audited), render_html(audited)
    [row] = list(csv.DictReader(io.StringIO(render_csv(audited), newline="")))
    for silence in silences:
        assert f"  note         {silence}\n" in text and silence in page and silence in row["notes"]


def test_a_silence_alert_the_ledger_never_saw_end_says_so(box: Box):
    box.set_up(2)
    box(Kind.START, 2)
    box(Kind.FAULT, 26, problem=Problem.MICROPHONE_SILENT)
    box.power_cut()
    box(Kind.END, 0, reason=EndReason.INTERRUPTED, kept=True)
    assert ("the microphone heard nothing from before 30.0 s (the box's silence alert) to where the ledger stops: "
            "no end of that silence is recorded") in box.session().notes


def test_destruction_is_judged_by_its_cause_and_its_due_date(tmp_path):
    causes = {"retention": ("2026-05-01", True), "off_box": ("2026-06-05", True), "absent": ("2026-06-05", False)}
    for cause, (due, passes) in causes.items():
        box = Box(tmp_path / f"{cause}.jsonl")
        box.set_up(2)
        box(Kind.START)
        box(Kind.END, 10, reason=EndReason.ENDED, kept=True)
        box(Kind.DESTRUCTION, 3600, files=2 if cause == "retention" else 0, cause=cause, due=due)
        session = box.session()
        assert session.intact is passes, (cause, session.verdict())
        assert session.destruction is not None and session.destruction.at.offset is None, "a job's clock"
        late = [note for note in session.notes if "after its due date" in note]
        assert late == (["destroyed 5 days after its due date 2026-05-01"] if cause == "retention" else []), cause


def test_a_recording_past_its_expiry_with_no_receipt_is_overdue(box: Box):
    box.set_up(1)
    box(Kind.START)
    box(Kind.EXPIRY, 0, expires="2026-06-05", reason="recorded")
    box(Kind.EXPIRY, 0, expires="2026-05-06", reason="bundle")
    box(Kind.END, 10, reason=EndReason.ENDED, kept=True)
    session = box.session()
    assert session.intact and session.expires == date(2026, 5, 6)
    assert session.notes == ("OVERDUE: expired on 2026-05-06 and no destruction is recorded",)
    assert [e.at.offset for e in session.expiries] == [2.0, None]


def test_a_recording_whose_expiry_the_box_could_not_record_passes_with_a_note(box: Box):
    box.set_up(2)
    box(Kind.START)
    box(Kind.END, 10, reason=EndReason.ENDED, kept=True)
    session = box.session()
    assert session.intact and session.expires is None
    assert session.notes == ("no expiry is recorded (the box could not write it): its destruction receipt gives "
                             "the date",)


def test_a_set_up_that_recorded_nothing_passes_as_nothing_recorded(box: Box):
    box(Kind.SETUP, 0, headcount=2, policy_sha256=POLICY_SHA256)
    box(Kind.CONSENT, seat=1)
    box(Kind.END, 180, reason=EndReason.CONSENT_TIMEOUT, kept=True)
    session = box.session()
    assert session.intact and session.verdict() == NOTHING_RECORDED and not session.recorded


def test_from_and_to_take_the_sessions_set_up_on_those_days(tmp_path):
    path = tmp_path / "ledger.jsonl"
    for day in range(5):
        box = Box(path, EPOCH + timedelta(days=day))
        box.set_up(1, session=f"{day:016x}")
        box.ledger.close(shutdown=True)
    picked = box.audited(first=date(2026, 5, 7), last=date(2026, 5, 9))
    assert [s.session for s in picked.sessions] == [f"{day:016x}" for day in (1, 2, 3)]
    assert [s.session for s in box.audited(last=date(2026, 5, 6)).sessions] == [f"{0:016x}"]
    assert [s.session for s in box.audited(first=date(2026, 5, 10)).sessions] == [f"{4:016x}"]
    assert [s.session for s in box.audited(first=date(2026, 5, 11)).sessions] == []
    with pytest.raises(AuditError, match="--from 2026-05-09 is after --to 2026-05-07"):
        Period(date(2026, 5, 9), date(2026, 5, 7))


def test_a_ledger_of_another_box_or_one_edited_is_refused(box: Box):
    box.set_up(2)
    box.ledger.close(shutdown=True)
    other = GivenDeviceKey(DeviceSigningKey.generate(secret=bytes(32)).public_key)
    with pytest.raises(UnknownBoxError):
        audit(box.path, [], other, period=Period(), made=MADE)
    box.path.write_bytes(box.path.read_bytes().replace(b'"seat":2', b'"seat":3'))
    with pytest.raises(ValueError, match=r"line 4 \(seq 3\): signature does not verify"):
        audit(box.path, [], GivenDeviceKey(KEY.public_key), period=Period(), made=MADE)


def test_csv_rows_parse_back_and_no_field_can_run_as_a_formula(box: Box):
    box.set_up(2)
    box(Kind.START)
    box(Kind.END, 10, reason=EndReason.ENDED, kept=True)
    found = box.audited()
    labels = ['=1+1', '+SUM(A1)', '-2', '@cmd', 'Room "3", left', "\tx"]
    rows = []
    for label in labels:
        text = render_csv(replace(found, sessions=tuple(replace(s, box=label) for s in found.sessions)))
        assert "\r" not in text and text.endswith("\n")
        [row] = list(csv.DictReader(io.StringIO(text, newline="")))
        assert tuple(row) == COLUMNS
        rows.append(row)
    assert [row["box"] for row in rows] == ["'=1+1", "'+SUM(A1)", "'-2", "'@cmd", 'Room "3", left', "'\tx"]
    row = rows[0]
    assert (row["session"], row["headcount"], row["verdict"], row["files"]) == (SESSION, "2", "PASS", "not checked")
    assert row["consents"] == "seat 1 at 1.0 s, seat 2 at 2.0 s" and row["recorded_seconds"] == "10.0"
    assert row["set_up"] == (EPOCH).isoformat(timespec="seconds")


def test_every_value_in_the_page_is_escaped_and_the_page_loads_nothing(box: Box):
    box.set_up(2)
    box(Kind.START)
    box(Kind.WITHDRAWAL, 5, seat=1)
    box(Kind.END, 0, reason=EndReason.WITHDRAWN, kept=False)
    box(Kind.DESTRUCTION, 0, files=2, cause="withdrawn", due="2026-06-05")
    found = box.audited()
    label = '<img src="x" onerror="alert(1)">&amp;'
    page = render_html(replace(found, boxes=((KEY.public_key.to_string(), label),),
                               sessions=tuple(replace(s, box=label) for s in found.sessions)))
    assert "<img" not in page and "&lt;img src=&quot;x&quot; onerror=&quot;alert(1)&quot;&gt;&amp;amp;" in page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    assert "withdrawn (seat 1)" in page and "destroyed (withdrawn)" in page
    assert render_text(found).splitlines()[-1] == "Result: all 1 sessions: consent complete and evidence intact."


def test_the_csv_and_html_files_are_the_readers_alone_and_appear_whole_or_not_at_all(box: Box, tmp_path, key_file,
                                                                                     monkeypatch, capsys):
    box.set_up(2)
    box(Kind.START, 2)
    box(Kind.END, 60, reason=EndReason.ENDED, kept=True)
    box.ledger.close(shutdown=True)
    csv_file, html_file = tmp_path / "report.csv", tmp_path / "report.html"
    command = ["audit", "-i", str(key_file), "--device-key", str(KEY.public_key), "--csv", str(csv_file),
               "--html", str(html_file), str(box.path)]
    assert cli.main(command) == 0
    assert oct(csv_file.stat().st_mode & 0o777) == oct(html_file.stat().st_mode & 0o777) == "0o600"
    assert csv_file.read_text().count("\n") == 2 and html_file.read_text().rstrip().endswith("</html>")

    # A report that fails half-way leaves the last one as it was, and no part of the new one.
    before = sorted(tmp_path.iterdir()), html_file.read_bytes()

    def half(report: Audit) -> str:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cli, "render_html", half)
    assert cli.main(command) == 1
    assert capsys.readouterr().err == "consentbox-admin: [Errno 28] No space left on device\n"
    assert (sorted(tmp_path.iterdir()), html_file.read_bytes()) == before
