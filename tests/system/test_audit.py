"""The compliance reviewer's audit (issue 15, item 4) of a card that real box runs made.

One box, provisioned with a supervisor as its recipient and a separate auditor, records through
`consentbox simulate --state` on a card directory:
- `retained`, `by_hand` and `off_box`, three sessions that end normally; then `by_hand`'s recording is
  deleted by hand at a workstation, `off_box` is destroyed with `consentbox-admin destroy`, a bundle
  shortens retention to nothing and the wipe destroys `retained` (cause retention) and receipts the other
  two (absent, off_box);
- `withdrawn`, withdrawn while recording under `on_withdrawal = destroy`;
- `kept` (ends normally) and `withdrawn_kept` (withdrawn under `on_withdrawal = keep`);
- `interrupted`, killed (SIGKILL, as a power cut) while it records, then recovered by the box's next start.

The auditor runs `consentbox-admin audit` with the auditor's key only, over the card, one extract and the
box's own ledger, as the reviewer would. The HTML report is opened in Debian's chromium (as the panel's
browser tests do) and photographed into build/screenshots/.

A second box, provisioned with a post-quantum supervisor and auditor (issue 21), records two sessions
that the supervisor exports, `consent-report` checks and the auditor audits, all through mlkem768x25519.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from consentbox.admin.audit.csv_table import COLUMNS
from consentbox.core.policy import Policy
from consentbox.crypto import parse_identity_file
from consentbox.crypto.format import read_header
from consentbox.recording.manifest import extract_name, manifest_name, segment_name
from consentbox.recording.recorded import recorded_files
from consentbox.testing.signal import write_wav

from .conftest import BIN, SimulatedBox

POLICY = Policy(min_free_mb=1, segment_bytes=1 << 20)  # a new segment every ~11 s of audio
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
LONG = "0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.5\n50 hold record 2.5\n"


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, os.urandom(6 * POLICY.rate * POLICY.frame_bytes), POLICY)
    return path


def admin(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN / "consentbox-admin", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def script(*sessions: str) -> str:
    """One session per word, 20 s apart, each recording about 4 s: "kept" ends normally, "withdrawn" is
    withdrawn by seat 2 while recording."""
    lines = []
    for number, kind in enumerate(sessions):
        t = 20 * number
        lines += [f"{t} tap record", f"{t + 1} tap consent 1", f"{t + 2} tap consent 2", f"{t + 3} hold record 1.2"]
        lines.append(f"{t + 8} hold record 2.5" if kind == "kept" else f"{t + 6} hold consent 2 2.5")
    return "\n".join(lines) + "\n"


class Box(SimulatedBox):
    """One box on a plain card directory, configured as /etc/consentbox/config.toml would be, provisioned by
    sticks that `consentbox-admin bundle` writes."""

    def __init__(self, root: Path, microphone: Path, supervisor: tuple[Path, str], org: Path, auditor: str) -> None:
        super().__init__(root, supervisor[1], key_file=supervisor[0], microphone=microphone)
        self.org, self.auditor, self.sticks = org, auditor, 0
        self.configure(f'[card]\npath = "{self.card}"\nrequire_mount = false\n[box]\nstate_dir = "{self.state}"\n'
                       f'[keys]\norg_key = "{org / "org.pub"}"\n')

    def provision(self, version: int, *options: str, on_withdrawal: str = "destroy") -> None:
        """A bundle for the supervisor and the auditor, `options` added to `consentbox-admin bundle`."""
        self.sticks += 1
        stick, policy = self.root / f"stick{self.sticks}", self.root / "policy.toml"
        stick.mkdir()
        policy.write_text(f'[policy]\nretention_days = 30\nmin_free_mb = 1\nmax_session = 60\n'
                          f'segment_bytes = {POLICY.segment_bytes}\non_withdrawal = "{on_withdrawal}"\n')
        made = admin("bundle", "--org-key", self.org / "org.key", "--recipient", self.recipient, "--auditor",
                     self.auditor, "--policy", policy, "--version", str(version), "--single-recipient", *options,
                     "--out", stick)
        assert made.returncode == 0, made.stderr
        done = subprocess.run([BIN / "consentbox", "provision", "--config", self.config, stick],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def record(self, *sessions: str) -> list[str]:
        """Record the sessions (see `script`); their ids."""
        return [e["id"] for e in self.simulate(script(*sessions)).of("session")]

    def wipe(self) -> list[str]:
        done = subprocess.run([BIN / "consentbox", "wipe", "--config", self.config], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    def interrupted(self) -> str:
        """A long recording killed (SIGKILL, as a power cut) once its second segment is on the card, then the
        box started again, which recovers it; its id."""
        box = self.start(LONG)
        assert box.stdout is not None
        for line in box.stdout:
            entry = json.loads(line)
            if entry["event"] == "file" and entry["path"].endswith(".001.wav.age"):
                box.send_signal(signal.SIGKILL)
                break
        box.wait(timeout=60)
        assert box.returncode == -signal.SIGKILL, "the box ended before its second segment"
        recovered = self.simulate("1 end\n").of("recovered")
        assert [r["end"] for r in recovered] == ["interrupted"], recovered
        return recovered[0]["id"]

    def device_key(self) -> str:
        done = subprocess.run([BIN / "consentbox", "device-key", "--config", self.config], capture_output=True,
                              text=True, check=True)
        return done.stdout.strip()


@dataclass(frozen=True)
class Clinic:
    """The box's files once every session was made, the keys, and the ids of the sessions by name."""

    box: Box
    auditor_key: Path
    boxes: Path  # the workstation's trusted boxes file: this box, as IT recorded it
    ids: dict[str, str]


@pytest.fixture(scope="module")
def clinic(tmp_path_factory, microphone, supervisor) -> Clinic:
    root = tmp_path_factory.mktemp("audit")
    auditor_key = root / "auditor.key"
    made = admin("keygen", "-o", auditor_key)
    auditor = made.stderr.split()[-1]
    assert admin("init-org", "--out", root / "org").returncode == 0
    box = Box(root / "box", microphone, supervisor, root / "org", auditor)
    assert auditor != box.recipient

    box.provision(1)
    retained, by_hand, off_box, withdrawn = box.record("kept", "kept", "kept", "withdrawn")
    for path in recorded_files(box.card, by_hand):
        path.unlink()  # at a workstation, by hand
    assert admin("destroy", "--session", off_box, box.card).returncode == 0
    box.provision(2, "--existing-days", "0")  # what was recorded so far expires today
    wiped = box.wipe()
    assert any(f"destroyed session {retained}" in line for line in wiped), wiped
    box.provision(3, on_withdrawal="keep")
    kept, withdrawn_kept = box.record("kept", "withdrawn")
    interrupted = box.interrupted()

    boxes = root / "boxes"
    assert admin("trust-box", box.device_key(), "Room 3, asset 0042", "--boxes", boxes).returncode == 0
    ids = {"retained": retained, "by_hand": by_hand, "off_box": off_box, "withdrawn": withdrawn, "kept": kept,
           "withdrawn_kept": withdrawn_kept, "interrupted": interrupted}
    return Clinic(box, auditor_key, boxes, ids)


@dataclass(frozen=True)
class Report:
    """What `consentbox-admin audit` gave: its exit status, its text, and its CSV rows by session id."""

    status: int
    text: str
    stderr: str
    rows: dict[str, dict[str, str]]


def audit(clinic: Clinic, source: Path, out: Path, *options: str | Path) -> Report:
    """`consentbox-admin audit` of `source` with the auditor's key and the trusted boxes, its CSV in `out`."""
    out.mkdir(exist_ok=True)
    table = out / "audit.csv"
    done = admin("audit", "-i", clinic.auditor_key, "--boxes", clinic.boxes, "--csv", table, *options, source)
    assert done.returncode in (0, 1) and not done.stderr, done.stderr
    with open(table, newline="", encoding="utf-8") as rows:
        reader = csv.DictReader(rows)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return Report(done.returncode, done.stdout, done.stderr, {row["session"]: row for row in reader})


def test_the_report_on_a_card_tells_each_session_and_its_verdict(clinic: Clinic, tmp_path):
    ids = clinic.ids
    report = audit(clinic, clinic.box.card, tmp_path)

    assert report.status == 1, "a session's files were deleted by hand: the card does not pass"
    assert set(report.rows) == set(ids.values())
    row = {name: report.rows[session] for name, session in ids.items()}
    verdicts = {name: r["verdict"] for name, r in row.items()}
    assert verdicts == {name: "FAIL" if name == "by_hand" else "PASS" for name in ids}
    assert "deleted from the card by hand" in row["by_hand"]["reasons"]
    for name, r in row.items():
        assert r["box"] == "Room 3, asset 0042" and r["headcount"] == "2"
        assert r["consents"].startswith("seat 1 at ") and ", seat 2 at " in r["consents"], (name, r["consents"])
        assert float(r["recorded_seconds"]) > 2.5, (name, r)
        assert r["expires"], name

    kept = row["kept"]
    assert (kept["end_reason"], kept["kept"], kept["withdrawals"]) == ("ended", "yes", "")
    assert kept["destruction_cause"] == "" and kept["notes"] == ""
    assert (kept["files"], kept["files_verified"], kept["files_failing"]) == ("2", "2", "0")  # manifest, 000
    assert date.fromisoformat(kept["expires"]) == date.fromisoformat(kept["set_up"][:10]) + timedelta(days=30)

    for name, keeps in (("withdrawn", "no"), ("withdrawn_kept", "yes")):
        assert (row[name]["end_reason"], row[name]["kept"]) == ("withdrawn", keeps)
        assert row[name]["withdrawals"].startswith("seat 2 at ")
    assert row["withdrawn"]["destruction_cause"] == "withdrawn"
    assert row["withdrawn"]["files_destroyed"] == row["withdrawn"]["files"] != "0"
    assert row["withdrawn_kept"]["destruction_cause"] == ""
    assert "kept, marked withdrawn" in row["withdrawn_kept"]["notes"]

    for name, cause in (("retained", "retention"), ("by_hand", "absent"), ("off_box", "off_box")):
        r = row[name]
        assert (r["destruction_cause"], r["files_verified"], r["files_failing"]) == (cause, "0", "0"), r
        assert r["destruction_due"] == r["set_up"][:10], "a bundle moved its expiry to the day it was recorded"
        assert r["destruction_receipt"][:10] >= r["destruction_due"]

    interrupted = row["interrupted"]
    assert interrupted["end_reason"] == "interrupted" and "power cut" in interrupted["notes"]
    assert int(interrupted["files_cut_short"]) >= 1 and interrupted["files_failing"] == "0"
    assert "(cut short)" in interrupted["recordings"]

    lines = report.text.splitlines()
    for name, session in ids.items():
        [table_row] = [line for line in lines if line.startswith(session)]
        assert table_row.endswith("FAIL" if name == "by_hand" else "PASS"), table_row
    assert lines[-1] == f"Result: 1 of 7 sessions FAIL: {ids['by_hand']}."
    assert "  verdict      consent complete, evidence NOT intact: its files were deleted" in report.text


def test_the_auditor_reads_every_session_record_but_no_audio(clinic: Clinic, tmp_path):
    kept = clinic.ids["kept"]
    card = clinic.box.card
    heard = admin("decrypt", "-i", clinic.auditor_key, "-o", tmp_path / "audio.wav", card / segment_name(kept, 0))
    assert heard.returncode == 1 and not (tmp_path / "audio.wav").exists(), heard.stderr
    manifest = admin("decrypt", "-i", clinic.auditor_key, "-o", tmp_path / "m.json", card / manifest_name(kept))
    assert manifest.returncode == 1, manifest.stderr
    exported = admin("export", "-i", clinic.auditor_key, "--boxes", clinic.boxes, "--out", tmp_path / "out", card)
    assert exported.returncode == 1 and not list((tmp_path / "out").glob("*.wav"))

    alone = audit(clinic, card / extract_name(kept), tmp_path / "one")  # one session's extract, beside its files
    assert alone.status == 0 and list(alone.rows) == [kept]
    assert alone.rows[kept]["verdict"] == "PASS" and alone.rows[kept]["files_verified"] == "2"
    assert alone.text.splitlines()[-1] == "Result: all 1 sessions: consent complete and evidence intact."


def test_a_tampered_file_fails_its_session_and_the_report_names_it(clinic: Clinic, tmp_path):
    card = tmp_path / "card"
    shutil.copytree(clinic.box.card, card)
    kept, withdrawn_kept = clinic.ids["kept"], clinic.ids["withdrawn_kept"]
    segment = card / segment_name(kept, 0)
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 1
    segment.write_bytes(data)
    (card / extract_name(withdrawn_kept)).unlink()  # the record of a session taken off the card

    report = audit(clinic, card, tmp_path / "out")
    assert report.status == 1
    assert report.rows[kept]["verdict"] == "FAIL" and report.rows[kept]["files_failing"] == "1"
    assert report.rows[kept]["file_problems"].startswith(f"{segment.name}: ")
    assert f"{segment.name} does not verify" in report.rows[kept]["reasons"]
    assert f"{segment.name}: DOES NOT VERIFY" in report.text
    assert report.rows[withdrawn_kept]["verdict"] == "FAIL"
    assert extract_name(withdrawn_kept) in report.rows[withdrawn_kept]["reasons"]
    failing = {session for session, row in report.rows.items() if row["verdict"] == "FAIL"}
    assert failing == {kept, withdrawn_kept, clinic.ids["by_hand"]}


def test_from_and_to_choose_the_sessions_by_the_day_they_were_set_up(clinic: Clinic, tmp_path):
    day = date.fromisoformat(audit(clinic, clinic.box.card, tmp_path / "all").rows[clinic.ids["kept"]]["set_up"][:10])
    same = audit(clinic, clinic.box.card, tmp_path / "day", "--from", day.isoformat(), "--to", day.isoformat())
    assert set(same.rows) == set(clinic.ids.values())
    for options in (("--from", (day + timedelta(days=1)).isoformat()), ("--to", (day - timedelta(days=1)).isoformat())):
        none = audit(clinic, clinic.box.card, tmp_path / options[0].strip("-"), *options)
        assert (none.status, none.rows) == (0, {}), none.text
        assert none.text.splitlines()[-1] == "Result: no session to report."
    backwards = admin("audit", "-i", clinic.auditor_key, "--from", "2026-05-02", "--to", "2026-05-01", clinic.box.card)
    assert backwards.returncode == 1 and "--from 2026-05-02 is after --to 2026-05-01" in backwards.stderr
    bad = admin("audit", "-i", clinic.auditor_key, "--from", "20260502", clinic.box.card)
    assert bad.returncode == 2 and "is not a date: write YYYY-MM-DD" in bad.stderr


def test_the_boxs_own_ledger_reports_every_session_and_says_the_files_were_not_checked(clinic: Clinic, tmp_path):
    report = audit(clinic, clinic.box.state / "ledger.jsonl", tmp_path)
    assert report.status == 1
    on_card = audit(clinic, clinic.box.card, tmp_path / "card").rows
    assert set(report.rows) == set(on_card)  # every session set up recorded, and each left its extract
    for session, row in report.rows.items():
        assert row["files"] == "not checked" and row["files_verified"] == ""
        for column in ("verdict", "consents", "recordings", "withdrawals", "end_reason", "destruction_cause",
                       "destruction_receipt", "expires", "reasons", "notes"):
            assert row[column] == on_card[session][column], (column, row, on_card[session])
    assert "files not checked: the box's ledger holds no files" in report.text


def test_a_box_not_trusted_is_refused_and_a_label_cannot_smuggle_a_formula_or_markup(clinic: Clinic, tmp_path):
    untrusted = admin("audit", "-i", clinic.auditor_key, "--boxes", tmp_path / "none", clinic.box.card)
    assert untrusted.returncode == 1 and untrusted.stdout == ""
    assert untrusted.stderr.startswith("consentbox-admin: card from an unknown box: device key ")
    other = admin("audit", "-i", clinic.auditor_key, "--device-key", "consentbox-device-ed25519:" + "A" * 43 + "=",
                  clinic.box.card)
    assert other.returncode == 1 and "is not the key given with --device-key" in other.stderr
    given = admin("audit", "-i", clinic.auditor_key, "--device-key", clinic.box.device_key(), clinic.box.card)
    assert given.returncode == 1, given.stderr
    assert f"Box        {clinic.box.device_key()} given with --device-key" in given.stdout

    boxes = tmp_path / "boxes"
    label = "=HYPERLINK(\"http://example.invalid\") <script>alert(1)</script>"
    assert admin("trust-box", clinic.box.device_key(), label, "--boxes", boxes).returncode == 0
    page = tmp_path / "audit.html"
    done = admin("audit", "-i", clinic.auditor_key, "--boxes", boxes, "--csv", tmp_path / "a.csv", "--html", page,
                 clinic.box.card)
    assert done.returncode == 1, done.stderr
    with open(tmp_path / "a.csv", newline="", encoding="utf-8") as rows:
        assert {row["box"] for row in csv.DictReader(rows)} == {"'" + label}
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_the_html_report_is_one_page_that_loads_nothing_and_draws_each_session(clinic: Clinic, tmp_path):
    page_file = tmp_path / "audit.html"
    done = admin("audit", "-i", clinic.auditor_key, "--boxes", clinic.boxes, "--html", page_file, "card",
                 cwd=clinic.box.root)  # as a reviewer types it, beside the card
    assert done.returncode == 1, done.stderr
    text = page_file.read_text(encoding="utf-8")
    assert "<script" not in text.lower() and "http://" not in text and "https://" not in text
    assert "default-src 'none'" in text
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is not installed: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri())
            assert requests == [page_file.as_uri()], "the page asked for something besides itself"
            for name, session in clinic.ids.items():
                article = page.locator(f"article#s-{session}")
                badge = "FAIL" if name == "by_hand" else "PASS"
                assert article.locator("h2 .badge").inner_text().endswith(badge), name
                timeline = article.locator('svg[role="img"]')
                assert timeline.count() == 1
                description = timeline.locator("desc").text_content() or ""
                assert "consent given at seat 1" in description and "session ended" in description, name
                assert article.locator("details ol li").count() >= 5
            interrupted = page.locator(f"article#s-{clinic.ids['interrupted']}")
            assert interrupted.locator("svg text", has_text="later, by date").count() == 1
            assert "cut short" in (interrupted.locator("svg").inner_html())
            assert page.locator(".result").inner_text().startswith("✘ Result: 1 of 7 sessions FAIL")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / "audit-full.png", full_page=True)
            page.set_viewport_size({"width": 1000, "height": 1350})
            page.screenshot(path=SCREENSHOTS / "audit.png")  # the top of the page: docs/audit.png
            assert (SCREENSHOTS / "audit.png").stat().st_size > 10_000
        finally:
            browser.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["audit.html"]


@pytest.fixture(scope="module")
def pq_clinic(tmp_path_factory, microphone) -> Clinic:
    """A box whose bundle names a post-quantum supervisor and auditor (issue 21): two sessions, one withdrawn."""
    root = tmp_path_factory.mktemp("pq")
    keys = {}
    for name in ("supervisor", "auditor"):
        keys[name] = root / f"{name}.key"
        made = admin("keygen", "--pq", "-o", keys[name])
        assert made.returncode == 0, made.stderr
    recipient, auditor = (parse_identity_file(keys[name].read_text(), name)[0].recipient.to_string()
                          for name in ("supervisor", "auditor"))
    assert admin("init-org", "--out", root / "org").returncode == 0
    box = Box(root / "box", microphone, (keys["supervisor"], recipient), root / "org", auditor)
    box.provision(1)
    kept, withdrawn = box.record("kept", "withdrawn")
    boxes = root / "boxes"
    assert admin("trust-box", box.device_key(), "Room 5", "--boxes", boxes).returncode == 0
    return Clinic(box, keys["auditor"], boxes, {"kept": kept, "withdrawn": withdrawn})


def test_a_box_provisioned_post_quantum_records_for_its_keys_only_and_the_tools_verify_it(pq_clinic, tmp_path):
    box, kept = pq_clinic.box, pq_clinic.ids["kept"]
    files = sorted(box.card.glob("*.age"))
    assert files, "the box wrote nothing"
    for path in files:
        with open(path, "rb") as src:
            header, _ = read_header(src)
        assert {stanza.type for stanza in header.stanzas} == {"mlkem768x25519"}, path.name

    exported = admin("export", "-i", box.key_file, "--boxes", pq_clinic.boxes, "--out", tmp_path / "out", box.card)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "out" / f"{kept}.wav").stat().st_size > 2 * POLICY.rate * POLICY.frame_bytes
    report = admin("consent-report", "-i", box.key_file, "--boxes", pq_clinic.boxes, box.card, kept)
    assert report.returncode == 0, report.stdout + report.stderr

    audited = audit(pq_clinic, box.card, tmp_path / "audit")
    assert audited.status == 0, audited.text
    assert {session: row["verdict"] for session, row in audited.rows.items()} == {
        session: "PASS" for session in pq_clinic.ids.values()}
    heard = admin("decrypt", "-i", pq_clinic.auditor_key, "-o", tmp_path / "a.wav", box.card / segment_name(kept, 0))
    assert heard.returncode == 1 and not (tmp_path / "a.wav").exists(), "the auditor must not hear the audio"
