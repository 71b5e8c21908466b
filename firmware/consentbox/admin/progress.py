"""A progress bar for long admin commands, drawn only on a terminal.

Messages go through the same object, so they land above the bar instead of through it; when the
stream is not a terminal (a log, a pipe, a test) only the messages are written.
"""

from __future__ import annotations

from typing import TextIO

_WIDTH = 30
_CLEAR_LINE = "\r\033[K"


class Progress:
    """Counts work done out of `total`; shows a bar on `stream` when `visible`."""

    def __init__(self, stream: TextIO, total: int, *, visible: bool) -> None:
        self._stream = stream
        self._total = max(total, 1)
        self._visible = visible
        self._done = 0
        self._shown = -1

    def advance(self, amount: int) -> None:
        """Count `amount` more units done; the bar is redrawn only when its percentage changes."""
        self._done += amount
        if self._visible and self._percent() != self._shown:
            self._draw()

    def say(self, line: str) -> None:
        """Write a message line, keeping the bar below it."""
        if self._visible:
            self._stream.write(_CLEAR_LINE)
        self._stream.write(line + "\n")
        if self._visible:
            self._draw()

    def close(self) -> None:
        """Remove the bar, leaving the messages."""
        if self._visible:
            self._stream.write(_CLEAR_LINE)
            self._stream.flush()

    def _percent(self) -> int:
        return min(100, self._done * 100 // self._total)

    def _draw(self) -> None:
        self._shown = self._percent()
        filled = self._shown * _WIDTH // 100
        self._stream.write(f"\r[{'#' * filled}{'.' * (_WIDTH - filled)}] {self._shown:3d}%")
        self._stream.flush()
