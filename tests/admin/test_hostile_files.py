"""Files made to exhaust the admin tool, from a card or a stick: `export`, `consent-report` and `inspect`
give one line naming the file and exit 1 (export skipping only the session concerned), in bounded time and
memory (issue 15, item 6)."""

from __future__ import annotations

import dataclasses
import io
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from consentbox.admin.boxes import TrustedBox, trust_box
from consentbox.crypto import X25519Identity, encrypt
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import Kind
from consentbox.provisioning.bundle import MAX_BUNDLE_BYTES
from consentbox.recording.manifest import manifest_name, segment_name
from consentbox.recording.seal import manifest_seal
from tests.admin.test_export import line, record
from tests.support.ledgers import RECORDED, SteppingClocks, open_ledger, sample_ledger

ADMIN = str(Path(sys.executable).parent / "consentbox-admin")
#: Far more than an export needs (it streams one 64 KiB chunk at a time), far less than counting to a
#: 200-digit number takes: a run past it fails with a MemoryError instead of taking the machine down.
MEMORY_CAP = 1 << 30
#: Seconds an admin command may take here; a hang fails the test instead of stalling the run.
TIMEOUT = 60
NESTED = b"[" * 100_000 + b"]" * 100_000


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def admin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ADMIN, *args], capture_output=True, text=True, check=False, timeout=TIMEOUT,
                          preexec_fn=_capped)


def sealed(plaintext: bytes, identity: X25519Identity) -> bytes:
    out = io.BytesIO()
    encrypt(io.BytesIO(plaintext), out, [identity.recipient])
    return out.getvalue()


@pytest.mark.parametrize("number", ["0" * 199 + "1", "1" + "0" * 199, "1000"],
                         ids=["200-digits-worth-one", "200-digits", "four-digits"])
@pytest.mark.parametrize("verified", [True, False], ids=["verified", "unverified"])
def test_a_segment_number_that_is_not_three_digits_fails_its_session_in_one_line(
        journal, card, identity, key_file, tmp_path, number, box_ledger, trusted_boxes, verified):
    hostile, _ = record(card, identity, journal, [1.0], box=box_ledger)
    other, _ = record(card, identity, journal, [1.0], seed=2, box=box_ledger)
    name = f"{hostile.session}.{number}.wav.age"
    (card / name).write_bytes((card / segment_name(hostile.session, 0)).read_bytes())
    out = tmp_path / "out"
    done = admin("export", "-i", str(key_file), "--out", str(out), *_checked(verified, trusted_boxes), str(card))
    assert done.returncode == 1, done.stderr
    lines = [text for text in done.stderr.splitlines() if not text.startswith("consentbox-admin: warning:")]
    assert sorted(lines) == sorted([
        line(other, "0:00:01") + ("" if verified else ", UNVERIFIED: not checked against the box's seals"),
        f"{hostile.session}: not exported: {'refused: ' + name + ': ' if verified else ''}{name} is named as a "
        f"segment of session {hostile.session}, but the box numbers segments with three digits (000 to 999): it "
        "did not write this file"])
    assert sorted(p.name for p in out.iterdir()) == [f"{other.session}.json", f"{other.session}.wav"]


def _checked(verified: bool, trusted_boxes: Path) -> list[str]:
    """The export's options: against the trusted boxes, or --unverified (to reach the parsers with any file)."""
    return ["--boxes", str(trusted_boxes)] if verified else ["--unverified"]


def test_a_manifest_nested_100000_deep_fails_its_session_in_one_line(journal, card, identity, key_file, tmp_path,
                                                                     box_ledger, trusted_boxes):
    hostile, _ = record(card, identity, journal, [1.0], box=box_ledger)
    other, _ = record(card, identity, journal, [1.0], seed=2, box=box_ledger)
    (card / manifest_name(hostile.session)).write_bytes(sealed(NESTED, identity))
    # Verified, the box never sealed such a manifest: it is refused before it is parsed.
    done = admin("export", "-i", str(key_file), "--out", str(tmp_path / "out"), "--boxes", str(trusted_boxes),
                 str(card))
    assert done.returncode == 1, done.stderr
    assert sorted(done.stderr.splitlines()) == sorted([
        line(other, "0:00:01"),
        f"{hostile.session}: not exported: refused: {manifest_name(hostile.session)}: the manifest is not the one "
        "the box last wrote: it was replaced or edited"])
    # Unverified, the parser meets it, and stops it in one line.
    done = admin("export", "-i", str(key_file), "--out", str(tmp_path / "unverified"), "--unverified", str(card))
    assert done.returncode == 1, done.stderr
    assert sorted(done.stderr.splitlines()[1:]) == sorted([
        line(other, "0:00:01") + ", UNVERIFIED: not checked against the box's seals",
        f"{hostile.session}: not exported: manifest nests too deep for any file of ours"])


def test_consent_report_on_a_manifest_nested_100000_deep_is_one_line(card, identity, key_file, tmp_path):
    # The manifest first: the box keeps an extract of the ledger on the cards that hold the session's files.
    hostile = sealed(NESTED, identity)
    (card / manifest_name(RECORDED)).write_bytes(hostile)
    key = DeviceSigningKey.generate(secret=bytes(range(32)))
    sample_ledger(tmp_path / "box-ledger.jsonl", card, key, runs=1, readers=[identity.recipient])
    boxes = tmp_path / "boxes"
    trust_box(boxes, TrustedBox(key.public_key, "Room 1"))
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(boxes), str(card), RECORDED)
    assert done.returncode == 1 and "is not the box's: not read" in done.stdout  # never parsed
    assert done.stderr.startswith(f"consentbox-admin: session {RECORDED}: refused: {manifest_name(RECORDED)}: no "
                                  "seal of the box names this manifest")
    # Even a manifest the box had sealed (it never writes one like this) meets a bounded parser.
    with open_ledger(tmp_path / "box-ledger.jsonl", card, key, SteppingClocks(), readers=[identity.recipient]) as box:
        box.append(Kind.SEAL, RECORDED, **dataclasses.asdict(manifest_seal(hostile)))
    done = admin("consent-report", "-i", str(key_file), "--boxes", str(boxes), str(card), RECORDED)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"consentbox-admin: {manifest_name(RECORDED)}: manifest nests too deep for any file "
                           "of ours\n")


def test_inspect_refuses_a_huge_bundle_by_its_size_without_reading_it(tmp_path):
    path = tmp_path / "consentbox-v9.cbundle"
    with open(path, "wb") as sparse:
        sparse.truncate(64 << 30)  # 64 GiB of nothing, on a stick
    for args in (["inspect", str(path)], ["inspect", "--installed", str(path), str(path)]):
        done = admin(*args)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == (f"consentbox-admin: bundle too large: {path} is {64 << 30} bytes, "
                               f"the cap is {MAX_BUNDLE_BYTES}\n")
