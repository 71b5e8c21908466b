"""Which time the box may trust, decided from the wall clock and the clock floor (docs/product.md,
"Retention and self-wipe").

A Raspberry Pi without a battery-backed clock can start in the past. The box keeps a floor that never
decreases (raised by each start, each ledger entry and each provisioning bundle's creation time, the
last never past a ceiling fixed by the firmware's build); a wall clock below it is taken as the floor,
so a clock that went backwards never keeps a recording longer. A box that has no floor yet and whose
clock is before the firmware was built has never had a trustworthy time at all, and must not record.
Times are POSIX seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

_DAY = 86_400

#: How far past the firmware's build date a provisioning bundle may carry the clock floor: five years
#: (1826 days, a leap day included). Each bundle may be dated up to its own policy's
#: `bundle_ahead_days` after the box's time, so the signed policies alone would let each stick move the
#: floor further for the next (two sticks took it to 2046) and expire every recording at once. A bound
#: that no bundle can move stops the walk. Five years is longer than a release should run without an
#: update; past it a box still takes bundles once its own clock (set by IT, or NTP) has passed the
#: ceiling, but no stick moves its floor.
FLOOR_CEILING_DAYS = 5 * 365 + 1


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


def floor_ceiling(built: float) -> float:
    """The latest time a provisioning bundle may raise the clock floor to: `FLOOR_CEILING_DAYS` after `built`."""
    return built + FLOOR_CEILING_DAYS * _DAY


def floor_from_bundle(created: float, built: float) -> float:
    """The clock floor an installed bundle created at `created` asks for: its creation time, but never
    past the ceiling of firmware built at `built`."""
    return min(created, floor_ceiling(built))
