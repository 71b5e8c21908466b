"""The persisted clock floor and the trusted clock (issue 8, item 3), with a wall clock the test sets.

The floor is `clock-floor` in the box's state directory: whole POSIX seconds, never lowered, raised by
every reading of a clock that is FLOOR_STEP or more ahead of it (each boot, ledger entry and session
start reads it) and by each bundle's creation time. What the readings mean is core/timekeeping.py's.
"""

from __future__ import annotations

import calendar
import multiprocessing
import time
from datetime import UTC, datetime

import pytest

from consentbox import BUILD_DATE
from consentbox.core.timekeeping import TrustedTime
from consentbox.state.clock_floor import FLOOR_STEP, ClockFloor, TrustedClock, firmware_built
from consentbox.state.files import CLOCK_FLOOR

from ..retention.conftest import BUILT, DAY, NOW, SetClock


def test_an_unset_or_unreadable_floor_reads_as_none(tmp_path):
    floor = ClockFloor(tmp_path)
    assert floor.read() is None
    for junk in (b"", b"soon\n", b"\xff\xfe", b"12.5\n"):
        (tmp_path / CLOCK_FLOOR).write_bytes(junk)
        assert floor.read() is None, junk


def test_the_floor_rises_in_whole_seconds_and_never_falls(tmp_path):
    floor = ClockFloor(tmp_path)
    assert floor.raise_to(NOW + 0.9)
    assert (tmp_path / CLOCK_FLOOR).read_bytes() == b"%d\n" % NOW
    assert not floor.raise_to(NOW)
    assert not floor.raise_to(NOW - DAY)
    assert floor.read() == NOW
    assert floor.raise_to(NOW + 1)
    assert floor.read() == NOW + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [CLOCK_FLOOR, "clock-floor.lock"], "a temporary file was left"


def _raise_many(directory, values) -> None:
    floor = ClockFloor(directory)
    for value in values:
        floor.raise_to(value)


def test_processes_raising_the_floor_at_once_leave_the_highest(tmp_path):
    context = multiprocessing.get_context("fork")
    plans = [range(NOW + k, NOW + 400, 4) for k in range(4)]
    workers = [context.Process(target=_raise_many, args=(tmp_path, plan[::-1] if k % 2 else plan))
               for k, plan in enumerate(plans)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert ClockFloor(tmp_path).read() == max(max(plan) for plan in plans)


def test_the_build_time_is_midnight_utc_of_build_date():
    year, month, day = map(int, BUILD_DATE.split("-"))
    assert firmware_built() == calendar.timegm((year, month, day, 0, 0, 0))


def _clock(tmp_path, wall: float) -> tuple[TrustedClock, SetClock]:
    clock = SetClock(wall)
    return TrustedClock(tmp_path, built=BUILT, wall=clock, monotonic=lambda: 0.0), clock


def test_a_first_trustworthy_reading_sets_the_floor(tmp_path):
    trusted, _ = _clock(tmp_path, NOW + 0.5)
    assert trusted.reading() == TrustedTime(NOW + 0.5, 0.0, trusted=True)
    assert ClockFloor(tmp_path).read() == NOW


def test_a_box_that_never_knew_the_time_is_untrusted_and_sets_no_floor(tmp_path):
    trusted, wall = _clock(tmp_path, BUILT - 3 * DAY)
    assert trusted.reading() == TrustedTime(BUILT, 3 * DAY, trusted=False)
    assert ClockFloor(tmp_path).read() is None
    wall.t = NOW  # IT sets the time
    assert trusted.reading().trusted and ClockFloor(tmp_path).read() == NOW


def test_a_floor_makes_a_clock_before_the_build_date_trusted_and_corrected(tmp_path):
    # A provisioning stick's creation time, say, with the clock still at its power-on default.
    ClockFloor(tmp_path).raise_to(NOW)
    trusted, _ = _clock(tmp_path, BUILT - 300 * DAY)
    assert trusted.reading() == TrustedTime(NOW, NOW - BUILT + 300 * DAY, trusted=True)
    assert ClockFloor(tmp_path).read() == NOW


def test_the_floor_follows_the_clock_to_within_a_step(tmp_path):
    ClockFloor(tmp_path).raise_to(NOW)
    trusted, wall = _clock(tmp_path, NOW + FLOOR_STEP - 1)
    assert trusted.reading().now == NOW + FLOOR_STEP - 1  # decisions use the clock itself...
    assert ClockFloor(tmp_path).read() == NOW  # ...and the floor is not rewritten for every entry
    wall.t = NOW + FLOOR_STEP
    trusted.reading()
    assert ClockFloor(tmp_path).read() == NOW + FLOOR_STEP


def test_a_clock_behind_the_floor_reads_as_the_floor_and_lowers_nothing(tmp_path):
    ClockFloor(tmp_path).raise_to(NOW)
    trusted, _ = _clock(tmp_path, NOW - 2 * DAY)
    assert trusted.reading() == TrustedTime(NOW, 2 * DAY, trusted=True)
    assert trusted.now() == datetime.fromtimestamp(NOW, UTC)
    assert trusted.now().utcoffset() is not None, "ledger entries and manifests need the UTC offset"
    assert ClockFloor(tmp_path).read() == NOW


def test_behind_the_floor_time_runs_on_from_it_and_a_restart_loses_only_the_time_off(tmp_path):
    # A Pi without a clock battery starts each boot at the same old time; standing at the floor until
    # the clock caught up would keep recordings longer by the whole time since.
    ClockFloor(tmp_path).raise_to(NOW)
    wall, monotonic = SetClock(BUILT + DAY), SetClock(500.0)
    trusted = TrustedClock(tmp_path, built=BUILT, wall=wall, monotonic=monotonic)
    assert trusted.reading().now == NOW
    monotonic.t += 3600
    wall.t += 3600
    assert trusted.reading() == TrustedTime(NOW + 3600, NOW - BUILT - DAY, trusted=True)
    assert ClockFloor(tmp_path).read() == NOW + 3600, "the floor does not follow the time run on"

    restarted = TrustedClock(tmp_path, built=BUILT, wall=SetClock(BUILT + DAY), monotonic=SetClock(3.0))
    assert restarted.reading().now == NOW + 3600  # the next boot starts from there
    wall.t = NOW + 2 * DAY  # the clock is set: it is believed again
    assert trusted.reading() == TrustedTime(NOW + 2 * DAY, 0.0, trusted=True)


def test_the_real_clock_is_the_default(tmp_path):
    reading = TrustedClock(tmp_path).reading()
    assert reading.trusted, "this machine's clock is before the firmware's build date"
    assert reading.now == pytest.approx(time.time(), abs=5)
    assert ClockFloor(tmp_path).read() == pytest.approx(time.time(), abs=5)
