"""FailingSource: a microphone that vanishes or overruns when a test says so."""

from __future__ import annotations

import pytest

from consentbox.core.policy import Policy
from consentbox.hw.errors import AudioLost, AudioUnavailable
from consentbox.testing.fakes import FailingSource, GeneratedSource
from consentbox.testing.signal import spans

POLICY = Policy(period_frames=64)
PERIOD = POLICY.period_frames


def test_it_passes_the_wrapped_source_through_and_counts_frames_per_open() -> None:
    source = FailingSource(GeneratedSource(POLICY), POLICY)
    source.open()
    assert spans(source.read() + source.read(), POLICY) == [range(0, 2 * PERIOD)]
    assert (source.frames_read, source.overruns) == (2 * PERIOD, 0)
    source.open()
    assert source.frames_read == 0 and spans(source.read(), POLICY) == [range(0, PERIOD)]


def test_an_overrun_drops_periods_counts_once_and_capture_goes_on() -> None:
    source = FailingSource(GeneratedSource(POLICY), POLICY)
    source.open()
    source.read()
    source.overrun(3)
    source.overrun()
    assert spans(source.read() + source.read(), POLICY) == [range(5 * PERIOD, 7 * PERIOD)]
    assert (source.overruns, source.frames_read) == (2, 3 * PERIOD)
    source.open()
    assert source.overruns == 0
    with pytest.raises(ValueError, match="at least one period"):
        source.overrun(0)


def test_a_lost_device_fails_reads_and_opens_until_it_is_back() -> None:
    source = FailingSource(GeneratedSource(POLICY), POLICY)
    source.open()
    source.read()
    source.lose()
    with pytest.raises(AudioLost, match="failed while capturing"):
        source.read()
    source.close()
    with pytest.raises(AudioUnavailable):
        source.open()
    source.restore()
    source.open()
    assert spans(source.read(), POLICY) == [range(0, PERIOD)]
