"""A session's extract (the card's copy of its ledger entries): built as documented, read back, and refused
when any line is dropped, moved or edited, or the trailer is another session's or another box's."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from consentbox.crypto import X25519Identity
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import Kind
from consentbox.ledger import extract as extract_module
from consentbox.ledger.extract import (
    SIGNING_CONTEXT,
    ExtractError,
    build_extract,
    decrypt_extract,
    encrypt_extract,
    read_extract,
)
from consentbox.ledger.session_entries import SessionEntries, find_sessions
from consentbox.storage.canonical import canonical_json
from tests.support.ledgers import RECORDED, WITHDRAWN, SteppingClocks, in_run, open_ledger


def session_entries(ledger: Path, session: str) -> SessionEntries:
    """What the box finds of `session` in its ledger file."""
    fd = os.open(ledger, os.O_RDONLY)
    try:
        return find_sessions(fd, os.fstat(fd).st_size, {session})[session]
    finally:
        os.close(fd)


@pytest.fixture
def ledger(tmp_path: Path, sample: bytes) -> Path:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(sample)
    return path


@pytest.fixture
def recorded(ledger: Path, device_key: DeviceSigningKey) -> bytes:
    """The extract of the session recorded in the box's second run."""
    found = session_entries(ledger, in_run(RECORDED, 1))
    return build_extract(device_key, found.boot, found.entries)


def lines_of(plaintext: bytes) -> list[bytes]:
    return plaintext.splitlines(keepends=True)


def refused(plaintext: bytes, match: str | None = None, **options) -> str:
    """The one-line error reading `plaintext` gives."""
    with pytest.raises(ExtractError, match=match) as error:
        read_extract(plaintext, "card/x.ledger.age", **options)
    message = str(error.value)
    assert "\n" not in message and message.startswith("card/x.ledger.age")
    return message


def trailer_over(key: DeviceSigningKey, body: bytes, session: str, entries: int, last_seq: int) -> bytes:
    """A trailer line as the box writes it, over any lines (what only the device key can make)."""
    trailer = {"entries": entries, "format": 1, "last_seq": last_seq, "session": session,
               "sha256": hashlib.sha256(body).hexdigest()}
    signature = key.sign(SIGNING_CONTEXT + canonical_json({"extract": trailer}))
    return canonical_json({"extract": trailer, "sig": signature.hex()}) + b"\n"


def test_an_extract_is_the_boot_entry_the_session_s_lines_as_in_the_ledger_and_a_signed_trailer(
        ledger: Path, recorded: bytes, device_key):
    session = in_run(RECORDED, 1)
    box = ledger.read_bytes().splitlines()
    lines = recorded.splitlines()
    # The boot is the second run's (the session's), not the first: the last boot at or before its first entry.
    boots = [line for line in box if b'"kind":"boot"' in line]
    assert len(boots) == 2 and lines[0] == boots[1]
    assert lines[1:-1] == [line for line in box if f'"session":"{session}"'.encode() in line]
    trailer = json.loads(lines[-1])
    body = b"".join(line + b"\n" for line in lines[:-1])
    assert trailer["extract"] == {"entries": len(lines) - 1, "format": 1, "last_seq": json.loads(lines[-2])["seq"],
                                  "session": session, "sha256": hashlib.sha256(body).hexdigest()}
    assert lines[-1] == canonical_json(trailer) and recorded.endswith(b"\n")
    device_key.public_key.verify(bytes.fromhex(trailer["sig"]),
                                 b"consentbox-ledger/v1 extract\n" + canonical_json({"extract": trailer["extract"]}))


def test_an_extract_reads_back_as_it_was_built(ledger: Path, recorded: bytes, device_key):
    found = session_entries(ledger, in_run(RECORDED, 1))
    extract = read_extract(recorded, "x", session=in_run(RECORDED, 1), device_key=device_key.public_key)
    assert (extract.session, extract.device_key, extract.boot) == (in_run(RECORDED, 1), device_key.public_key,
                                                                  found.boot)
    assert extract.entries == found.entries and extract.last_seq == found.entries[-1].seq
    assert [entry.kind for entry in extract.entries][:3] == [Kind.SETUP, Kind.HEADCOUNT, Kind.CONSENT]
    assert read_extract(recorded, "x").device_key == device_key.public_key  # the key its boot entry names


def test_every_line_dropped_is_refused(recorded: bytes):
    lines = lines_of(recorded)
    for dropped in range(len(lines)):
        refused(b"".join(lines[:dropped] + lines[dropped + 1:]))


def test_every_line_moved_anywhere_else_is_refused(recorded: bytes):
    lines = lines_of(recorded)
    for source in range(len(lines)):
        for target in range(len(lines)):
            if target != source:
                moved = lines[:source] + lines[source + 1:]
                moved.insert(target, lines[source])
                refused(b"".join(moved))


def test_every_line_edited_is_refused(recorded: bytes):
    lines = lines_of(recorded)
    for number, line in enumerate(lines):
        edits = [line[:-1] + b" \n", line + line, line.replace(b":", b": ", 1), b"\n"]
        for at in (2, len(line) // 2, len(line) - 3):  # a character early, in the middle and late in the line
            edits.append(line[:at] + (b"0" if line[at:at + 1] != b"0" else b"1") + line[at + 1:])
        for edited in edits:
            refused(b"".join(lines[:number] + [edited] + lines[number + 1:]))


def test_a_trailer_from_another_session_is_refused(ledger: Path, recorded: bytes, device_key):
    other = session_entries(ledger, in_run(WITHDRAWN, 1))
    theirs = build_extract(device_key, other.boot, other.entries)
    spliced = b"".join(lines_of(recorded)[:-1] + lines_of(theirs)[-1:])
    assert "the trailer counts" in refused(spliced) or "SHA-256" in refused(spliced)
    # Their own whole extract, under this session's name, is theirs: the file was renamed or swapped.
    assert "renamed or swapped" in refused(theirs, session=in_run(RECORDED, 1))


def test_a_trailer_signed_by_another_key_is_refused(ledger: Path, recorded: bytes, device_key, other_box_key):
    lines = lines_of(recorded)
    body = b"".join(lines[:-1])
    forged = body + trailer_over(other_box_key, body, in_run(RECORDED, 1), len(lines) - 1,
                                 json.loads(lines[-2])["seq"])
    assert "does not verify with device key" in refused(forged)  # the key the boot entry names
    refused(forged, device_key=other_box_key.public_key)  # its entries are not that key's
    refused(recorded, device_key=other_box_key.public_key, match="does not verify")


def test_another_box_s_extract_verifies_only_as_that_box_s(tmp_path: Path, other_sample: bytes, device_key,
                                                          other_box_key):
    theirs = tmp_path / "other.jsonl"
    theirs.write_bytes(other_sample)
    found = session_entries(theirs, RECORDED)
    extract = build_extract(other_box_key, found.boot, found.entries)
    assert read_extract(extract, "x").device_key == other_box_key.public_key  # compare it with the box you trust
    refused(extract, device_key=device_key.public_key, match="does not verify with device key")


def test_a_validly_signed_trailer_still_needs_each_entry_to_be_the_session_s_in_order(ledger: Path, recorded: bytes,
                                                                                       device_key, other_box_key):
    # Only the device key can sign a trailer; these show the entries are checked one by one besides.
    lines = lines_of(recorded)
    session = in_run(RECORDED, 1)
    other = lines_of(build_extract(device_key, *_parts(session_entries(ledger, in_run(WITHDRAWN, 1)))))

    def signed(body_lines: list[bytes]) -> bytes:
        body = b"".join(body_lines)
        return body + trailer_over(device_key, body, session, len(body_lines), json.loads(body_lines[-1])["seq"])

    refused(signed(lines[1:-1]), match="begins with a boot entry")
    refused(signed(lines[:-2] + [other[1]]), match="not of session")
    # One extract, one device key: a second boot entry (which could name another key) has no place in it.
    refused(signed(lines[:-1] + [lines[0]]), match="an entry of no session, not of session")
    refused(signed([lines[0], lines[2], lines[1]] + lines[3:-1]), match="out of order")
    refused(signed([lines[0], lines[1], lines[1]] + lines[2:-1]), match="out of order")
    replaced_boot = lines_of(build_extract(other_box_key, *_parts(_other_box_entries(ledger.parent, other_box_key))))
    refused(signed(replaced_boot[:1] + lines[1:-1]), device_key=device_key.public_key,
            match="boot entry names device key")
    body = b"".join(lines[:-1])
    refused(body + trailer_over(device_key, body, session, len(lines) - 1, 10**6), match="last seq")


def _parts(found: SessionEntries):
    return found.boot, found.entries


def _other_box_entries(directory: Path, key: DeviceSigningKey) -> SessionEntries:
    path = directory / "other-box.jsonl"
    with open_ledger(path, None, key, SteppingClocks()) as ledger:
        ledger.append(Kind.SETUP, RECORDED, headcount=1, policy_sha256="0" * 64)
    return session_entries(path, RECORDED)


@pytest.mark.parametrize("trailer, match", [
    (b"not json", "not JSON"),
    (b'{"extract":{},"sig":""}', "missing field"),
    (b'{"extract":{"entries":1,"format":1,"last_seq":1,"session":"0123456789abcdef","sha256":"00","x":1},"sig":""}',
     "unknown field"),
    (b'{"extract": {"entries":2,"format":1,"last_seq":1,"session":"0123456789abcdef","sha256":"' + b"0" * 64
     + b'"},"sig":"' + b"0" * 128 + b'"}', "not in canonical form"),
    (b'{"extract":{"entries":2,"format":2,"last_seq":1,"session":"0123456789abcdef","sha256":"' + b"0" * 64
     + b'"},"sig":"' + b"0" * 128 + b'"}', "format 2"),
    (b'{"extract":{"entries":true,"format":1,"last_seq":1,"session":"0123456789abcdef","sha256":"' + b"0" * 64
     + b'"},"sig":"' + b"0" * 128 + b'"}', "entries is not a whole number"),
    (b'{"extract":{"entries":2,"format":1,"last_seq":1,"session":"0123","sha256":"' + b"0" * 64
     + b'"},"sig":"' + b"0" * 128 + b'"}', "not a session id"),
    (b'{"extract":{"entries":2,"format":1,"last_seq":1,"session":"0123456789abcdef","sha256":"' + b"0" * 64
     + b'"},"sig":"ab"}', "64-byte signature"),
], ids=["not-json", "empty", "unknown-field", "spaces", "format", "boolean-count", "session", "short-signature"])
def test_a_malformed_trailer_is_a_one_line_error(recorded: bytes, trailer: bytes, match: str):
    refused(b"".join(lines_of(recorded)[:-1]) + trailer + b"\n", match=match)


def test_an_extract_cut_short_is_refused(recorded: bytes):
    for length in (0, 1, len(recorded) // 2, len(recorded) - 1):
        refused(recorded[:length])
    refused(b"".join(lines_of(recorded)[:1] + lines_of(recorded)[-1:]))  # boot and trailer alone


def test_build_refuses_what_is_not_one_session_s_entries_after_a_boot(ledger: Path, device_key, other_box_key):
    found = session_entries(ledger, in_run(RECORDED, 1))
    other = session_entries(ledger, in_run(WITHDRAWN, 1))
    with pytest.raises(ExtractError, match="not a boot entry"):
        build_extract(device_key, found.entries[0], found.entries[1:])
    with pytest.raises(ExtractError, match="not a boot entry of device key"):
        build_extract(other_box_key, found.boot, found.entries)
    with pytest.raises(ExtractError, match="at least one entry"):
        build_extract(device_key, found.boot, ())
    with pytest.raises(ExtractError, match="not the next entry of session"):
        build_extract(device_key, found.boot, (*found.entries, other.entries[-1]))
    with pytest.raises(ExtractError, match="not the next entry of session"):
        build_extract(device_key, found.boot, found.entries[::-1])


def test_an_extract_is_encrypted_to_its_readers_and_only_they_decrypt_it(recorded: bytes, reader):
    stranger = X25519Identity.generate(secret=bytes(range(200, 232)))
    auditor = X25519Identity.generate(secret=bytes(range(1, 33)))
    sealed = encrypt_extract(recorded, [reader.recipient, auditor.recipient])
    assert recorded not in sealed and b"headcount" not in sealed
    for identity in (reader, auditor):
        assert decrypt_extract(io.BytesIO(sealed), [identity], "x") == recorded
    with pytest.raises(ExtractError, match="none of the identities given can decrypt it"):
        decrypt_extract(io.BytesIO(sealed), [stranger], "card/x.ledger.age")
    with pytest.raises(ExtractError, match="cannot be decrypted"):
        decrypt_extract(io.BytesIO(sealed[:-10]), [reader], "card/x.ledger.age")


def test_a_huge_extract_is_refused_before_it_fills_memory(monkeypatch, recorded: bytes, reader):
    monkeypatch.setattr(extract_module, "MAX_EXTRACT_BYTES", 70_000)
    sealed = encrypt_extract(recorded * 200, [reader.recipient])
    with pytest.raises(ExtractError, match="over 70000 bytes decrypted"):
        decrypt_extract(io.BytesIO(sealed), [reader], "x")


def test_entries_after_a_restart_are_a_later_run(tmp_path: Path, device_key):
    # The box's clock starts again at each start: an end recorded by recovery cannot be compared by it.
    path = tmp_path / "ledger.jsonl"
    clocks = SteppingClocks(now=50.0)
    ledger = open_ledger(path, None, device_key, clocks)
    for kind in (Kind.SETUP, Kind.START):
        clocks.advance(10)
        ledger.append(kind, RECORDED, **({"headcount": 1, "policy_sha256": "0" * 64} if kind is Kind.SETUP else {}))
    ledger.close(shutdown=False)  # a power cut
    clocks.now = 3.0
    with open_ledger(path, None, device_key, clocks) as restarted:
        restarted.append(Kind.END, RECORDED, reason="interrupted", kept=True)
    found = session_entries(path, RECORDED)
    extract = read_extract(build_extract(device_key, found.boot, found.entries), "x")
    assert [extract.run_of[entry.seq] for entry in (extract.boot, *extract.entries)] == [0, 0, 0, 1]
