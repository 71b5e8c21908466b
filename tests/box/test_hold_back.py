"""The gate between capture and a session's files (`box/hold_back.py`): audio goes to the files one period late;
held back from a CONSENT press (with the period still waiting, which may hold audio from after the press), it is
written, in order, only if no withdrawal came; discarded, it is zeroed and ends the interval where it began; and
it never holds more than `withdraw_hold` and the slack, however the presses overlap."""

from __future__ import annotations

import math

import pytest

from consentbox.box.hold_back import HOLD_SLACK_SECONDS, HoldBack
from consentbox.core.policy import Policy
from consentbox.testing.signal import frame_positions, position_pcm
from tests.support.buffers import held_buffers, holding_anything

POLICY = Policy(withdraw_hold=2.0)
PERIOD = POLICY.period_frames


class Files:
    """Stands in for `SessionFiles.write`: keeps a copy of what it is given."""

    def __init__(self) -> None:
        self.written = bytearray()

    def write(self, pcm: memoryview) -> None:
        self.written += pcm


def periods(first: int, count: int) -> list[bytes]:
    """Periods `first` to `first + count - 1` of the position signal."""
    return [position_pcm((first + n) * PERIOD, PERIOD, POLICY) for n in range(count)]


def positions(files: Files) -> list[int | None]:
    return frame_positions(bytes(files.written), POLICY)


def test_while_the_gate_is_open_each_period_is_written_once_the_next_is_read():
    gate, files = HoldBack(POLICY), Files()
    for number, pcm in enumerate(periods(0, 3)):
        assert gate.take(pcm, files.write) == (PERIOD if number else 0)
        assert len(files.written) == number * PERIOD * POLICY.frame_bytes
    assert gate.close(files.write) == (PERIOD, None), "capture closing writes the period still waiting"
    assert gate.since is None and positions(files) == list(range(3 * PERIOD))


def test_held_back_audio_is_written_in_order_when_the_press_ends_without_a_withdrawal():
    gate, files = HoldBack(POLICY), Files()
    first, second, *held, after = periods(0, 12)
    gate.take(first, files.write)
    gate.take(second, files.write)  # read at 10.0 s; the press came before the box heard it
    gate.begin(10.0)
    gate.begin(10.5)  # a second press while the first is down: the hold-back still began at the first
    buffers = held_buffers(gate)
    assert [gate.take(pcm, files.write) for pcm in held] == [0] * len(held), "nothing written while held back"
    assert positions(files) == list(range(PERIOD)), "the period read as the press came is held back too"
    assert gate.since == pytest.approx(10.0 - PERIOD / POLICY.rate)
    assert gate.release(files.write) == (len(held) + 1) * PERIOD
    assert gate.take(after, files.write) == 0 and gate.close(files.write) == (PERIOD, None)
    assert positions(files) == list(range(12 * PERIOD)), "the recording goes on without a gap"
    assert gate.since is None and holding_anything(held_buffers(gate) + buffers) == []


def test_discarded_audio_is_zeroed_never_written_and_says_where_it_began():
    gate, files = HoldBack(POLICY), Files()
    for pcm in periods(0, 2):
        gate.take(pcm, files.write)
    gate.begin(3.25)
    for pcm in periods(2, 40):
        gate.take(pcm, files.write)
    buffers = held_buffers(gate)
    assert holding_anything(buffers), "the held audio was not found"
    assert gate.close(files.write) == (0, pytest.approx(3.25 - PERIOD / POLICY.rate))
    assert holding_anything(buffers) == [] and positions(files) == list(range(PERIOD))


def test_a_card_that_failed_gets_nothing_more_the_waiting_period_is_zeroed():
    gate, files = HoldBack(POLICY), Files()
    for pcm in periods(0, 2):
        gate.take(pcm, files.write)
    buffers = held_buffers(gate)
    assert gate.close(None) == (0, None)
    assert holding_anything(buffers) == [] and positions(files) == list(range(PERIOD))


def test_it_never_holds_more_than_withdraw_hold_and_the_slack_writing_the_oldest_in_order():
    # Presses that overlap (a tap as another seat holds) keep the gate shut for as long as they go on.
    gate, files = HoldBack(POLICY), Files()
    bound = math.ceil((POLICY.withdraw_hold + HOLD_SLACK_SECONDS) * POLICY.rate)
    gate.begin(1.0)  # before anything was read: nothing is waiting
    count = 3 * bound // PERIOD
    written = sum(gate.take(pcm, files.write) for pcm in periods(0, count))
    assert written == count * PERIOD - bound and positions(files) == list(range(written))
    assert gate.since == pytest.approx(1.0 + written / POLICY.rate), "it now begins where what is held begins"
    [buffer] = held_buffers(gate)
    assert len(buffer) <= bound * POLICY.frame_bytes + PERIOD * POLICY.frame_bytes
    assert gate.release(files.write) == bound and positions(files) == list(range(count * PERIOD))
