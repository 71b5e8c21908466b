"""Audio held back while a CONSENT press may yet become a withdrawal (docs/product.md, "Withdrawal").

From the moment a CONSENT button goes down while capturing (`HoldBackAudio`), nothing captured is written:
each period waits in memory. When the presses end without a withdrawal (`WriteHeldAudio`) it is written, in
order, and capture goes on: the recording has no gap. When capture closes first (the withdrawal) it is
zeroed, never written, and the capture interval ends where the hold-back began.

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
    """The gate between capture and a session's files: open, or holding audio back since `since`."""

    def __init__(self, policy: Policy) -> None:
        self._held = HeldAudio()
        self._frame_bytes = policy.frame_bytes
        self._rate = policy.rate
        self._limit = math.ceil((policy.withdraw_hold + HOLD_SLACK_SECONDS) * policy.rate) * policy.frame_bytes
        self._since: float | None = None

    @property
    def since(self) -> float | None:
        """When (seconds after set-up) the oldest audio held back was captured; None while none is held back."""
        return self._since

    def begin(self, offset: float) -> None:
        """Hold back what is captured from `offset` (seconds after set-up) on; already holding back, go on."""
        if self._since is None:
            self._since = offset

    def take(self, pcm: bytes, write: Write) -> int:
        """Give `pcm` (whole frames) to `write` now, or, while holding back, hold it, giving `write` only what
        no withdrawal can claim any more; how many frames `write` got."""
        if self._since is None:
            write(memoryview(pcm))
            return len(pcm) // self._frame_bytes
        self._held.add(pcm)
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
        if held:
            self._held.pass_on(held, write)
        self._held.wipe()
        self._since = None
        return held // self._frame_bytes

    def discard(self) -> float | None:
        """Capture closes: zero what is held, never written, and hold back no more; when the audio discarded
        began (seconds after set-up), None if nothing was held back."""
        self._held.wipe()
        since, self._since = self._since, None
        return since
