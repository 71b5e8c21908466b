"""When the microphone has heard nothing for too long: the silence alert, decided from levels and times.

A `SilenceWatch` follows one stretch of capture (from an open to its close). It is told, period by
period, whether the period was audible (`core.level.audible`) and the time at its end; it answers when
to alert (silence has lasted `alert_after` seconds) and when an alerted silence is over (sound came back,
or capture closed). A silence runs from the end of the last audible period (or the open) to the start of
the next audible one (or the close): what is known to be silent, to a period. It keeps no audio, reads no
clock and does no I/O: the box performs its answers, and the admin tool runs the same watch over an
exported recording.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SilenceBegan:
    """Alert: the microphone has heard nothing since `since` (recording goes on)."""

    since: float


@dataclass(frozen=True)
class SilenceEnded:
    """An alerted silence is over: it began at `since` and lasted `seconds`; `heard` when sound came back,
    false when capture closed while it was still silent."""

    since: float
    seconds: float
    heard: bool


class SilenceWatch:
    """Watches one stretch of capture, opened at `opened`, for silence of `alert_after` seconds (0: never)."""

    def __init__(self, alert_after: float, *, opened: float) -> None:
        self._alert_after = alert_after
        self._since = opened  # the end of the last audible period, or the open
        self._last = opened  # the end of the last period, so the start of the next
        self._alerted = False

    @property
    def alerting(self) -> bool:
        """Whether a silence has been alerted and is not over."""
        return self._alerted

    def hear(self, audible: bool, at: float) -> SilenceBegan | SilenceEnded | None:
        """Take one period that ended at `at`: the alert when silence has lasted `alert_after` seconds, its
        end when sound comes back after an alert, else None."""
        start, self._last = self._last, at
        if audible:
            since, self._since = self._since, at
            if self._alerted:
                self._alerted = False
                return SilenceEnded(since, start - since, heard=True)
            return None
        if not self._alerted and self._alert_after > 0 and at - self._since >= self._alert_after:
            self._alerted = True
            return SilenceBegan(self._since)
        return None

    @property
    def alert_due(self) -> float:
        """When the alert comes if nothing is heard until then (infinity: alerted already, or never)."""
        if self._alerted or self._alert_after <= 0:
            return float("inf")
        return self._since + self._alert_after

    def close(self, at: float) -> SilenceEnded | None:
        """Capture closed at `at`: the end of an alerted silence still going on, else None."""
        if not self._alerted:
            return None
        self._alerted = False
        return SilenceEnded(self._since, at - self._since, heard=False)
