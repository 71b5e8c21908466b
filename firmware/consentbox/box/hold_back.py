"""Audio held back while a CONSENT press may yet become a withdrawal (docs/product.md, "Withdrawal").

Audio goes to the files one period late: the period read last waits here until more is read. The box
hears a press between two reads, and the period it read last may hold audio from after the press began; so
that period, still unwritten, is held back with the rest. (The box hands audio over in blocks of periods,
but always before it handles an event: the period waiting is the one read last before the press was heard.)
From the moment a CONSENT button goes down while capturing (`HoldBackAudio`), nothing captured is written:
each period waits in memory. When the presses end without a withdrawal (`WriteHeldAudio`) it is written, in
order, and capture goes on: the recording has no gap. When capture closes while holding back (the
withdrawal) it is zeroed, never written, and the capture interval ends where the held audio began (up to a
period before the press: the box drops a little more rather than keep any of it); otherwise the period still
waiting is written.

Memory is bounded. A withdrawal completes `withdraw_hold` after its press began, and the box performs it
within a period of that; audio captured longer ago than that and HOLD_SLACK_SECONDS more began before every
press that can still complete, so no withdrawal can claim it. Only presses that overlap (one seat taps as
another holds) keep audio back that long, and its oldest part is then written.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from consentbox.core.policy import Policy
from consentbox.hw.held_audio import HeldAudio

#: How much longer than `withdraw_hold` audio is held back before no withdrawal can claim it: the box
#: performs a completed hold within a period (21 ms by default); this leaves room for a slow card write.
HOLD_SLACK_SECONDS = 1.0

Write = Callable[[memoryview], object]


class HoldBack:
    """The gate between capture and a session's files: one period behind, or holding audio back since `since`."""

    def __init__(self, policy: Policy) -> None:
        self._held = HeldAudio()
        self._frame_bytes = policy.frame_bytes
        self._period_bytes = policy.period_bytes
        self._rate = policy.rate
        self._limit = math.ceil((policy.withdraw_hold + HOLD_SLACK_SECONDS) * policy.rate) * policy.frame_bytes
        self._since: float | None = None

    @property
    def since(self) -> float | None:
        """When (seconds after set-up) the oldest audio held back was captured; None while none is held back."""
        return self._since

    def begin(self, offset: float) -> None:
        """Hold back, from the period still waiting on, what is captured; `offset` (seconds after set-up) is
        when that period was read. Already holding back, go on."""
        if self._since is None:
            self._since = offset - self._held.size / self._frame_bytes / self._rate

    def take(self, pcm: bytes | memoryview, write: Write) -> int:
        """Add `pcm` (whole periods) and give `write` all but the last period; while holding back, give
        `write` only what no withdrawal can claim any more; how many frames `write` got."""
        self._held.add(pcm)
        if self._since is None:
            # Not `release`: zeroing the whole buffer each time would cost the capture loop, and the next
            # audio overwrites what was passed on; `close` zeroes it when capture stops.
            passed = max(0, self._held.size - self._period_bytes)
            if passed:
                self._held.pass_on(passed, write)
            return passed // self._frame_bytes
        if self._held.size <= self._limit:
            return 0
        over = self._held.size - self._limit
        self._held.pass_on(over, write)
        frames = over // self._frame_bytes
        self._since += frames / self._rate
        return frames

    def release(self, write: Write) -> int:
        """The presses ended without a withdrawal: give everything held to `write`, in order, zero the buffer
        and hold back no more; how many frames `write` got."""
        held = self._held.size
        try:
            if held:
                self._held.pass_on(held, write)
        finally:
            self._held.wipe()
            self._since = None
        return held // self._frame_bytes

    def close(self, write: Write | None) -> tuple[int, float | None]:
        """Capture closes. Holding back (a withdrawal, or a pause or end while a CONSENT button is down): zero
        what is held, never written. Otherwise give `write` the period still waiting, unless `write` is None
        (the files failed: nothing more can go to them; it is zeroed). How many frames `write` got, and when
        the audio dropped began (seconds after set-up; None if none was held back)."""
        since = self._since
        if since is None and write is not None:
            return self.release(write), None
        self._held.wipe()
        self._since = None
        return 0, since
