"""Telling systemd how the box is: sd_notify through systemd-python.

READY=1 once the pins, the card and the settings have been checked; WATCHDOG=1 from each turn of
the main loop, so a loop that hangs stops the pings and systemd restarts the box (WatchdogSec=);
STATUS= says in words whether it can record; STOPPING=1 at shutdown. Without NOTIFY_SOCKET (not
under systemd) every call does nothing.
"""

from __future__ import annotations

from systemd import daemon


class Notifier:
    """The box's messages to its service manager."""

    def ready(self, status: str) -> None:
        """The box is up: its pins, card and settings were checked."""
        daemon.notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        """A new status line (shown by `systemctl status consentbox`)."""
        daemon.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        """The main loop turned once more."""
        daemon.notify("WATCHDOG=1")

    def stopping(self) -> None:
        """The box is finalising what is open and stopping."""
        daemon.notify("STOPPING=1\nSTATUS=stopping")
