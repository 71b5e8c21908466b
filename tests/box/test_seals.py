"""The box signs a `seal` entry into its ledger for every seal of a session's files, and start-up recovery
for each file it finds unsealed; a ledger that cannot take one is reported, and the recording goes on.

The box is assembled as `consentbox simulate` assembles it (mock pins, a card directory, virtual time),
with generated audio, and driven by button events; its ledger is then read back and held against the
card.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.figures import check_quoted
from consentbox.admin.export import read_manifest
from consentbox.core.events import RECORD, ConsentButton
from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason
from consentbox.core.table import State
from consentbox.crypto import X25519Identity, decrypt
from consentbox.crypto.stream import CHUNK_SIZE
from consentbox.ledger import Kind, verify
from consentbox.ledger.writer import Ledger, LedgerWriteError
from consentbox.recording.journal import Journal
from consentbox.recording.manifest import manifest_name, segment_name
from consentbox.recording.seal import CHECKPOINT_CHUNKS
from consentbox.recording.session import SessionFiles
from consentbox.recording.wav import HEADER_SIZE
from consentbox.testing.fakes import GeneratedSource
from tests.support.simulated import BoxRig

POLICY = Policy(segment_bytes=3 << 20)  # ~32.7 s of audio a segment: one checkpoint in a full one
IDENTITY = X25519Identity.generate(secret=bytes(range(32)))
STARTED = datetime(2026, 5, 6, 14, 0, tzinfo=UTC)


class Rig(BoxRig):
    """A box under `root` (its card, its state directory) recording to IDENTITY under POLICY."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, IDENTITY.recipient, POLICY)

    def record_a_session(self) -> str:
        """Consents, 40 s of recording (its segment rotates), a pause, 25 s more, the end; the session id."""
        self.hold(RECORD)
        self.hold(ConsentButton(1))
        self.hold(ConsentButton(2))
        assert self.box.machine.state is State.READY
        self.hold(RECORD, 1.2)
        assert self.box.machine.state is State.RECORDING
        [manifest] = self.card.glob("*.manifest.age")
        session = manifest.name.split(".")[0]
        self.wait(40.0)
        self.hold(RECORD)
        assert self.box.machine.state is State.PAUSED
        self.wait(5.0)
        self.hold(RECORD)
        self.wait(25.0)
        self.hold(RECORD, 2.5)
        assert self.box.machine.state is State.IDLE
        return session

    def seals(self, session: str) -> list[dict[str, Any]]:
        """The fields of `session`'s seal entries, in order."""
        return [entry["fields"] for entry in self.entries(session) if entry["kind"] == "seal"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _frames(data: bytes) -> int:
    out = io.BytesIO()
    decrypt(io.BytesIO(data), out, [IDENTITY], salvage=True)
    return max(0, len(out.getvalue()) - HEADER_SIZE) // POLICY.frame_bytes


def _binds(seal: dict[str, Any], data: bytes) -> bool:
    bound = data if seal["final"] else data[:seal["bytes"]]
    return (seal["bytes"], seal["sha256"]) == (len(bound), _sha256(bound))


def test_a_session_s_seal_entries_bind_every_file_on_the_card(tmp_path: Path):
    rig = Rig(tmp_path)
    session = rig.record_a_session()
    rig.box.shut_down()

    seals = rig.seals(session)
    assert [(s["segment"], s["final"]) for s in seals] == [
        (None, True), (0, False), (None, True),  # the first manifest; the first segment's header, its manifest
        (0, False), (0, True), (1, False), (None, True),  # a checkpoint; the rotation: closed, opened, listed
        (1, True), (None, True),  # the pause
        (2, False), (None, True), (2, False), (2, True), (None, True),  # resumed; a checkpoint; capture closed
        (None, True)]  # the end
    for number in range(3):
        data = (rig.card / segment_name(session, number)).read_bytes()
        header, *checkpoints, final = [s for s in seals if s["segment"] == number]
        assert not header["final"] and header["frames"] == 0 and _binds(header, data)
        assert final["final"] and _binds(final, data) and final["frames"] == _frames(data)
        assert all(_binds(checkpoint, data) for checkpoint in checkpoints)
    manifest_file = (rig.card / manifest_name(session)).read_bytes()
    assert _binds(seals[-1], manifest_file) and seals[-1]["frames"] is None
    manifest = read_manifest(rig.card / manifest_name(session), [IDENTITY])
    recorded = sum(interval.frames or 0 for interval in manifest.intervals)
    assert sum(s["frames"] for s in seals if s["final"] and s["segment"] is not None) == recorded > 64 * 48_000

    kinds = [entry["kind"] for entry in rig.entries() if entry["session"] == session]
    assert kinds.index("seal") > kinds.index("start") and kinds[-1] == "seal"  # after the end: the final manifest
    assert verify(rig.state / "ledger.jsonl").entries == len(rig.entries())  # signed and chained like any entry
    check_quoted(_ledger_figures(rig))


def _ledger_figures(rig: Rig) -> dict[str, str]:
    """What docs/formats.md quotes of a real ledger: how long its lines are, and what checkpoints cost."""
    lines = (rig.state / "ledger.jsonl").read_bytes().splitlines(keepends=True)
    checkpoints = [len(line) for line, entry in zip(lines, rig.entries(), strict=True) if entry["kind"] == "seal"
                   and entry["fields"]["segment"] is not None and not entry["fields"]["final"]
                   and entry["fields"]["frames"]]
    checkpoint_seconds = CHECKPOINT_CHUNKS * CHUNK_SIZE / POLICY.frame_bytes / POLICY.rate
    per_second = max(checkpoints) / checkpoint_seconds
    return {"ledger.line-bytes.least": str(min(map(len, lines))), "ledger.line-bytes.most": str(max(map(len, lines))),
            "ledger.checkpoint-bytes": str(round(max(checkpoints), -1)),
            "ledger.four-hours-kb": str(round(4 * 3600 * per_second / 10_000) * 10),
            "ledger.a-day-mib": f"{24 * 3600 * per_second / (1 << 20):.1f}"}


def test_a_ledger_that_cannot_take_a_seal_is_reported_and_the_recording_goes_on(tmp_path: Path, monkeypatch):
    real_append = Ledger.append

    def no_seals(self, kind, *args, **kwargs):
        if kind is Kind.SEAL:
            raise LedgerWriteError("cannot write the box's ledger: No space left on device")
        return real_append(self, kind, *args, **kwargs)

    monkeypatch.setattr(Ledger, "append", no_seals)
    rig = Rig(tmp_path)
    session = rig.record_a_session()
    rig.box.shut_down()

    failures = [entry for entry in rig.timeline if entry["event"] == "ledger"]
    assert len(failures) == 15 and "No space left on device" in failures[0]["error"]
    manifest = read_manifest(rig.card / manifest_name(session), [IDENTITY])
    assert manifest.end_reason is EndReason.ENDED and len(manifest.segments) == 3
    assert [entry["kind"] for entry in rig.entries() if entry["session"] == session][-1] == "end"


def _abandoned_session(root: Path) -> SessionFiles:
    """A session the box was recording when the power went: its journal entry, and its files on the card."""
    (root / "card").mkdir(parents=True)
    journal = Journal(root / "state", on_failure=lambda error: None)
    files = SessionFiles.create(root / "card", "0123456789abcdef", [IDENTITY.recipient], POLICY, headcount=2,
                                consents=[(1, 1.0), (2, 2.0)], started=STARTED, journal=journal)
    files.start_interval(3.0)
    audio = GeneratedSource(POLICY)
    audio.open()
    for _ in range(40 * POLICY.rate // POLICY.period_frames):  # 40 s: segment 0 closed, segment 1 open
        files.write(audio.read())
    return files


def test_start_up_recovery_seals_what_it_finds_on_the_card_before_it_records_the_end(tmp_path: Path):
    files = _abandoned_session(tmp_path)
    rig = Rig(tmp_path)
    rig.box.shut_down()

    entries = [entry for entry in rig.entries() if entry["session"] == files.session]
    assert [(e["kind"], e["fields"].get("segment"), e["fields"].get("final")) for e in entries] == [
        ("seal", 1, False), ("seal", None, True), ("end", None, None)]
    segment, manifest = (entry["fields"] for entry in entries[:2])
    data = (rig.card / segment_name(files.session, 1)).read_bytes()
    assert _binds(segment, data) and segment["frames"] == _frames(data[:segment["bytes"]])
    assert _binds(manifest, (rig.card / manifest_name(files.session)).read_bytes())
    assert entries[-1]["fields"] == {"reason": "interrupted", "kept": True}


def test_a_ledger_that_cannot_take_recovery_s_seals_is_reported_and_the_box_still_starts(tmp_path: Path,
                                                                                        monkeypatch):
    files = _abandoned_session(tmp_path)
    real_append = Ledger.append

    def no_seals(self, kind, *args, **kwargs):
        if kind is Kind.SEAL:
            raise LedgerWriteError("cannot write the box's ledger: Input/output error")
        return real_append(self, kind, *args, **kwargs)

    monkeypatch.setattr(Ledger, "append", no_seals)
    rig = Rig(tmp_path)
    rig.box.shut_down()
    assert [entry["event"] for entry in rig.timeline if entry["event"] in ("ledger", "recovered")] == [
        "ledger", "ledger", "recovered"]
    assert [entry["kind"] for entry in rig.entries() if entry["session"] == files.session] == ["end"]
    assert read_manifest(rig.card / manifest_name(files.session), [IDENTITY]).end_reason is EndReason.INTERRUPTED


def test_a_withdrawal_a_power_cut_interrupted_gets_its_destruction_receipt_once_at_the_next_start(tmp_path: Path):
    files = _abandoned_session(tmp_path)
    files.stop_interval(40.0, 0)
    Journal(tmp_path / "state", on_failure=lambda error: None).save(files.manifest(), destroy=True)
    on_card = len(list((tmp_path / "card").glob(f"{files.session}.*.age")))

    rig = Rig(tmp_path)  # start-up recovery finishes the destruction the power cut interrupted
    rig.box.shut_down()
    Rig(tmp_path).box.shut_down()  # a second start finds nothing more to do

    receipts = [e["fields"] for e in rig.entries() if e["kind"] == "destruction" and e["session"] == files.session]
    assert receipts == [{"files": on_card, "cause": "withdrawn", "due": files.manifest().expires.isoformat()}]
    assert not list((tmp_path / "card").glob(f"{files.session}.*.age"))
