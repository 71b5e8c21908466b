"""Crashes: a box process killed at random points, and power cuts that tear the entry being written.

Each trial forks a child that opens the ledger (the box's file, and the card's extracts of the
sessions it records there) and appends entries until it is killed with SIGKILL a random number of
entries in. Every entry the child was told is written must be there, the ledger must verify, and
each extract on the card must verify and hold the first entries of its session as the box's ledger
has them. SIGKILL cannot tear a write (the kernel finishes it), so every other trial also does what
only a power cut can: it leaves part of one more entry at the end of the box's file, or half an
extract in the temporary file it is written to before it replaces the old one. The next start must
cut the entry and record the gap; a card brought up to date must hold every extract whole.
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

from consentbox.admin.extracts import load_extract
from consentbox.core.reasons import EndReason, Problem
from consentbox.crypto import X25519Recipient
from consentbox.ledger import Entry, Kind, Tail, verify
from consentbox.recording.manifest import manifest_name
from consentbox.state.files import LEDGER
from consentbox.storage.atomic import temporary_name
from tests.support.ledgers import SteppingClocks, open_ledger

TRIALS = 60


def append_until_killed(box: Path, card: Path, key, reader: X25519Recipient, report: int) -> None:
    """The child: open the ledger, then append entries forever, telling the parent of each."""
    clocks = SteppingClocks()
    ledger = open_ledger(box, card, key, clocks, readers=[reader])
    os.write(report, b"o")
    session = os.urandom(8).hex()
    while True:
        clocks.advance(0.25)
        (card / manifest_name(session)).write_bytes(b"age ciphertext")  # its files are on the card
        ledger.append(Kind.SETUP, session, headcount=2, policy_sha256="0" * 64)
        os.write(report, b".")
        for seat in (1, 2):
            ledger.append(Kind.CONSENT, session, seat=seat)
            os.write(report, b".")
        ledger.append(Kind.START, session)
        os.write(report, b".")
        ledger.append(Kind.FAULT, session, problem=Problem.CARD_FULL)
        os.write(report, b".")
        ledger.append(Kind.END, session, reason=EndReason.CARD_FULL, kept=True)
        os.write(report, b".")
        session = os.urandom(8).hex()


def run_child_until(box: Path, card: Path, key, reader: X25519Recipient, acknowledged: int) -> tuple[bool, int]:
    """Fork a child, kill it once `acknowledged` entries are confirmed; (whether it opened, entries confirmed)."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_end)
            append_until_killed(box, card, key, reader, write_end)
        finally:
            os._exit(1)
    os.close(write_end)
    seen = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while len(seen) < acknowledged + 1:
            data = pipe.read(1)
            if not data:
                break  # the child died on its own: the test fails below
            seen += data
        os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the child stopped by itself"
    return seen.startswith(b"o"), seen.count(b".")


def card_holds_the_box_s_sessions(card: Path, box: Path, key, reader, *, whole: bool) -> int:
    """Every extract on the card verifies and holds its session's first entries (`whole`: all of them) as the
    box's ledger has them; how many extracts there are."""
    names = [name for name in os.listdir(card) if name.endswith(".ledger.age")]
    in_box: dict[str | None, list[Entry]] = {}
    for number, line in enumerate(box.read_bytes().splitlines()):  # verified whole by the caller
        entry = Entry.parse(line, f"line {number + 1}")
        in_box.setdefault(entry.session, []).append(entry)
    for name in names:
        session = name[:16]
        extract = load_extract(card / name, [reader], session=session, device_key=key.public_key)
        expected = tuple(in_box[session])
        assert extract.entries == (expected if whole else expected[:len(extract.entries)]), name
    return len(names)


def test_killed_at_random_points_the_ledger_always_verifies_and_the_gaps_are_recorded(tmp_path: Path,
                                                                                      device_key, reader):
    box = tmp_path / "box" / LEDGER
    box.parent.mkdir()
    card = tmp_path / "card"
    card.mkdir()
    source = random.Random(20260506)
    before = 0
    tears = 0
    torn_box = False
    for trial in range(TRIALS):
        opened, confirmed = run_child_until(box, card, device_key, reader.recipient, source.randint(0, 14))
        assert opened
        summary = verify(box, device_key.public_key)
        assert summary.tail is Tail.COMPLETE, f"trial {trial}: SIGKILL tore an entry"
        # Everything the child was told is written is there: its boot, the gap if the box's file was
        # torn before this start, and every confirmed entry.
        assert summary.entries >= before + 1 + torn_box + confirmed, f"trial {trial}: confirmed entries lost"
        if torn_box:
            box_lines = box.read_bytes().splitlines()
            assert b'"kind":"boot"' in box_lines[before] and b'"kind":"gap"' in box_lines[before + 1]
        card_holds_the_box_s_sessions(card, box, device_key, reader, whole=False)
        before = summary.entries
        # A power cut while the next entry was being written: part of it, or blocks of zeros.
        torn_box = False
        cut = source.choice(["none", "box", "card"])
        if cut != "none":
            extracts = sorted(name for name in os.listdir(card) if name.endswith(".ledger.age"))
            target = box if cut == "box" or not extracts else card / temporary_name(source.choice(extracts))
            tail = source.choice([b'{"fields":{"seat":2},"format":1,"kind":"con', b"\0" * source.randint(1, 600),
                                  bytes(source.randrange(1, 256) for _ in range(source.randint(1, 40)))])
            with open(target, "ab") as out:
                out.write(tail.replace(b"\n", b" "))
            torn_box = target == box
            tears += torn_box
    # The last start after it all, the card brought up to date as the box does when it sees it: the box's
    # file ends whole, and every session on the card has its whole extract, and no temporary is left.
    with open_ledger(box, card, device_key, SteppingClocks(), readers=[reader.recipient]) as ledger:
        assert ledger.sync_card()
    summary = verify(box, device_key.public_key)
    assert summary.tail is Tail.COMPLETE and summary.gaps == tears and summary.boots == TRIALS + 1
    assert card_holds_the_box_s_sessions(card, box, device_key, reader, whole=True) >= TRIALS
    assert not [name for name in os.listdir(card) if name.startswith(".")]
    assert tears >= 10  # the seed gives a fair number of power cuts
