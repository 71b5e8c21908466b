"""Withdrawal after the session (issue 17, point 1): within `withdraw_window` of its end, and before the next
set-up, a CONSENT hold by a seat that consented destroys the session that ended last as a withdrawal during it
does: its files gone from the card, `withdrawal` (its seat) and `destruction` (cause `withdrawn`) in the ledger
under its id, its expiry gone from the index; and the compliance review (`consentbox-admin audit`) says so.

The box is assembled as `consentbox simulate` assembles it and driven by button events on the real session
machine. tests/system/test_withdrawal_traces.py scans a raw card image after the same withdrawal.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from consentbox.admin.export import read_manifest
from consentbox.core.events import RECORD, ConsentButton
from consentbox.core.policy import OnWithdrawal, Policy
from consentbox.core.reasons import EndReason
from consentbox.core.table import State
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.recording.card_id import read_card_id
from consentbox.recording.journal import Journal
from consentbox.recording.manifest import manifest_name, segment_name
from consentbox.recording.session import session_files
from consentbox.retention.index import RetentionIndex
from consentbox.state.files import DEVICE_KEY
from tests.support.simulated import BoxRig

POLICY = Policy(withdraw_window=120.0)
BIN = Path(sys.executable).parent


def kinds(rig: BoxRig, session: str) -> list[str]:
    return [entry["kind"] for entry in rig.entries(session)]


def audit(rig: BoxRig, key_file: Path, source: Path) -> subprocess.CompletedProcess[str]:
    """`consentbox-admin audit` of `source` (the box's ledger, or its card), accepting this box's key."""
    device_key = DeviceSigningKey.load(rig.state / DEVICE_KEY).public_key
    return subprocess.run([BIN / "consentbox-admin", "audit", "-i", key_file, "--device-key", str(device_key),
                           source], capture_output=True, text=True, timeout=120)


def test_a_hold_within_the_window_destroys_the_session_that_ended_last_and_receipts_it(tmp_path, identity,
                                                                                     key_file):
    rig = BoxRig(tmp_path, identity.recipient, POLICY)
    session = rig.record(3.0)
    on_card = session_files(rig.card, session)
    assert len(on_card) == 2 and session in RetentionIndex(rig.state).entries()
    due = RetentionIndex(rig.state).entries()[session].due.isoformat()

    rig.wait(60.0)
    rig.hold(ConsentButton(2), 2.5)
    assert rig.box.machine.state is State.WITHDRAWN
    [withdrawal] = [entry for entry in rig.of("withdrawal") if entry.get("after")]
    assert (withdrawal["id"], withdrawal["seat"], withdrawal["kept"]) == (session, 2, False)

    assert session_files(rig.card, session) == [], "a file of the withdrawn session is left on the card"
    entries = rig.entries(session)
    assert kinds(rig, session)[-3:] == ["seal", "withdrawal", "destruction"], "after its end and final manifest"
    assert entries[-2]["fields"] == {"seat": 2}
    assert entries[-1]["fields"] == {"files": 2, "cause": "withdrawn", "due": due}
    assert session not in RetentionIndex(rig.state).entries()
    assert Journal(rig.state, on_failure=print).pending() == [], "the journal must not keep a destroyed session"
    rig.box.shut_down()

    for source in (rig.state / "ledger.jsonl", rig.card):  # the box's ledger, and the card's extract of it
        done = audit(rig, key_file, source)
        assert done.returncode == 0 and not done.stderr, done.stdout + done.stderr
        assert "withdrawals  seat 2 at " in done.stdout
        assert "(withdrawn, due " in done.stdout
        assert "consent was withdrawn after the session ended, and the recording destroyed" in done.stdout


def test_with_keep_the_session_stays_its_manifest_marked_withdrawn_and_the_ledger_agrees(tmp_path, identity,
                                                                                        key_file):
    rig = BoxRig(tmp_path, identity.recipient, Policy(withdraw_window=120.0, on_withdrawal=OnWithdrawal.KEEP))
    session = rig.record(3.0)
    segment = rig.card / segment_name(session, 0)
    recorded = segment.read_bytes()
    assert not read_manifest(rig.card / manifest_name(session), [identity]).withdrawn
    rig.hold(ConsentButton(1), 2.5)
    assert rig.box.machine.state is State.WITHDRAWN
    assert sorted(session_files(rig.card, session)) == [segment.name, manifest_name(session)]
    assert segment.read_bytes() == recorded
    manifest = read_manifest(rig.card / manifest_name(session), [identity])
    assert manifest.withdrawn and manifest.end_reason is EndReason.ENDED
    assert kinds(rig, session)[-2:] == ["withdrawal", "seal"], "the manifest written again, and sealed"
    assert session in RetentionIndex(rig.state).entries()
    rig.box.shut_down()
    device_key = str(DeviceSigningKey.load(rig.state / DEVICE_KEY).public_key)
    done = subprocess.run([BIN / "consentbox-admin", "consent-report", "-i", key_file, "--device-key", device_key,
                           rig.card, session], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "the ledger and the manifest AGREE" in done.stdout, done.stdout + done.stderr
    done = audit(rig, key_file, rig.card)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "withdrawn after the session ended and the recording kept, marked withdrawn" in done.stdout


def test_after_the_window_or_the_next_set_up_a_hold_withdraws_nothing(tmp_path, identity):
    rig = BoxRig(tmp_path, identity.recipient, POLICY)
    late = rig.record(3.0)
    rig.wait(POLICY.withdraw_window + 1.0)
    rig.hold(ConsentButton(1), 2.5)
    second = rig.record(3.0)
    rig.hold(RECORD)  # the next set-up closes the window of the session before it
    rig.wait(POLICY.consent_timeout + 1.0)  # and times out
    rig.hold(ConsentButton(1), 2.5)
    for session in (late, second):
        assert "withdrawal" not in kinds(rig, session) and len(session_files(rig.card, session)) == 2, session
    assert rig.box.machine.state is State.IDLE and not [e for e in rig.of("withdrawal") if e.get("after")]


def test_a_session_whose_card_has_left_the_slot_is_not_receipted_as_destroyed(tmp_path, identity):
    rig = BoxRig(tmp_path, identity.recipient, POLICY)
    session = rig.record(3.0)
    first = tmp_path / "first-card"
    rig.card.rename(first)
    rig.card.mkdir()  # another card in the slot: the box gives it an id of its own

    rig.hold(ConsentButton(2), 2.5)
    assert kinds(rig, session)[-1] == "withdrawal", "recorded, and no destruction receipt"
    [report] = rig.of("card")
    assert f"not the card session {session} was recorded on" in report["error"]
    assert read_card_id(rig.card) != read_card_id(first) and len(session_files(first, session)) == 2
    assert session in RetentionIndex(rig.state).entries()
