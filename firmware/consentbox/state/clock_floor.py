"""The box's persisted clock floor: `clock-floor` in the state directory, POSIX seconds, never lowered;
and the trusted clock that reads the wall clock against it.

Several processes raise it (the box, provisioning, the wipe), so each raise holds an `flock` on
`clock-floor.lock` while it reads, compares and replaces the file; the replacement is atomic, so a
power cut leaves the old floor or the new one. core/timekeeping.py decides what the floor means.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from consentbox import BUILD_DATE
from consentbox.core.timekeeping import TrustedTime, trusted_time
from consentbox.state.files import CLOCK_FLOOR, CLOCK_FLOOR_LOCK
from consentbox.state.session_lock import exclusive
from consentbox.storage.atomic import replace_file

_MAX_TEXT = 32


class ClockFloor:
    """The clock floor of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir

    def read(self) -> int | None:
        """The floor, or None if it was never set (or its file is unreadable, which is the same to trust)."""
        try:
            with open(self._dir / CLOCK_FLOOR, "rb") as src:
                text = src.read(_MAX_TEXT)
            return int(text.decode("ascii").strip())
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None

    def raise_to(self, seconds: float) -> bool:
        """Raise the floor to `seconds` (whole seconds, rounded down) unless it is there already; whether it rose."""
        target = int(seconds)
        with exclusive(self._dir / CLOCK_FLOOR_LOCK):
            current = self.read()
            if current is not None and current >= target:
                return False
            replace_file(self._dir, CLOCK_FLOOR, f"{target}\n".encode("ascii"), 0o644)
            return True


def firmware_built() -> float:
    """The firmware's build date (`consentbox.BUILD_DATE`, midnight UTC) as POSIX seconds."""
    return datetime.fromisoformat(BUILD_DATE).replace(tzinfo=UTC).timestamp()


#: How far the wall clock must be above the persisted floor before reading it raises the floor: the
#: floor follows the clock to within this, without a file replacement at every ledger entry.
FLOOR_STEP = 600


class TrustedClock:
    """The wall clock as the box may trust it: never below the floor, which each reading raises.

    A Pi without a real-time clock (and with a read-only root, where fake-hwclock cannot save) starts
    every boot at the same old time. So when the wall clock is below the floor, time runs on from
    the floor at the rate of the monotonic clock, rather than standing at the floor until the wall
    clock catches up; only the time the box was off is lost. Every ledger entry and session start
    reads this clock, so those raise the floor (to within `FLOOR_STEP`); a reading from a box that
    never had a trustworthy time raises nothing.
    """

    def __init__(self, state_dir: Path, *, built: float | None = None, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.floor = ClockFloor(state_dir)
        self.built = firmware_built() if built is None else built  # POSIX seconds
        self._wall = wall
        self.monotonic = monotonic  # time runs on by it below the floor; a job's ledger entries are stamped by it
        self._anchor: tuple[float, float] | None = None  # (floor, monotonic) when the wall was first behind it

    def reading(self) -> TrustedTime:
        """The time to decide by now (see core/timekeeping.py), raising the floor if the clock is ahead of it."""
        wall = self._wall()
        floor = persisted = self.floor.read()
        if floor is not None and wall < floor:
            if self._anchor is None:
                self._anchor = (floor, self.monotonic())
            since, then = self._anchor
            floor = max(floor, int(since + self.monotonic() - then))
        reading = trusted_time(wall, floor, self.built)
        if reading.trusted and reading.now - (persisted or 0) >= FLOOR_STEP:
            self.floor.raise_to(reading.now)
        return reading

    def now(self) -> datetime:
        """The trusted time with the local UTC offset, for manifests and ledger entries."""
        return datetime.fromtimestamp(self.reading().now, UTC).astimezone()
