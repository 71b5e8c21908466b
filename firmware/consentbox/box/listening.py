"""The box's ear on one stretch of capture: a microphone that is heard (issue 17, point 5).

From the open of capture to its close, what is captured is looked at (never kept) for two things, both
decided in the core (`core.level`, `core.silence`):
- for its first LEVEL_SHOWN_SECONDS, the STATUS LED flickers with the input level, so the room sees the
  box hears them;
- once the microphone has heard nothing for `silence_alert` seconds, the box alerts: the STATUS LED
  shows amber code 11 (`Problem.MICROPHONE_SILENT`), the buzzer sounds `Tone.SILENCE`, and the ledger
  records a `fault`. Recording goes on. When sound comes back, or capture closes while it is still
  silent, the ledger records `silence_ended`; sound coming back shows the machine's pattern again, and a
  close is followed by the machine's pattern for the state it closes into (the machine changes its pattern
  while recording only with the state, which closes capture).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consentbox.box.timeline import command_entry
from consentbox.core.commands import PlayTone, ShowStatus
from consentbox.core.feedback import SILENT as SILENCE_PATTERN
from consentbox.core.feedback import Tone
from consentbox.core.level import LEVEL_SHOWN_SECONDS, audible, peak_dbfs
from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem
from consentbox.core.silence import SilenceBegan, SilenceEnded, SilenceWatch
from consentbox.hw.ports import Panel, PanelCommand
from consentbox.ledger import Kind

#: What the STATUS LED shows while the microphone hears nothing and recording goes on.
SILENT = ShowStatus(SILENCE_PATTERN)


class Listening:
    """One stretch of capture, opened at `opened`, heard period by period until `close`.

    `log` appends to the consent ledger under the session (as `Box._log`), `report` adds to the timeline,
    and `steady` is the STATUS pattern the session machine gave last, shown again when sound comes back.
    """

    def __init__(self, *, panel: Panel, policy: Policy, opened: float, log: Callable[..., None],
                 report: Callable[[dict[str, Any]], None], steady: Callable[[], ShowStatus | None]) -> None:
        self._panel = panel
        self._sample_format = policy.sample_format
        self._period_bytes = policy.period_bytes
        self._period_seconds = policy.period_seconds
        self._watch = SilenceWatch(policy.silence_alert, opened=opened)
        self._level_until = opened + LEVEL_SHOWN_SECONDS
        self._level_shown = False
        self._log = log
        self._report = report
        self._steady = steady

    def showing_level(self, at: float) -> bool:
        """Whether the STATUS LED shows the input level at `at` (so the box hands audio on more often)."""
        return at < self._level_until and not self._watch.alerting

    @property
    def alert_due(self) -> float:
        """When the silence alert comes if nothing is heard until then (infinity if it cannot): the box hands
        audio on by then, so the alert comes within a period of it."""
        return self._watch.alert_due

    def hear(self, pcm: bytes | memoryview, at: float) -> None:
        """Look at captured audio, whole periods, the last of which ended at `at`; nothing of it is kept."""
        if self.showing_level(at):
            self._show_level(peak_dbfs(pcm, self._sample_format))
        else:
            self._show_level(None)
        for heard, end in self._heard_periods(pcm, at):
            self._take(self._watch.hear(heard, end), end)

    def _heard_periods(self, pcm: bytes | memoryview, at: float) -> list[tuple[bool, float]]:
        """What the watch must be told of `pcm`, whole periods, to answer as it would period by period, each
        with the time it ends at: the last period heard and the silence after it; while alerting, also the
        silence before the first period heard, and that period (when sound came back). The box hands audio on
        by the alert's due time, so no alert falls inside a block, and a block is far shorter than any alert,
        so the silences between sounds inside it do not matter either. A silent block takes one look; a block
        of sound one more for each period looked at from its end (and, alerting, from its start)."""
        if not audible(pcm, self._sample_format):
            return [(False, at)]
        size, alerting = self._period_bytes, self._watch.alerting
        with memoryview(pcm) as view:
            count = -(-len(view) // size)  # a part period at the end (none from ALSA) counts as one

            def heard(n: int) -> bool:
                with view[n * size : (n + 1) * size] as period:
                    return audible(period, self._sample_format)

            last = next(n for n in range(count - 1, -1, -1) if heard(n))
            first = next(n for n in range(last + 1) if heard(n)) if alerting else last

        def end(n: int) -> float:
            return at - (count - 1 - n) * self._period_seconds

        told = [(False, end(first - 1))] if first and alerting else []
        told += [(True, end(first))] + ([(True, end(last))] if last != first else [])
        return told + ([(False, at)] if last < count - 1 else [])

    def _take(self, change: SilenceBegan | SilenceEnded | None, at: float) -> None:
        if isinstance(change, SilenceBegan):
            self._show_level(None)
            self._show(SILENT, at)
            self._show(PlayTone(Tone.SILENCE), at)
            self._report({"t": round(at, 6), "event": "fault", "problem": Problem.MICROPHONE_SILENT.text,
                          "detail": f"the microphone has heard nothing for {at - change.since:.0f} s; "
                                    "recording goes on: check it"})
            self._log(Kind.FAULT, at=at, problem=Problem.MICROPHONE_SILENT)
        elif isinstance(change, SilenceEnded):
            self._ended(change, at)

    def close(self, at: float) -> None:
        """Capture closed at `at`: the level no longer shown, and a silence still alerted ended."""
        self._show_level(None)
        ended = self._watch.close(at)
        if ended is not None:
            self._ended(ended, at)

    def _ended(self, ended: SilenceEnded, at: float) -> None:
        seconds = round(ended.seconds, 3)
        self._report({"t": round(at, 6), "event": "silence_ended", "seconds": seconds, "heard": ended.heard})
        self._log(Kind.SILENCE_ENDED, at=at, seconds=seconds, heard=ended.heard)
        steady = self._steady()
        if ended.heard and steady is not None:
            self._show(steady, at)

    def _show(self, command: PanelCommand, at: float) -> None:
        self._panel.show(command)
        self._report(command_entry(at, command, ""))

    def _show_level(self, dbfs: float | None) -> None:
        if dbfs is None and not self._level_shown:
            return
        self._level_shown = dbfs is not None
        self._panel.show_level(dbfs)
