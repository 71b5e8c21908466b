"""Which time the box may trust (docs/product.md, "Retention and self-wipe"): `trusted_time`, a pure
function of the wall clock, the persisted floor (None when never set) and the firmware's build time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentbox.core.timekeeping import FLOOR_CEILING_DAYS, TrustedTime, floor_ceiling, floor_from_bundle, trusted_time

BUILT = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0

times = st.floats(BUILT - 4000 * DAY, BUILT + 4000 * DAY, allow_nan=False)
floors = st.none() | st.integers(int(BUILT - 4000 * DAY), int(BUILT + 4000 * DAY))


@pytest.mark.parametrize(("wall", "floor", "expected"), [
    # Never had a trustworthy time: not trusted, and decisions use the build time.
    (BUILT - DAY, None, TrustedTime(BUILT, DAY, trusted=False)),
    # A first clock after the build date is believed.
    (BUILT, None, TrustedTime(BUILT, 0.0, trusted=True)),
    (BUILT + 5.5, None, TrustedTime(BUILT + 5.5, 0.0, trusted=True)),
    # A clock at or above the floor is the time.
    (BUILT + 10 * DAY, int(BUILT + 10 * DAY), TrustedTime(BUILT + 10 * DAY, 0.0, trusted=True)),
    (BUILT + 11 * DAY, int(BUILT + 10 * DAY), TrustedTime(BUILT + 11 * DAY, 0.0, trusted=True)),
    # A clock below the floor is corrected to it, and says by how much.
    (BUILT + 9 * DAY, int(BUILT + 10 * DAY), TrustedTime(BUILT + 10 * DAY, DAY, trusted=True)),
    # A floor older than the build (the firmware before an upgrade set it) still leaves the build as a bound.
    (BUILT - DAY, int(BUILT - 10 * DAY), TrustedTime(BUILT, DAY, trusted=True)),
    # A floor (a bundle's creation time, say) makes even a power-on default clock trusted.
    (0.0, int(BUILT + 10 * DAY), TrustedTime(BUILT + 10 * DAY, BUILT + 10 * DAY, trusted=True)),
])
def test_trusted_time(wall, floor, expected):
    assert trusted_time(wall, floor, BUILT) == expected


@given(wall=times, floor=floors)
def test_the_time_decided_by_is_never_below_the_clock_or_the_floor(wall, floor):
    reading = trusted_time(wall, floor, BUILT)
    assert reading.now >= wall and (floor is None or reading.now >= floor)
    assert reading.behind == reading.now - wall >= 0
    assert reading.now in (wall, floor, BUILT)


@given(wall=times, floor=floors)
def test_only_a_box_that_never_had_a_floor_and_whose_clock_is_before_the_build_is_untrusted(wall, floor):
    assert trusted_time(wall, floor, BUILT).trusted is not (floor is None and wall < BUILT)


@given(wall=times, floor=st.integers(int(BUILT - 4000 * DAY), int(BUILT) - 1))
def test_the_build_date_is_a_lower_bound_on_the_time_even_with_an_older_floor(wall, floor):
    # No box runs firmware before it was built, so the build time bounds the true time from below even
    # when the floor (set by the firmware before an upgrade) is older: after an upgrade, a clock between
    # the two must not keep recordings longer.
    assert trusted_time(wall, floor, BUILT).now >= BUILT


def test_the_ceiling_is_five_years_after_the_build():
    # 2026-01-01 + five years, the leap day of 2028 included.
    assert FLOOR_CEILING_DAYS == 1826 and floor_ceiling(BUILT) == 1_924_992_000.0  # 2031-01-01T00:00:00Z


@given(created=st.integers(int(BUILT - 4000 * DAY), int(BUILT + 8000 * DAY)))
def test_a_bundle_raises_the_floor_to_its_date_but_never_past_the_ceiling(created):
    floor = floor_from_bundle(created, BUILT)
    assert floor <= floor_ceiling(BUILT)
    assert floor == created or created > floor_ceiling(BUILT) == floor
