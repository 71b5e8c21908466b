"""The box's ear on one stretch of capture: a microphone that is heard (issue 17, point 5).

From the open of capture to its close, each period is looked at (never kept) for two things, both
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
        self._watch = SilenceWatch(policy.silence_alert, opened=opened)
        self._level_until = opened + LEVEL_SHOWN_SECONDS
        self._level_shown = False
        self._log = log
        self._report = report
        self._steady = steady

    def hear(self, pcm: bytes, at: float) -> None:
        """Look at one period of captured audio that ended at `at`; nothing of it is kept."""
        if at < self._level_until and not self._watch.alerting:
            self._show_level(peak_dbfs(pcm, self._sample_format))
        else:
            self._show_level(None)
        change = self._watch.hear(audible(pcm, self._sample_format), at)
        if isinstance(change, SilenceBegan):
            self._show_level(None)
            self._show(SILENT, at)
            self._show(PlayTone(Tone.SILENCE), at)
            self._report({"t": round(at, 6), "event": "fault", "problem": Problem.MICROPHONE_SILENT.text,
                          "detail": f"the microphone has heard nothing for {at - change.since:.0f} s; "
                                    "recording goes on: check it"})
            self._log(Kind.FAULT, problem=Problem.MICROPHONE_SILENT)
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
        self._log(Kind.SILENCE_ENDED, seconds=seconds, heard=ended.heard)
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
