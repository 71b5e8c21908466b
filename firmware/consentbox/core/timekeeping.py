"""Which time the box may trust, decided from the wall clock and the clock floor (docs/product.md,
"Retention and self-wipe").

A Raspberry Pi without a battery-backed clock can start in the past. The box keeps a floor that never
decreases (raised by each start, each ledger entry and each provisioning bundle's creation time); a
wall clock below it is taken as the floor, so a clock that went backwards never keeps a recording
longer. A box that has no floor yet and whose clock is before the firmware was built has never had
a trustworthy time at all, and must not record. Times are POSIX seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrustedTime:
    """The time to use for every decision, and how the wall clock compared."""

    now: float
    behind: float  # how far the wall clock is below the floor (0 when it is not)
    trusted: bool  # False: never had a trustworthy time; recording is refused


def trusted_time(wall: float, floor: float | None, built: float) -> TrustedTime:
    """The time the box decides by, given its wall clock, its floor (None if never set) and its build time.

    The build time is a floor too (no box runs firmware before it was made); a box without a floor of
    its own whose clock is below it has never had a trustworthy time.
    """
    lowest = built if floor is None else max(floor, built)
    if wall >= lowest:
        return TrustedTime(wall, 0.0, trusted=True)
    return TrustedTime(lowest, lowest - wall, trusted=floor is not None)
