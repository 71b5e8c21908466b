"""After a power cut at any disk call, the seals the box made before it and those start-up recovery adds
bind every file of the session that is on the card.

Each trial forks a child that records a session as the box does (two capture intervals, the first long
enough to pass a checkpoint and rotate its segment) and loses power at its k-th disk call
(tests/support/power_cuts.py), k running over every third call. Its seals go to a file with the real
`os.write`, as the box's ledger entries would, so a seal is recorded whole or not at all. Then recovery
runs as at the next start, and for every file of the session on the card, the last seal naming it must
bind it: a final seal the whole file, another its first `bytes` bytes; and the frames a seal counts
must be the audio those bytes decrypt to.
"""

from __future__ import annotations

import hashlib
import io
import json
import mmap
import os
import random
import signal
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from consentbox.core.policy import Policy
from consentbox.core.reasons import EndReason
from consentbox.crypto import X25519Identity, decrypt
from consentbox.hw.card import CardDirectory
from consentbox.recording.journal import Journal, JournalError
from consentbox.recording.manifest import manifest_name, segment_name
from consentbox.recording.recovery import recover_interrupted
from consentbox.recording.seal import Seal
from consentbox.recording.session import SessionFiles
from consentbox.recording.wav import HEADER_SIZE
from tests.support.power_cuts import cut_power_at

POLICY = Policy(segment_bytes=9 << 18)  # a new segment every ~24.5 s of audio (36 chunks): a checkpoint in each
PLAN = (26.0, 1.0)  # seconds of each capture interval
STEP = 4 * POLICY.period_frames * POLICY.frame_bytes  # bytes of audio a write
SESSION = "5ea15ea15ea15ea1"
IDENTITY = X25519Identity.generate(secret=bytes(range(32)))
STARTED = datetime(2026, 5, 6, 14, 0, tzinfo=UTC)
NEVER = 1 << 62
TIMEOUT = 60  # seconds a child may take; a hang fails the trial


def _journal_failed(error: JournalError) -> None:
    raise AssertionError(f"journal failed: {error}")


def _record(card: Path, state: Path, seals: Path, call: int, calls: memoryview) -> None:
    """In a forked child: record the session, losing power at disk call `call`; never returns."""
    try:
        signal.alarm(TIMEOUT)
        real_write = os.write
        ledger = os.open(seals, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

        def on_seal(seal: Seal) -> None:
            real_write(ledger, json.dumps(asdict(seal)).encode() + b"\n")

        journal = Journal(state, on_failure=_journal_failed)
        cut_power_at(call, calls, rng=random.Random(call))
        files = SessionFiles.create(card, SESSION, [IDENTITY.recipient], POLICY, headcount=2,
                                    consents=[(1, 1.0), (2, 2.0)], started=STARTED, journal=journal,
                                    on_seal=on_seal)
        noise = random.Random(0).randbytes(round(max(PLAN) * POLICY.rate) * POLICY.frame_bytes)
        offset = 5.0
        for seconds in PLAN:
            files.start_interval(offset)
            audio = noise[:round(seconds * POLICY.rate) * POLICY.frame_bytes]
            for at in range(0, len(audio), STEP):
                files.write(audio[at:at + STEP])
            offset += seconds
            files.stop_interval(offset, len(audio) // POLICY.frame_bytes)
            offset += 3.0
        files.finalise(EndReason.ENDED, offset, withdrawn=False)
        os._exit(0)
    except BaseException:
        (seals.parent / "child-error").write_text(traceback.format_exc())
        os._exit(1)


def _run(root: Path, call: int) -> tuple[Path, Journal, list[Seal], int]:
    """One trial under `root`: the card, the box's journal, the seals the child made, and its disk calls."""
    card, state, seals = root / "card", root / "state", root / "seals.jsonl"
    card.mkdir(parents=True)
    calls = memoryview(mmap.mmap(-1, 8)).cast("q")
    pid = os.fork()
    if pid == 0:
        _record(card, state, seals, call, calls)
    _wait(pid)
    assert not (root / "child-error").exists(), (root / "child-error").read_text()
    made = [Seal(**json.loads(line)) for line in seals.read_bytes().splitlines()] if seals.exists() else []
    return card, Journal(state, on_failure=_journal_failed), made, calls[0]


def _wait(pid: int) -> None:
    """Reap the child: it ended, or the power cut killed it (or its alarm, if it hung)."""
    _, status = os.waitpid(pid, 0)
    assert not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM), \
        f"the recording child hung for {TIMEOUT} s"
    assert os.WIFEXITED(status) or os.WTERMSIG(status) == signal.SIGKILL, status


class Told(list[tuple[str, Seal]]):
    """The seals recovery made, by session."""

    def __call__(self, session: str, seal: Seal) -> None:
        self.append((session, seal))


def _frames(data: bytes) -> int:
    out = io.BytesIO()
    decrypt(io.BytesIO(data), out, [IDENTITY], salvage=True)
    return max(0, len(out.getvalue()) - HEADER_SIZE) // POLICY.frame_bytes


def _check_bound(card: Path, seals: list[Seal]) -> None:
    last = {seal.segment: seal for seal in seals}
    on_card = {path.name for path in card.iterdir() if not path.name.startswith(".")}
    for name in on_card:
        segment = None if name == manifest_name(SESSION) else int(name.split(".")[1])
        assert segment is None or name == segment_name(SESSION, segment), name
        assert segment in last, f"{name} is on the card but was never sealed"
        seal, data = last[segment], (card / name).read_bytes()
        if seal.final:
            assert (seal.bytes, hashlib.sha256(data).hexdigest()) == (len(data), seal.sha256), name
        else:
            assert len(data) >= seal.bytes, name
            assert hashlib.sha256(data[:seal.bytes]).hexdigest() == seal.sha256, name
        if segment is not None:
            assert seal.frames == (_frames(data[:seal.bytes]) if seal.bytes else 0), name
        else:
            assert seal.final and seal.frames is None


def test_after_a_power_cut_at_any_disk_call_recovery_leaves_every_file_on_the_card_sealed(tmp_path: Path):
    *_, calls = _run(tmp_path / "whole", NEVER)
    recovered = 0
    # Every third disk call of a whole session (a write or a sync alike, as they alternate), and none.
    for call in [*range(1, calls + 1, 3), calls + 1]:
        card, journal, seals, _ = _run(tmp_path / f"cut-{call}", call)
        told = Told()
        recovered += bool(recover_interrupted(CardDirectory(card, POLICY), journal, [IDENTITY.recipient],
                                              on_seal=told))
        assert {session for session, _ in told} <= {SESSION}
        _check_bound(card, seals + [seal for _, seal in told])
    assert recovered >= calls // 6  # most cuts left the session open for recovery to finish
