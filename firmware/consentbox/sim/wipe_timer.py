"""When the wipe runs while a simulation `advance`s its clock: as consentbox-wipe.timer starts it, on the hour.

The timer fires every hour (`OnCalendar=hourly`), and each run destroys what has expired by then. Over an
advance of months that would be thousands of runs, nearly all finding what the run before found. So the
simulation runs only those that can change something: the first firing of the advance (it finds what
was due before, or gone from the card), the one after a run that stopped early (a session was open), and
the first firing at or after each expiry that falls in the advance. The others would do nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

HOUR = 3_600


def next_wipe(after: float, expiries: Iterable[int], *, pending: bool) -> int | None:
    """The POSIX second of the next run that can change something, after a run (or the advance's start) at
    `after`: the timer's next firing if `pending`, else the first firing at or after the earliest expiry
    later than `after` (None when none is)."""
    if pending:
        return (math.floor(after / HOUR) + 1) * HOUR
    later = [expires for expires in expiries if expires > after]
    return math.ceil(min(later) / HOUR) * HOUR if later else None
