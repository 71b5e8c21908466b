"""The ledger holds only the documented fields: docs/formats.md, the code's closed sets and real entries agree."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from consentbox.crypto.signing import DevicePublicKey, DeviceSigningKey
from consentbox.ledger import RULES, Entry, Kind, LedgerError, SessionRule, verify
from consentbox.ledger.entry import (
    BUNDLE_REFUSALS,
    DESTRUCTION_CAUSES,
    END_REASONS,
    ENVELOPE,
    EXPIRY_REASONS,
    REFUSAL_WORDS,
    SIGNING_CONTEXT,
)
from consentbox.storage.canonical import canonical_json
from tests.support.ledgers import SteppingClocks, open_ledger

FORMATS = Path(__file__).resolve().parents[2] / "docs" / "formats.md"
CELL = re.compile(r"`([a-z_0-9]+)`")


def ledger_section() -> str:
    text = FORMATS.read_text(encoding="utf-8")
    assert "\n## Consent ledger\n" in text, "docs/formats.md has no Consent ledger section"
    return text.split("\n## Consent ledger\n", 1)[1].split("\n## ", 1)[0]


def table(header: str) -> list[list[str]]:
    """The rows (cells stripped) of the table in the ledger section whose header row starts with `header`."""
    lines = ledger_section().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def documented_kinds() -> dict[str, tuple[str, set[str]]]:
    return {CELL.fullmatch(row[0])[1]: (row[1], set(CELL.findall(row[2])))
            for row in table("| kind | session | fields |")}


def test_the_documented_kinds_are_the_code_s_closed_sets():
    documented = documented_kinds()
    assert set(documented) == {kind.value for kind in Kind}
    for kind, rule in RULES.items():
        session, fields = documented[kind.value]
        assert session == rule.session.value, kind
        assert fields == set(rule.fields), kind


def test_every_envelope_key_and_every_field_is_described():
    assert {CELL.fullmatch(row[0])[1] for row in table("| key | type | meaning |")} == ENVELOPE
    described = {CELL.fullmatch(row[0])[1] for row in table("| field | type | meaning |")}
    assert described == {name for rule in RULES.values() for name in rule.fields}


def test_every_entry_of_a_real_ledger_has_exactly_its_documented_keys(sample: bytes):
    documented = documented_kinds()
    seen = set()
    for line in sample.splitlines():
        entry = json.loads(line)
        assert set(entry) == ENVELOPE
        session_rule, fields = documented[entry["kind"]]
        assert set(entry["fields"]) == fields, entry["kind"]
        if session_rule == SessionRule.NONE.value:
            assert entry["session"] is None
        elif session_rule == SessionRule.REQUIRED.value:
            assert re.fullmatch(r"[0-9a-f]{16}", entry["session"])
        seen.add(entry["kind"])
    assert seen == {kind.value for kind in Kind}, "the sample ledger should hold every kind"


def test_no_string_in_a_real_ledger_could_hold_a_name(sample: bytes):
    # Every string is a key, digest, signature, time, version, id, or a word from a fixed list.
    fixed_words = (set(REFUSAL_WORDS) | set(END_REASONS) | set(DESTRUCTION_CAUSES) | set(BUNDLE_REFUSALS)
                   | set(EXPIRY_REASONS) | {k.value for k in Kind})
    patterns = [re.compile(p) for p in (r"[0-9a-f]{16}", r"[0-9a-f]{64}", r"[0-9a-f]{128}", r"\d{4}-\d\d-\d\d",
                                        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", r"\d+\.\d+\.\d+")]

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)

    for line in sample.splitlines():
        for text in strings(json.loads(line)):
            if text.startswith("consentbox-device-ed25519:"):
                DevicePublicKey.parse(text)
                continue
            assert text in fixed_words or any(p.fullmatch(text) for p in patterns), text


def test_a_withdrawal_s_destruction_is_written_withdrawn_and_an_old_ledger_s_withdrawal_is_read_so(tmp_path: Path):
    # Issue 17 renamed the cause; ledgers written before, signed with the old word, must still verify and read.
    key = DeviceSigningKey.generate(secret=bytes(range(32)))
    path, session = tmp_path / "ledger.jsonl", "0123456789abcdef"
    with open_ledger(path, None, key, SteppingClocks()) as ledger:
        ledger.append(Kind.DESTRUCTION, session, files=2, cause="withdrawn", due="2026-06-05")
    *earlier, written, shutdown = path.read_bytes().splitlines()
    assert json.loads(written)["fields"]["cause"] == "withdrawn"

    def signed(values: dict) -> bytes:
        del values["sig"]
        return canonical_json({**values, "sig": key.sign(SIGNING_CONTEXT + canonical_json(values)).hex()})

    old = json.loads(written)  # the same entry as a box before issue 17 wrote it, and the next entry's link to it
    old["fields"]["cause"] = "withdrawal"
    old_line = signed(old)
    after = {**json.loads(shutdown), "prev": hashlib.sha256(old_line).hexdigest()}
    path.write_bytes(b"".join(line + b"\n" for line in [*earlier, old_line, signed(after)]))
    [read] = verify(path, key.public_key, session=session).selected
    assert read.fields["cause"] == "withdrawn" and b'"cause":"withdrawal"' in read.line
    with pytest.raises(LedgerError, match="expected one of 'withdrawn', 'retention', 'absent', 'off_box'"):
        Entry.parse(read.line.replace(b'"withdrawal"', b'"withdrawed"'), "line 1")
