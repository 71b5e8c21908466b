"""Fixtures for the retention tests: a box's state directory, a wall clock the test sets, the box's
ledger, session files on a card directory, and a `Wiper` put together as `consentbox wipe` does.

The card here is a plain directory (not a mount point, so no wipe discards anything on the machine
running the tests); tests/system/test_retention.py does the same on loop-mounted ext4 images.
"""

from __future__ import annotations

import calendar
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from consentbox.core.policy import Policy
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.card import CardDirectory
from consentbox.ledger import verify
from consentbox.ledger.writer import Ledger
from consentbox.recording.card_id import CARD_ID_NAME
from consentbox.recording.manifest import manifest_name, segment_name
from consentbox.retention.index import RetentionIndex
from consentbox.retention.wipe import Wiper
from consentbox.state.clock_floor import TrustedClock

DAY = 86_400
#: The firmware's build time in these tests (POSIX seconds): 2026-01-01T00:00:00Z.
BUILT = calendar.timegm((2026, 1, 1, 0, 0, 0))
#: "Now" in these tests, unless a test moves the wall clock: 100 days after the build.
NOW = BUILT + 100 * DAY
POLICY = Policy(min_free_mb=1)


class SetClock:
    """A clock (the wall clock in POSIX seconds, or the monotonic clock) as the test sets it: `clock.t = …`."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Box:
    """The parts of one box that retention touches: its state directory, its card, its clock."""

    state: Path
    card: Path
    wall: SetClock
    monotonic: SetClock  # stands still unless a test moves it
    key: DeviceSigningKey

    @property
    def index(self) -> RetentionIndex:
        return RetentionIndex(self.state)

    def clock(self) -> TrustedClock:
        return TrustedClock(self.state, built=BUILT, wall=self.wall, monotonic=self.monotonic)

    def ledger(self, card: Path | None = None) -> Ledger:
        """The box's ledger as a job beside the box opens it (no boot entry unless it is new), its copy
        on `card` (default: the box's card)."""
        return Ledger.open(self.state / "ledger.jsonl", CardDirectory(card or self.card, POLICY), self.key,
                           wall_clock=self.clock().now, boot=False)

    def wipe(self, limit_days: int = 30, *, wait: bool = False, card: Path | None = None) -> list[str]:
        """One run of the wipe, as `consentbox wipe` makes it; the lines of its report."""
        ledger = self.ledger(card)
        try:
            wiper = Wiper(card or self.card, self.state, ledger, self.clock(), limit_days)
            return wiper.run(wait=wait).lines()
        finally:
            ledger.close(shutdown=False)

    def record(self, session: str, *, started: float, segments: int = 1, size: int = 20_000,
               days: int = 30, card: str | None = None) -> dict[str, bytes]:
        """A session of `segments` segments and a manifest on the card, entered in the index as the box
        does (before its files; recorded on the card whose id is `card`, unless that is not known); its
        files' names and bytes."""
        self.index.add(session, started, days, card)
        files = {manifest_name(session): os.urandom(900)}
        files.update({segment_name(session, n): os.urandom(size) for n in range(segments)})
        for name, data in files.items():
            (self.card / name).write_bytes(data)
        return files

    def files(self) -> dict[str, bytes]:
        """Every file on the card but the card's id, with its bytes (the ledger here has no readers to
        encrypt extracts to: tests/system/test_retention.py has them)."""
        return {p.name: p.read_bytes() for p in sorted(self.card.iterdir()) if p.name != CARD_ID_NAME}

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The box's ledger entries (of `kind`), after checking the whole ledger verifies."""
        path = self.state / "ledger.jsonl"
        verify(path, self.key.public_key)
        lines = [json.loads(line) for line in path.read_bytes().splitlines()]
        return [e for e in lines if kind is None or e["kind"] == kind]

    def receipts(self) -> dict[str, list[dict[str, Any]]]:
        """For each session, the fields of its destruction entries, in order."""
        found: dict[str, list[dict[str, Any]]] = {}
        for entry in self.entries("destruction"):
            found.setdefault(entry["session"], []).append(entry["fields"])
        return found


@pytest.fixture(scope="session")
def device_key() -> DeviceSigningKey:
    """The box's signing key, fixed so that failures reproduce."""
    return DeviceSigningKey.generate(secret=bytes(range(32)))


@pytest.fixture
def box(tmp_path: Path, card: Path, device_key: DeviceSigningKey) -> Iterator[Box]:
    """A box whose wall clock reads NOW and whose floor is not yet set."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    yield Box(state, card, SetClock(NOW), SetClock(0.0), device_key)
