"""A microphone that is heard (issue 17, point 5): the level of a period, and the silence watch, in the pure core."""

from __future__ import annotations

import array
import math
import tracemalloc

import pytest

from consentbox.core.errors import PolicyError
from consentbox.core.level import SILENCE_FLOOR_DBFS, audible, peak_dbfs
from consentbox.core.policy import Policy, SampleFormat
from consentbox.core.silence import SilenceBegan, SilenceEnded, SilenceWatch

S16, S32 = SampleFormat.S16_LE, SampleFormat.S32_LE


def pcm(samples: list[int], sample_format: SampleFormat = S16) -> bytes:
    return array.array("h" if sample_format is S16 else "i", samples).tobytes()


# -- the level of a period ------------------------------------------------------------------------------------

#: The floor in samples: -60 dBFS is 32.77 of 32768 (16-bit) and 2147483.6 of 2**31 (32-bit).
@pytest.mark.parametrize(("samples", "sample_format", "heard"), [
    ([0] * 1024, S16, False),  # digital silence
    ([], S16, False),  # no samples at all
    ([0, 32, -32, 5], S16, False),  # just below the floor: -60.2 dBFS
    ([0, 33, 0], S16, True),  # just above: -59.9 dBFS
    ([0, -33, 0], S16, True),  # a negative peak counts as much
    ([-32768], S16, True),  # full scale
    ([2_147_483, -2_147_483], S32, False),  # just below the floor, 32-bit
    ([0, 2_147_484], S32, True),  # just above
], ids=["zeros", "empty", "16-bit just below", "16-bit just above", "negative", "full scale", "32-bit just below",
        "32-bit just above"])
def test_a_period_is_audible_when_a_sample_reaches_the_floor(samples, sample_format, heard):
    assert audible(pcm(samples, sample_format), sample_format) is heard


def test_the_peak_is_in_dbfs_and_digital_silence_has_none():
    assert peak_dbfs(pcm([0, 16384, -100]), S16) == pytest.approx(20 * math.log10(0.5))
    assert peak_dbfs(pcm([0, 1 << 30], S32), S32) == pytest.approx(20 * math.log10(0.5))
    assert peak_dbfs(pcm([-32768]), S16) == 0.0
    assert peak_dbfs(pcm([0, 0]), S16) == -math.inf
    assert peak_dbfs(pcm([32]), S16) < SILENCE_FLOOR_DBFS < peak_dbfs(pcm([33]), S16)


def test_the_level_of_a_period_is_read_in_place_with_no_copy_of_the_audio():
    # 512 KiB of "audio": a copy would stand out of anything another thread allocates meanwhile (tracemalloc
    # counts the whole process).
    period = bytearray(pcm([(n * 37) % 20_000 - 10_000 for n in range(4096)])) * 64
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for _ in range(2):
            peak_dbfs(period, S16)
        _, most = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert most < len(period) // 4, f"{most} bytes allocated: the period was copied"


def test_whether_audio_was_heard_is_read_through_small_copies():
    # Quiet 16-bit audio is looked at whole, a piece of at most 16 KiB at a time (its copies zeroed at once).
    quiet = bytearray(pcm([(n % 65) - 32 for n in range(1 << 18)]))  # 512 KiB, every sample -32 to 32
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        assert not audible(quiet, S16)
        _, most = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert most < len(quiet) // 4, f"{most} bytes allocated at once: more than a few small copies"


def test_16_bit_audio_is_heard_exactly_as_its_peak_says():
    # `audible` reads 16-bit audio with byte operations, not sample by sample: the same answer for every
    # value a sample can take, alone or among quiet ones, and wherever it falls (a piece's edge included).
    for value in range(-32768, 32768):
        samples = pcm([value])
        assert audible(samples, S16) is (peak_dbfs(samples, S16) >= SILENCE_FLOOR_DBFS), value
    for where in (0, 2047, 2048, 2049, 10_239, 10_240, 30_000):
        samples = [(n % 65) - 32 for n in range(32_768)]
        assert not audible(pcm(samples), S16)
        for loud in (33, -33):
            samples[where] = loud
            assert audible(pcm(samples), S16), (where, loud)


# -- the watch ------------------------------------------------------------------------------------------------

PERIOD = 0.25  # the watch is told times, not period lengths: any period does


def periods(start: float, end: float) -> list[float]:
    """The end times of the periods from `start` to `end`."""
    return [round(start + PERIOD * n, 6) for n in range(1, round((end - start) / PERIOD) + 1)]


def watch_over(heard: list[tuple[float, float, bool]], *, alert_after: float = 20.0, opened: float = 0.0,
               closed: float | None = None) -> list[tuple[float, object]]:
    """Feed a watch opened at `opened` the stretches (from, to, audible), period by period, then close it at
    `closed`; what it answered, with the time it answered at."""
    watch = SilenceWatch(alert_after, opened=opened)
    answers: list[tuple[float, object]] = []
    for start, end, loud in heard:
        for at in periods(start, end):
            answer = watch.hear(loud, at)
            if answer is not None:
                answers.append((at, answer))
    if closed is not None:
        answer = watch.close(closed)
        if answer is not None:
            answers.append((closed, answer))
    return answers


@pytest.mark.parametrize(("heard", "options", "expected"), [
    # Silence from the open, just under silence_alert: nothing; just over: the alert, once.
    ([(0, 19.75, False)], {}, []),
    ([(0, 20, False)], {}, [(20.0, SilenceBegan(0.0))]),
    ([(0, 60, False)], {}, [(20.0, SilenceBegan(0.0))]),
    # Sound resets the count: silence after it is counted from the end of its last period.
    ([(0, 10, True), (10, 29.75, False)], {}, []),
    ([(0, 10, True), (10, 30, False)], {}, [(30.0, SilenceBegan(10.0))]),
    ([(0, 15, False), (15, 15.25, True), (15.25, 35, False)], {}, []),
    # Sound returning after an alert ends it, measured to the start of the first period heard again.
    ([(0, 10, True), (10, 40, False), (40, 45, True)], {},
     [(30.0, SilenceBegan(10.0)), (40.25, SilenceEnded(10.0, 30.0, heard=True))]),
    # A second silence is alerted again.
    ([(0, 25, False), (25, 26, True), (26, 46, False)], {},
     [(20.0, SilenceBegan(0.0)), (25.25, SilenceEnded(0.0, 25.0, heard=True)), (46.0, SilenceBegan(26.0))]),
    # Capture closing ends an alerted silence, not heard; an unalerted one ends with nothing to say.
    ([(0, 30, False)], {"closed": 31.0}, [(20.0, SilenceBegan(0.0)), (31.0, SilenceEnded(0.0, 31.0, heard=False))]),
    ([(0, 19.75, False)], {"closed": 19.8}, []),
    # The watch counts from the open (a resume), not from zero; silence_alert 0 never alerts.
    ([(100, 119.75, False)], {"opened": 100.0}, []),
    ([(100, 120, False)], {"opened": 100.0}, [(120.0, SilenceBegan(100.0))]),
    ([(0, 600, False)], {"alert_after": 0.0, "closed": 600.0}, []),
    ([(0, 5, False)], {"alert_after": 5.0}, [(5.0, SilenceBegan(0.0))]),
], ids=["just under", "just over", "alerted once", "sound resets: under", "sound resets: over",
        "one period of sound", "sound returns", "second silence", "closed while alerted", "closed unalerted",
        "resume: under", "resume: over", "off", "short alert"])
def test_the_watch_alerts_silence_of_silence_alert_seconds_and_its_end(heard, options, expected):
    assert watch_over(heard, **options) == expected


def test_the_watch_says_whether_an_alert_stands():
    watch = SilenceWatch(20.0, opened=0.0)
    assert watch.hear(False, 20.0) == SilenceBegan(0.0) and watch.alerting
    assert watch.hear(False, 21.0) is None and watch.alerting
    assert watch.hear(True, 22.0) == SilenceEnded(0.0, 21.0, heard=True) and not watch.alerting


# -- the policy key -------------------------------------------------------------------------------------------


def test_silence_alert_is_20_s_by_default_0_turns_it_off_and_a_bad_value_names_the_key():
    assert Policy().silence_alert == 20.0 and Policy(silence_alert=0).silence_alert == 0
    for bad, words in ((-1, "-1 s is out of range (0 to 3600 s)"), (3601, "3601 s is out of range"),
                       (float("nan"), "expected a number of seconds"), (True, "expected a number of seconds")):
        with pytest.raises(PolicyError, match="policy key silence_alert: ") as caught:
            Policy.from_mapping({"silence_alert": bad})
        assert words in str(caught.value)
