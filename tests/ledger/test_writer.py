"""The box's ledger file: durable signed entries in one chain (several writers take turns), a torn tail
cut and recorded."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import resource
import signal
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from consentbox.admin.extracts import load_extract
from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason, Problem, Refusal
from consentbox.crypto import parse_recipient
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.card import CardDirectory
from consentbox.ledger import Entry, Kind, LedgerError, Tail, genesis, verify
from consentbox.ledger import writer as writer_module
from consentbox.ledger.writer import Ledger, LedgerWriteError
from consentbox.recording.manifest import extract_name, manifest_name
from tests.support.ledgers import RECORDED, TORN_LINE, SteppingClocks, in_run, open_ledger, sample_ledger

SESSION = "00112233aabbccdd"
OTHER = "99887766ffeeddcc"


def entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_open_records_a_boot_with_the_device_key_and_each_entry_chains_to_the_one_before(tmp_path: Path,
                                                                                         device_key):
    path = tmp_path / "ledger.jsonl"
    clocks = SteppingClocks()
    ledger = open_ledger(path, None, device_key, clocks)
    clocks.advance(2.5)
    setup = ledger.append(Kind.SETUP, SESSION, headcount=2, policy_sha256="0" * 64)
    clocks.advance(1)
    consent = ledger.append("consent", SESSION, seat=1)
    assert (setup.seq, consent.seq, ledger.next_seq) == (1, 2, 3)
    assert consent.prev == setup.digest and setup.mono == 2.5 and consent.mono == 3.5
    assert setup.wall == clocks.epoch + timedelta(seconds=2.5)
    written = entries(path)
    assert [e["kind"] for e in written] == ["boot", "setup", "consent"]
    assert written[0]["prev"] == genesis(device_key.public_key)
    assert written[0]["fields"] == {"device_key": device_key.public_key.to_string(), "version": "0.1.0"}
    assert path.read_bytes().splitlines()[2] == consent.line
    assert Entry.parse(consent.line, "test") == consent
    ledger.close()
    assert entries(path)[-1]["kind"] == "shutdown"
    assert verify(path, device_key.public_key).entries == 4


def test_the_wall_clock_and_the_box_clock_are_both_recorded(tmp_path: Path, device_key):
    clocks = SteppingClocks(now=100.0)
    with open_ledger(tmp_path / "ledger.jsonl", None, device_key, clocks) as ledger:
        clocks.advance(0.1234567)
        entry = ledger.append(Kind.FAULT, problem=Problem.AUDIO_LOST)
        explicit = ledger.append(Kind.CONSENT, SESSION, at=42.0, seat=3)
    assert entry.mono == 100.123457  # microseconds
    assert entry.wall.isoformat() == "2026-05-06T14:01:40.123000+02:00"  # milliseconds, with the offset
    assert explicit.mono == 42.0  # the box may stamp an entry with the time of the event itself


def test_enums_are_written_as_their_words_and_codes(tmp_path: Path, device_key):
    with open_ledger(tmp_path / "ledger.jsonl", None, device_key, SteppingClocks()) as ledger:
        assert dict(ledger.append(Kind.REFUSED, reason=Refusal.NOT_EVERYONE_CONSENTED).fields) == {
            "reason": "not everyone has consented"}
        assert dict(ledger.append(Kind.REFUSED, SESSION, reason=Problem.CARD_READ_ONLY).fields) == {
            "reason": "card read-only"}
        assert dict(ledger.append(Kind.FAULT, SESSION, problem=Problem.CARD_LOST).fields) == {"problem": 4}
        assert dict(ledger.append(Kind.END, SESSION, reason=EndReason.MAX_SESSION, kept=True).fields) == {
            "reason": "max session", "kept": True}


@pytest.mark.parametrize(("kind", "session", "fields", "message"), [
    (Kind.CONSENT, SESSION, {"seat": 1, "name": "Alice"}, "'name' is not a field of a consent entry"),
    (Kind.SETUP, SESSION, {"headcount": 2, "policy_sha256": "0" * 64, "note": "first session"},
     "'note' is not a field of a setup entry"),
    (Kind.CONSENT, SESSION, {}, "a consent entry needs field 'seat'"),
    (Kind.CONSENT, None, {"seat": 1}, "a consent entry belongs to a session, but none was given"),
    (Kind.BOOT, SESSION, {"device_key": "x", "version": "1"}, "a boot entry belongs to no session"),
    (Kind.CONSENT, "Alice's session", {"seat": 1}, "session: expected 16 lowercase hex digits"),
    (Kind.CONSENT, SESSION, {"seat": 0}, "field seat: expected a whole number of at least 1"),
    (Kind.CONSENT, SESSION, {"seat": True}, "field seat: expected a whole number"),
    (Kind.REFUSED, SESSION, {"reason": "she said no"}, "field reason: expected one of"),
    (Kind.END, SESSION, {"reason": "ended", "kept": "yes"}, "field kept: expected true or false"),
    (Kind.FAULT, None, {"problem": 99}, "field problem: expected a STATUS blink code"),
    (Kind.CLOCK_CORRECTION, None, {"delta": float("nan")}, "field delta: expected a number of seconds"),
    (Kind.DESTRUCTION, SESSION, {"files": 2, "cause": "because", "due": "2026-06-05"}, "field cause: expected one of"),
    (Kind.DESTRUCTION, SESSION, {"files": 2, "cause": "retention", "due": "2026-02-30"}, "field due: expected a date"),
    (Kind.EXPIRY, SESSION, {"expires": "5 June", "reason": "recorded"}, "field expires: expected a date"),
    (Kind.EXPIRY, SESSION, {"expires": "2026-06-05", "reason": "whim"}, "field reason: expected one of"),
    ("diary", None, {}, "'diary' is not a kind of ledger entry"),
])
def test_an_entry_outside_its_kind_s_closed_set_is_refused_and_nothing_is_written(
    tmp_path: Path, device_key, kind, session, fields, message,
):
    path = tmp_path / "ledger.jsonl"
    with open_ledger(path, None, device_key, SteppingClocks()) as ledger:
        before = path.read_bytes()
        with pytest.raises(LedgerError, match=message.replace("(", r"\(")):
            ledger.append(kind, session, **fields)
        assert path.read_bytes() == before and ledger.next_seq == 1


def test_session_range_names_the_first_and_last_entries_and_the_head(tmp_path: Path, device_key):
    path = tmp_path / "ledger.jsonl"
    with open_ledger(path, None, device_key, SteppingClocks()) as ledger:
        ledger.append(Kind.SETUP, SESSION, headcount=1, policy_sha256="0" * 64)
        ledger.append(Kind.FAULT, problem=Problem.NO_CARD)
        ledger.append(Kind.SETUP, OTHER, headcount=1, policy_sha256="0" * 64)
        ledger.append(Kind.CONSENT, SESSION, seat=1)
        last = ledger.append(Kind.START, SESSION)
        span = ledger.session_range(SESSION)
        assert (span.session, span.first, span.last, span.head) == (SESSION, 1, 5, last.digest)
        assert span.to_mapping() == {"first": 1, "last": 5, "head": last.digest}
        assert ledger.session_range(OTHER).first == ledger.session_range(OTHER).last == 3
        with pytest.raises(LedgerError, match="session 0000000000000000 has no entries"):
            ledger.session_range("0" * 16)
    lines = path.read_bytes().splitlines()
    assert Entry.parse(lines[5], "test").digest == span.head
    assert verify(path, session=SESSION).session_range() == span


def test_reopening_continues_the_chain(tmp_path: Path, device_key):
    path = tmp_path / "ledger.jsonl"
    for _ in range(3):
        with open_ledger(path, None, device_key, SteppingClocks()) as ledger:
            ledger.append(Kind.WIPE, files=0)
    summary = verify(path, device_key.public_key)
    assert (summary.entries, summary.boots, summary.gaps, summary.tail) == (9, 3, 0, Tail.COMPLETE)
    assert [e["kind"] for e in entries(path)] == ["boot", "wipe", "shutdown"] * 3


@pytest.mark.parametrize("tail", [TORN_LINE, b"\0" * 300, b"{", b"garbage without a newline"])
def test_a_torn_tail_is_cut_and_the_next_start_records_the_gap(tmp_path: Path, device_key, tail: bytes):
    path = tmp_path / "ledger.jsonl"
    with open_ledger(path, None, device_key, SteppingClocks()) as ledger:
        ledger.append(Kind.WIPE, files=1)
    intact = path.read_bytes()
    with open(path, "ab") as out:
        out.write(tail)
    assert verify(path).tail is Tail.TORN
    ledger = open_ledger(path, None, device_key, SteppingClocks())
    assert path.read_bytes().startswith(intact)
    written = entries(path)
    assert [e["kind"] for e in written[-2:]] == ["boot", "gap"]
    assert written[-1]["fields"] == {"cut_bytes": len(tail)}
    ledger.close()
    summary = verify(path, device_key.public_key)
    assert (summary.tail, summary.gaps) == (Tail.COMPLETE, 1)


def test_a_file_holding_only_part_of_its_first_entry_starts_again_from_genesis(tmp_path: Path, device_key):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(TORN_LINE)
    with open_ledger(path, None, device_key, SteppingClocks()):
        pass
    assert [(e["seq"], e["kind"]) for e in entries(path)] == [(0, "boot"), (1, "gap"), (2, "shutdown")]
    assert verify(path, device_key.public_key).gaps == 1


def test_a_clean_stop_leaves_no_gap(tmp_path: Path, device_key):
    path = tmp_path / "ledger.jsonl"
    sample_ledger(path, None, device_key, runs=1)
    with open_ledger(path, None, device_key, SteppingClocks()):
        pass
    assert verify(path).gaps == 0


def test_the_box_will_not_continue_a_ledger_whose_last_entry_is_not_its_own(tmp_path: Path, device_key,
                                                                            other_box_key):
    path = tmp_path / "ledger.jsonl"
    sample_ledger(path, None, device_key, runs=1)
    with pytest.raises(LedgerError, match="last entry: signature does not verify"):
        open_ledger(path, None, other_box_key, SteppingClocks())
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(lines[:-1] + [lines[-1].replace(b'"shutdown"', b'"shutdowm"')]) + b"\n")
    with pytest.raises(LedgerError, match="last entry kind: not a kind of entry"):
        open_ledger(path, None, device_key, SteppingClocks())


def _append_consents(path: Path, secret: bytes, card: Path, reader: str, count: int) -> None:
    key = DeviceSigningKey.generate(secret=secret)
    ledger = Ledger.open(path, CardDirectory(card, Policy()), key, boot=False,
                         readers=lambda: [parse_recipient(reader)])
    for seat in range(count):
        ledger.append(Kind.CONSENT, OTHER, seat=seat + 1)
    ledger.close(shutdown=False)  # a job beside the box: the box has not stopped


def test_processes_appending_at_once_keep_one_chain_on_the_box_and_the_card(tmp_path: Path, device_key, reader):
    # The box, a provisioning job and a wipe job append beside each other: each append catches up first, and
    # each session's extract on the card is written in the chain's order, so it ends holding every entry.
    path, card = tmp_path / "ledger.jsonl", tmp_path / "card"
    card.mkdir()
    for session in (SESSION, OTHER):
        (card / manifest_name(session)).write_bytes(b"age ciphertext")
    # Not private_bytes_raw(): it came in cryptography 40, and the box runs Debian bookworm's 38.
    secret = device_key._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    ledger = open_ledger(path, card, device_key, SteppingClocks(), readers=[reader.recipient])
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_consents, args=(path, secret, card, reader.recipient.to_string(), 40))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    for seat in range(40):
        ledger.append(Kind.CONSENT, SESSION, seat=seat + 1)
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    ledger.close()
    summary = verify(path, device_key.public_key)
    assert summary.entries == 1 + 4 * 40 + 1  # boot, the consents, the box's shutdown
    for session in (SESSION, OTHER):
        extract = load_extract(card / extract_name(session), [reader], session=session,
                               device_key=device_key.public_key)
        assert extract.entries == verify(path, session=session).selected and len(extract.entries) == (
            40 if session == SESSION else 120)
    assert [e["kind"] for e in entries(path)].count("boot") == 1


def test_each_entry_is_one_write_then_an_fdatasync_before_append_returns(tmp_path: Path, device_key, monkeypatch):
    # A SIGKILL cannot show a missing fdatasync (the kernel keeps what was written): the calls can.
    path = tmp_path / "ledger.jsonl"
    calls: list[tuple[str, bytes]] = []
    real_write, real_sync = writer_module.write_all, os.fdatasync

    def write_all(fd: int, data: bytes) -> None:
        calls.append(("write", data))
        real_write(fd, data)

    def fdatasync(fd: int) -> None:
        calls.append(("fdatasync", os.pread(fd, 1 << 16, 0)))  # what the file holds when it is synced
        real_sync(fd)

    with open_ledger(path, None, device_key, SteppingClocks()) as ledger:
        monkeypatch.setattr(writer_module, "write_all", write_all)
        monkeypatch.setattr(os, "fdatasync", fdatasync)
        consent = ledger.append(Kind.CONSENT, SESSION, seat=1)
        monkeypatch.undo()
        assert calls == [("write", consent.line + b"\n"), ("fdatasync", path.read_bytes())]

        # An entry whose fdatasync fails does not count: cut back, and the next one takes its place.
        def failing(fd: int) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        before = path.read_bytes()
        monkeypatch.setattr(os, "fdatasync", failing)
        with pytest.raises(LedgerWriteError, match="Input/output error"):
            ledger.append(Kind.CONSENT, SESSION, seat=2)
        monkeypatch.undo()
        assert path.read_bytes() == before
        assert ledger.append(Kind.CONSENT, SESSION, seat=2).seq == consent.seq + 1
    assert verify(path).tail is Tail.COMPLETE


def test_a_failed_write_is_cut_back_so_the_file_never_holds_half_an_entry(tmp_path: Path, device_key):
    # A real short write: the kernel's file-size limit stops the write part-way, as a full disk does.
    path = tmp_path / "ledger.jsonl"
    with open_ledger(path, None, device_key, SteppingClocks()):
        pass
    size = path.stat().st_size
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_end)
            ledger = open_ledger(path, None, device_key, SteppingClocks())
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 100, resource.RLIM_INFINITY))
            try:
                ledger.append(Kind.CONSENT, SESSION, seat=1)
                outcome = b"appended"
            except LedgerWriteError as error:
                outcome = f"refused: {error}".encode()
            os.write(write_end, outcome)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(child, 0)
    assert outcome.startswith("refused: cannot write the box's ledger") and "File too large" in outcome
    assert verify(path).tail is Tail.COMPLETE  # the half entry was cut off again
    assert [e["kind"] for e in entries(path)] == ["boot", "shutdown", "boot"]
    assert path.stat().st_size > size


def test_a_closed_ledger_takes_no_more_entries(tmp_path: Path, device_key):
    ledger = open_ledger(tmp_path / "ledger.jsonl", None, device_key, SteppingClocks())
    ledger.close()
    ledger.close()  # a second close does nothing
    with pytest.raises(LedgerError, match="is closed"):
        ledger.append(Kind.WIPE, files=0)


def test_the_device_key_stays_on_the_box(tmp_path: Path, card: Path, reader):
    state = tmp_path / "state"
    state.mkdir()
    key_path = state / "device.key"
    key = DeviceSigningKey.load_or_create(key_path)
    sessions = [in_run(RECORDED, run) for run in (0, 1)]
    for session in sessions:
        (card / manifest_name(session)).write_bytes(b"age ciphertext")
    sample_ledger(state / "ledger.jsonl", card, key, readers=[reader.recipient])
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert sorted(os.listdir(card)) == sorted(name for s in sessions for name in (manifest_name(s), extract_name(s)))
    secret_pem = key_path.read_bytes()
    secret_body = b"".join(secret_pem.splitlines()[1:-1])
    for name in os.listdir(card):
        data = (card / name).read_bytes()
        assert secret_body not in data and b"PRIVATE KEY" not in data
    for session in sessions:
        extract = load_extract(card / extract_name(session), [reader], session=session, device_key=key.public_key)
        assert extract.entries == verify(state / "ledger.jsonl", session=session).selected
