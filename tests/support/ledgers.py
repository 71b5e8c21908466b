"""Ledgers for tests and demos: stepping clocks, and a ledger that holds every kind of entry.

A real ledger (real keys, real files, the real writer) whose times are exact, so tests can tamper
with it, compare it with a manifest, or read it back entry by entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from consentbox.core.policy import Policy
from consentbox.core.provisioning import BundleRefusal
from consentbox.core.reasons import EndReason, Problem, Refusal
from consentbox.crypto import X25519Recipient
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.card import CardDirectory
from consentbox.hw.ports import Card
from consentbox.ledger import Kind
from consentbox.ledger.writer import Ledger
from consentbox.recording.manifest import policy_digest

#: When the stepping clocks start: the wall-clock time at monotonic 0.
EPOCH = datetime(2026, 5, 6, 14, 0, tzinfo=timezone(timedelta(hours=2)))
POLICY_SHA256 = policy_digest(Policy())
RECORDED = "0123456789abcdef"  # a session recorded, paused, resumed and ended
WITHDRAWN = "fedcba9876543210"  # a session withdrawn while recording and destroyed
ABANDONED = "00000000ffffffff"  # a set-up that timed out before everyone consented


def in_run(session: str, run: int) -> str:
    """The id `session` has in the box's start number `run` (0: the id itself); ids never repeat."""
    return f"{session[:-2]}{(int(session[-2:], 16) + run) % 256:02x}"


@dataclass
class SteppingClocks:
    """The box's two clocks, moved only by the test: `now` seconds on the monotonic clock."""

    now: float = 0.0
    epoch: datetime = field(default=EPOCH)

    def monotonic(self) -> float:
        """Seconds since the box started."""
        return self.now

    def wall(self) -> datetime:
        """The wall-clock time, with its UTC offset."""
        return self.epoch + timedelta(seconds=self.now)

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.now += seconds


def open_ledger(path: Path, card: Card | Path | None, key: DeviceSigningKey, clocks: SteppingClocks, *,
                readers: Sequence[X25519Recipient] = ()) -> Ledger:
    """`Ledger.open` on the stepping clocks, the card's extracts for `readers`; a card given as a directory is
    a `CardDirectory`."""
    if isinstance(card, Path):
        card = CardDirectory(card, Policy())
    return Ledger.open(path, card, key, wall_clock=clocks.wall, monotonic=clocks.monotonic,
                       readers=lambda: tuple(readers))


def write_every_kind(ledger: Ledger, clocks: SteppingClocks, run: int = 0) -> None:
    """Append a morning's entries: three sessions, a refusal, faults, provisioning, a wipe, a clock fix.

    The sessions are RECORDED, WITHDRAWN and ABANDONED, as `in_run(…, run)` names them.
    """
    step = clocks.advance
    recorded, withdrawn, abandoned = (in_run(s, run) for s in (RECORDED, WITHDRAWN, ABANDONED))
    ledger.append(Kind.PROVISIONING, bundle_version=4, recipients=2, bundle_sha256="ab" * 32)
    step(1)
    ledger.append(Kind.CLOCK_CORRECTION, delta=-3.25)
    step(1)
    ledger.append(Kind.REFUSED, reason=Problem.NO_CARD)
    step(10)
    ledger.append(Kind.SETUP, recorded, headcount=2, policy_sha256=POLICY_SHA256)
    step(1)
    ledger.append(Kind.HEADCOUNT, recorded, headcount=3)
    step(1)
    ledger.append(Kind.CONSENT, recorded, seat=1)
    step(1)
    ledger.append(Kind.CONSENT, recorded, seat=2)
    ledger.append(Kind.REFUSED, recorded, reason=Refusal.HEADCOUNT_FIXED)
    step(1)
    ledger.append(Kind.CONSENT, recorded, seat=3)
    step(2)
    ledger.append(Kind.START, recorded)
    step(40)
    ledger.append(Kind.FAULT, recorded, problem=Problem.MICROPHONE_SILENT)  # heard nothing for 20 s
    step(5)
    ledger.append(Kind.SILENCE_ENDED, recorded, seconds=25.0, heard=True)
    step(15)
    ledger.append(Kind.PAUSE, recorded)
    step(30)
    ledger.append(Kind.RESUME, recorded)
    step(45)
    ledger.append(Kind.END, recorded, reason=EndReason.ENDED, kept=True)
    step(20)
    ledger.append(Kind.SETUP, withdrawn, headcount=2, policy_sha256=POLICY_SHA256)
    step(1)
    ledger.append(Kind.CONSENT, withdrawn, seat=2)
    step(1)
    ledger.append(Kind.CONSENT, withdrawn, seat=1)
    step(1)
    ledger.append(Kind.START, withdrawn)
    ledger.append(Kind.SEAL, withdrawn, segment=None, bytes=812, sha256="5e" * 32, frames=None, final=True)
    ledger.append(Kind.EXPIRY, withdrawn, expires="2026-06-05", reason="recorded")
    step(12)
    ledger.append(Kind.WITHDRAWAL, withdrawn, seat=None)
    ledger.append(Kind.END, withdrawn, reason=EndReason.WITHDRAWN, kept=False)
    ledger.append(Kind.DESTRUCTION, withdrawn, files=2, cause="withdrawn", due="2026-06-05")
    step(5)
    ledger.append(Kind.SETUP, abandoned, headcount=1, policy_sha256=POLICY_SHA256)
    step(120)
    ledger.append(Kind.END, abandoned, reason=EndReason.CONSENT_TIMEOUT, kept=True)
    step(1)
    ledger.append(Kind.FAULT, problem=Problem.CARD_FULL)
    step(1)
    ledger.append(Kind.WIPE, files=7)
    ledger.append(Kind.PROVISIONING_REFUSED, reason=BundleRefusal.NOT_NEWER, bundle_sha256="cd" * 32)
    ledger.append(Kind.PROVISIONING_REFUSED, reason=BundleRefusal.NO_BUNDLE, bundle_sha256=None)
    step(1)


#: What a power cut leaves of an entry being written: its first bytes.
TORN_LINE = b'{"fields":{"seat":1},"format":1,"kind":"cons'


def sample_ledger(path: Path, card: Card | Path | None, key: DeviceSigningKey, *, runs: int = 2,
                  epoch: datetime = EPOCH, readers: Sequence[X25519Recipient] = ()) -> None:
    """Write a ledger of `runs` starts of the box, each with `write_every_kind`'s entries (the card's
    extracts, if any, for `readers`).

    Every run but the last ends in a power cut that tears its last entry, so the next start records
    a gap; the last run shuts down cleanly. Every kind of entry is in it.
    """
    for run in range(runs):
        clocks = SteppingClocks(epoch=epoch + timedelta(hours=run))
        ledger = open_ledger(path, card, key, clocks, readers=readers)
        write_every_kind(ledger, clocks, run)
        ledger.close(shutdown=run == runs - 1)
        if run < runs - 1:
            with open(path, "ab") as box_file:
                box_file.write(TORN_LINE)
