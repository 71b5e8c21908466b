"""The level meter: a peak in dBFS from each period, and nothing else kept."""

from __future__ import annotations

import array
import math

import pytest

from consentbox.core.policy import SampleFormat
from consentbox.sim.web.level import FLOOR_DBFS, LevelMeter, peak_dbfs


def pcm(samples: list[int], typecode: str = "h") -> bytes:
    return array.array(typecode, samples).tobytes()


@pytest.mark.parametrize(("samples", "dbfs"), [
    ([0, 32767, 0], 20 * math.log10(32767 / 32768)),
    ([0, -32768, 5], 0.0),
    ([8000, -4000], 20 * math.log10(8000 / 32768)),  # the test signal's beeps: about -12 dBFS
    ([-16384, 100], 20 * math.log10(0.5)),
    ([0, 0, 0], FLOOR_DBFS),
    ([1, -1], FLOOR_DBFS),  # -90 dBFS: below the meter's floor
])
def test_peaks_of_16_bit_periods(samples, dbfs):
    assert peak_dbfs(pcm(samples), SampleFormat.S16_LE) == pytest.approx(dbfs)


def test_peaks_of_32_bit_periods():
    assert peak_dbfs(pcm([0, 1 << 30], "i"), SampleFormat.S32_LE) == pytest.approx(20 * math.log10(0.5))


def test_an_empty_period_is_silence():
    assert peak_dbfs(b"", SampleFormat.S16_LE) == FLOOR_DBFS


def test_the_meter_keeps_one_number_until_capture_closes():
    meter = LevelMeter(lambda: SampleFormat.S16_LE)
    assert meter.dbfs is None
    period = bytearray(pcm([0, 16384]))
    meter.tap(period)
    assert meter.dbfs == pytest.approx(20 * math.log10(0.5))
    period[:] = bytes(len(period))  # the box reuses or drops its buffer: the meter holds no view of it
    assert meter.dbfs == pytest.approx(20 * math.log10(0.5))
    meter.clear()
    assert meter.dbfs is None
