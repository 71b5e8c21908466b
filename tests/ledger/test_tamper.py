"""Every kind of tampering with a real ledger is caught and named; the end of the file is reported as what it is.

A random single edit (a byte, a field, a deleted, inserted, moved or foreign entry, a cut from the
middle) is always an error naming the first line that is not intact. The only edits that are not
errors are at the tail: a torn last line is reported as a truncated tail, and whole entries cut
cleanly off the end leave a shorter ledger that is intact as far as it goes (the documented limit:
only another record, such as the box's copy or a manifest's range, can show those).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import Entry, Kind, LedgerError, Tail, verify
from consentbox.ledger.entry import SIGNING_CONTEXT
from consentbox.storage.canonical import canonical_json

EDIT_KINDS = ["byte", "field", "delete", "insert", "swap", "splice", "splice-insert", "splice-same-key",
              "cut-middle", "resign"]


def lines_of(data: bytes) -> list[bytes]:
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def joined(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def reported_line(error: LedgerError) -> int:
    match = re.search(r" line (\d+)[ :]", str(error))
    assert match, f"the error does not name a line: {error}"
    return int(match[1])


def first_difference(before: list[bytes], after: bytes) -> int:
    """The 1-based number of the first line of `after` that is not the same line of `before`."""
    edited = after.split(b"\n")
    for index, line in enumerate(edited):
        if index >= len(before) or line != before[index]:
            return index + 1
    raise AssertionError("nothing was changed")


def mutate_value(value, data: st.DataObject):
    """A different JSON value in place of `value`."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + data.draw(st.integers(-5, 5).filter(bool))
    if isinstance(value, float):
        return value + data.draw(st.sampled_from([-1.0, 0.001, 0.5, 3600.0]))
    if isinstance(value, str):
        if not value:
            return "x"
        at = data.draw(st.integers(0, len(value) - 1))
        replacement = data.draw(st.sampled_from("0123456789abcdefAlice +:=-").filter(lambda c: c != value[at]))
        return value[:at] + replacement + value[at + 1:]
    if value is None:
        return data.draw(st.sampled_from([1, "0123456789abcdef", True]))
    if isinstance(value, dict):
        if value and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(value)))
            return {**value, key: mutate_value(value[key], data)}
        return {**value, data.draw(st.sampled_from(["name", "note", "seat", "audio"])): "Alice Example"}
    raise AssertionError(f"unexpected JSON value {value!r}")


def tamper(kind: str, ours: list[bytes], theirs: list[bytes], sibling: list[bytes], other_key: DeviceSigningKey,
           data: st.DataObject) -> bytes:
    """`ours` (as a file) with one edit of `kind`, drawn at random."""
    count = len(ours)
    index = data.draw(st.integers(0, count - 1), label="line index")
    lines = list(ours)
    if kind == "byte":
        whole = joined(lines)
        start = sum(len(line) + 1 for line in lines[:index])
        at = data.draw(st.integers(start, start + len(lines[index])), label="byte offset")
        new = data.draw(st.integers(0, 255).filter(lambda b: b != whole[at]), label="new byte")
        return whole[:at] + bytes([new]) + whole[at + 1:]
    if kind == "field":
        values = json.loads(lines[index])
        key = data.draw(st.sampled_from(sorted(values)), label="key")
        values[key] = mutate_value(values[key], data)
        lines[index] = canonical_json(values)
    elif kind == "resign":
        # An attacker with a key of their own edits an entry and signs it again.
        values = json.loads(lines[index])
        key = data.draw(st.sampled_from(sorted(set(values) - {"sig"})), label="key")
        values[key] = mutate_value(values[key], data)
        del values["sig"]
        values["sig"] = other_key.sign(SIGNING_CONTEXT + canonical_json(values)).hex()
        lines[index] = canonical_json(values)
    elif kind == "delete":
        del lines[index]
    elif kind == "insert":
        source = data.draw(st.integers(0, count - 1), label="copied line")
        lines.insert(data.draw(st.integers(0, count), label="insert at"), lines[source])
    elif kind == "swap":
        other = data.draw(st.integers(0, count - 1).filter(lambda i: i != index), label="swapped with")
        lines[index], lines[other] = lines[other], lines[index]
    elif kind == "splice":
        lines[index] = theirs[data.draw(st.integers(0, len(theirs) - 1), label="foreign line")]
    elif kind == "splice-same-key":
        # The same key's entry with the same number, from a ledger begun again: only the chain tells.
        lines[index] = sibling[index]
    elif kind == "splice-insert":
        foreign = theirs[data.draw(st.integers(0, len(theirs) - 1), label="foreign line")]
        lines.insert(data.draw(st.integers(0, count), label="insert at"), foreign)
    elif kind == "cut-middle":
        end = data.draw(st.integers(index + 1, count - 1), label="cut until") if index < count - 1 else None
        if end is None:
            index, end = count - 2, count - 1
        del lines[index:end]
    else:
        raise AssertionError(kind)
    return joined(lines)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), kind=st.sampled_from(EDIT_KINDS), with_key=st.booleans())
def test_every_single_edit_is_detected_or_reported_as_a_truncated_tail(
    tmp_path: Path, sample: bytes, other_sample: bytes, sibling_sample: bytes, device_key, other_box_key,
    data, kind, with_key,
):
    ours, theirs, sibling = lines_of(sample), lines_of(other_sample), lines_of(sibling_sample)
    edited = tamper(kind, ours, theirs, sibling, other_box_key, data)
    if edited == sample:
        return  # e.g. a line swapped with an identical one: no edit at all
    path = tmp_path / "edited.jsonl"
    path.write_bytes(edited)
    key = device_key.public_key if with_key else None
    try:
        summary = verify(path, key)
    except LedgerError as error:
        changed = first_difference(ours, edited)
        # A first line that could begin a ledger (another box's, with no key expected; or one the
        # same key began again) is as good a start as ours, so line 2 is the first that does not fit.
        could_begin = changed == 1 and (not with_key or kind == "splice-same-key")
        assert reported_line(error) == (changed + 1 if could_begin and reported_line(error) != 1 else changed), (
            kind, str(error))
        return
    # Not an error: only the tail can have been touched, and it must be reported for what it is.
    assert edited.startswith(joined(ours[:-1])), f"{kind} edit went undetected"
    if summary.tail is Tail.TORN:
        assert summary.entries == len(ours) - 1 and summary.torn_bytes == len(edited) - len(joined(ours[:-1]))
    else:
        # A clean cut of the last entry: undetectable in the file alone, and exactly one entry short.
        assert kind in ("delete", "cut-middle") and edited == joined(ours[:-1])
        assert summary.entries == len(ours) - 1 and summary.last.seq == len(ours) - 2


def test_the_intact_sample_verifies_with_and_without_its_key(ledger_file: Path, sample: bytes, device_key):
    for key in (None, device_key.public_key):
        summary = verify(ledger_file, key)
        assert summary.entries == len(lines_of(sample)) and summary.tail is Tail.COMPLETE
        assert summary.device_key == device_key.public_key
        assert (summary.boots, summary.gaps, summary.sessions) == (2, 1, 6)
        assert summary.first.kind is Kind.BOOT and summary.last.kind is Kind.SHUTDOWN


def rewrite(path: Path, edit) -> None:
    lines = lines_of(path.read_bytes())
    edit(lines)
    path.write_bytes(joined(lines))


def error_of(path: Path, key=None) -> str:
    with pytest.raises(LedgerError) as caught:
        verify(path, key)
    return str(caught.value)


def test_an_edited_field_is_named_by_line_and_sequence(ledger_file: Path):
    def edit(lines):
        values = json.loads(lines[6])
        assert values["kind"] == "consent" and values["fields"]["seat"] == 1
        values["fields"]["seat"] = 4
        lines[6] = canonical_json(values)
    rewrite(ledger_file, edit)
    assert error_of(ledger_file).endswith("line 7 (seq 6): signature does not verify with device key "
                                          f"{verify_key(ledger_file)}: the entry was edited, or comes from "
                                          "another box's ledger")


def verify_key(path: Path) -> str:
    return json.loads(path.read_bytes().split(b"\n")[0])["fields"]["device_key"]


def test_a_deleted_entry(ledger_file: Path):
    rewrite(ledger_file, lambda lines: lines.pop(7))
    assert error_of(ledger_file).endswith("line 8: sequence number 8 where 7 was expected: "
                                          "entry 7 is missing (deleted)")


def test_a_truncation_in_the_middle(ledger_file: Path):
    rewrite(ledger_file, lambda lines: lines.__delitem__(slice(10, 20)))
    assert error_of(ledger_file).endswith("line 11: sequence number 20 where 10 was expected: "
                                          "entries 10–19 are missing (deleted)")


def test_an_inserted_copy(ledger_file: Path):
    rewrite(ledger_file, lambda lines: lines.insert(12, lines[3]))
    assert error_of(ledger_file).endswith("line 13: sequence number 3 where 12 was expected: "
                                          "an entry was inserted, repeated or moved")


def test_a_reorder(ledger_file: Path):
    def swap(lines):
        lines[8], lines[9] = lines[9], lines[8]
    rewrite(ledger_file, swap)
    assert "line 9: sequence number 9 where 8 was expected" in error_of(ledger_file)


def test_an_entry_spliced_from_another_box(ledger_file: Path, other_sample: bytes):
    rewrite(ledger_file, lambda lines: lines.__setitem__(4, lines_of(other_sample)[4]))
    assert "line 5 (seq 4): signature does not verify" in error_of(ledger_file)


def test_an_entry_replayed_within_the_ledger_with_its_number_changed_fails_its_signature(ledger_file: Path):
    def replay(lines):
        values = json.loads(lines[6])
        values["seq"] = 7
        lines[7] = canonical_json(values)
    rewrite(ledger_file, replay)
    assert "line 8 (seq 7): signature does not verify" in error_of(ledger_file)


def test_an_entry_of_the_same_key_from_a_ledger_begun_again(ledger_file: Path, sibling_sample: bytes):
    rewrite(ledger_file, lambda lines: lines.__setitem__(9, lines_of(sibling_sample)[9]))
    assert error_of(ledger_file).endswith("line 10 (seq 9): does not follow the entry before it (the "
                                          "previous-entry hash differs): it comes from another ledger, or "
                                          "the one before it was replaced")


def test_another_box_s_whole_ledger_is_named_as_theirs_or_refused_with_our_key(
    ledger_file: Path, other_sample: bytes, device_key, other_box_key,
):
    ledger_file.write_bytes(other_sample)
    assert verify(ledger_file).device_key == other_box_key.public_key  # shown, so a reader can compare
    assert error_of(ledger_file, device_key.public_key).endswith(
        f"line 1 (seq 0): the ledger was written by device key {other_box_key.public_key}, not by the "
        f"expected {device_key.public_key}")


def test_the_wrong_key_is_refused_at_the_first_entry(ledger_file: Path, device_key, other_box_key):
    message = error_of(ledger_file, other_box_key.public_key)
    assert "line 1 (seq 0): the ledger was written by device key" in message


def test_a_ledger_whose_first_entry_names_a_key_it_was_not_started_with(ledger_file: Path, other_box_key):
    # The attacker's boot entry, signed by their key, but chained to our genesis: still refused.
    def forge(lines):
        values = json.loads(lines[0])
        values["fields"]["device_key"] = other_box_key.public_key.to_string()
        del values["sig"]
        values["sig"] = other_box_key.sign(SIGNING_CONTEXT + canonical_json(values)).hex()
        lines[0] = canonical_json(values)
    rewrite(ledger_file, forge)
    assert "line 1 (seq 0): does not begin a ledger of device key" in error_of(ledger_file)


def test_a_re_spelled_line_is_an_edit_even_if_it_means_the_same(ledger_file: Path):
    rewrite(ledger_file, lambda lines: lines.__setitem__(3, lines[3].replace(b'"format":1', b'"format": 1')))
    assert error_of(ledger_file).endswith("line 4: not in canonical form: the line was edited")


def test_a_torn_last_line_is_a_truncated_tail_not_tampering(ledger_file: Path, sample: bytes):
    ledger_file.write_bytes(sample[:-40])
    summary = verify(ledger_file)
    assert summary.tail is Tail.TORN and summary.entries == len(lines_of(sample)) - 1
    assert summary.torn_bytes == len(lines_of(sample)[-1]) + 1 - 40


def test_a_clean_cut_at_the_end_is_intact_as_far_as_it_goes(ledger_file: Path, sample: bytes):
    lines = lines_of(sample)
    ledger_file.write_bytes(joined(lines[:30]))
    summary = verify(ledger_file)
    assert summary.tail is Tail.COMPLETE and summary.last.seq == 29  # only a later record can say more


def test_an_empty_file_or_a_lone_partial_entry_is_not_a_ledger(tmp_path: Path, sample: bytes):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b"")
    assert "is empty" in error_of(path)
    path.write_bytes(sample[:100])
    assert "holds no complete entry, only 100 bytes of a partial one" in error_of(path)


def test_a_ledger_must_begin_with_a_boot_entry(ledger_file: Path, device_key):
    entry = Entry.parse(lines_of(ledger_file.read_bytes())[1], "test")
    assert entry.kind is not Kind.BOOT
    forged = Entry.create(device_key, seq=0, kind=entry.kind, wall=entry.wall, mono=entry.mono,
                          session=entry.session, fields=entry.fields, prev="0" * 64)
    ledger_file.write_bytes(forged.line + b"\n")
    assert "line 1 (seq 0): a ledger begins with a boot entry" in error_of(ledger_file)


def test_an_over_long_line_is_refused_without_reading_it_all(tmp_path: Path):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b"x" * 200_000 + b"\n")
    assert "line 1 is over 65536 bytes" in error_of(path)


def test_a_later_boot_naming_another_device_key_is_refused(ledger_file: Path, device_key, other_box_key):
    # One ledger, one device key: a second boot that names another key, signed and chained by ours
    # (only the box could make it), must not hand the rest of the ledger to another signer.
    entries = [Entry.parse(line, "test") for line in lines_of(ledger_file.read_bytes())]
    second_boot = [entry.seq for entry in entries if entry.kind is Kind.BOOT][1]
    lines, prev = [], entries[0].prev
    for entry in entries:
        fields = dict(entry.fields)
        if entry.seq == second_boot:
            fields["device_key"] = other_box_key.public_key.to_string()
        resigned = Entry.create(device_key, seq=entry.seq, kind=entry.kind, wall=entry.wall, mono=entry.mono,
                                session=entry.session, fields=fields, prev=prev)
        lines.append(resigned.line)
        prev = resigned.digest
    ledger_file.write_bytes(joined(lines))
    assert error_of(ledger_file).endswith(
        f"line {second_boot + 1} (seq {second_boot}): boot entry names device key {other_box_key.public_key}, "
        f"not the ledger's {device_key.public_key}")


@pytest.mark.parametrize("version", [2, "1", True])
def test_an_entry_of_another_format_version_is_refused_even_if_signed(ledger_file: Path, device_key, version):
    # Re-signed by the box's own key, so only the version differs: the reader must not guess at a format.
    def other_format(lines):
        values = json.loads(lines[3])
        values["format"] = version
        del values["sig"]
        values["sig"] = device_key.sign(SIGNING_CONTEXT + canonical_json(values)).hex()
        lines[3] = canonical_json(values)
    rewrite(ledger_file, other_format)
    message = error_of(ledger_file)
    assert "\n" not in message
    assert message.endswith(f"line 4: format {version!r}: this tool reads format 1; update consentbox-admin")
