"""The simulated box's wall clock: a start date (`simulate --start-at`) plus the simulated time since.

Only `consentbox simulate` has one. A real box reads its wall clock from the system (state/clock_floor.py),
and no option of `consentbox run` moves it. Like a real box's, simulated time never goes back: a start
before the state directory's clock floor is refused. A start before the firmware's build date, on a state
without a floor, is taken: it rehearses a box that never knew the time, which refuses to record (code 9).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from consentbox.core.errors import PolicyError
from consentbox.state.clock_floor import ClockFloor

#: A start after this leaves no room in the calendar for retention and advances (years end at 9999).
LATEST_START = datetime(9000, 1, 1, tzinfo=UTC)


def parse_start_at(text: str) -> int:
    """`--start-at`'s POSIX second: an ISO date (midnight UTC) or date and time, UTC unless it carries an
    offset (`Z`, `+01:00`); fractions of a second are dropped. PolicyError, one line, if it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PolicyError(f"--start-at: {text!r} is not an ISO date (2027-03-01) or date and time "
                          "(2027-03-01T09:00, UTC unless it ends in an offset such as Z or +01:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment >= LATEST_START:
        raise PolicyError(f"--start-at: {text!r} is too late: start before {LATEST_START.date().isoformat()}")
    return math.floor(moment.timestamp())


def simulated_start(state_dir: Path, start_at: int | None, *, now: Callable[[], float] = time.time) -> int:
    """The POSIX second the simulated wall clock starts at: `start_at`, or if None the later of now and the
    state's clock floor (a floor an earlier run raised ahead of real time). PolicyError if `start_at` is
    before the floor."""
    floor = ClockFloor(state_dir).read()
    if start_at is None:
        return max(int(now()), floor or 0)
    if floor is not None and start_at < floor:
        raise PolicyError(f"--start-at {utc_text(start_at)} is before the clock floor of {state_dir}, "
                          f"{utc_text(floor)}: time never goes back on a box; start at or after it, or with a new "
                          "--state")
    return start_at


class SimulatedWall:
    """POSIX seconds on the simulated box: `start` plus the simulated time `elapsed()` since the box started."""

    def __init__(self, start: int, elapsed: Callable[[], float]) -> None:
        self.start = start
        self._elapsed = elapsed

    def now(self) -> float:
        """The wall clock's reading now."""
        return self.start + self._elapsed()

    def moment(self, wall: float) -> float:
        """The simulated time at which the wall clock reads `wall`."""
        return float(wall - self.start)


def utc_text(seconds: float) -> str:
    """`seconds` (POSIX) as the timeline and messages write a simulated wall time: ISO, UTC, to the second."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
