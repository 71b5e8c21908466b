"""A socket that speaks the sd_notify protocol, standing in for systemd in tests."""

from __future__ import annotations

import socket
from pathlib import Path


class NotifySocket:
    """A datagram socket at `path` that receives what a service sends to NOTIFY_SOCKET."""

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.settimeout(timeout)

    def receive(self, timeout: float | None = None) -> str:
        """The next message; socket.timeout (TimeoutError) if none comes in `timeout` seconds."""
        if timeout is not None:
            self._socket.settimeout(timeout)
        return self._socket.recv(4096).decode("utf-8")

    def close(self) -> None:
        self._socket.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> NotifySocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
