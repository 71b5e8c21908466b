"""The session lock: `session.lock` in the box's state directory.

The box holds it from a session's set-up to its end; provisioning and the retention wipe take it
before they change anything, and give up if they cannot. So a bundle is never installed, and no
recording is wiped, while a session is open: whichever process comes first wins, and the others see
it. It is an `flock`, so a process that dies lets go of it at once. `exclusive` is the same kind of
lock around the read, change and replace of a shared state file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from consentbox.state.files import SESSION_LOCK


class SessionLock:
    """One process's handle on the session lock of a state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SESSION_LOCK
        self._fd = -1

    @property
    def held(self) -> bool:
        """Whether this handle holds the lock."""
        return self._fd >= 0

    def acquire(self, *, wait: bool) -> bool:
        """Take the lock (waiting for another holder to let go if `wait`); whether it is now held."""
        if self.held:
            return True
        fd = _open_lock_file(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Let go of the lock (a no-op if not held)."""
        if self.held:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = -1


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on the lock file `path` (made if missing) for the block: for the state
    files that several processes read, change and replace (the clock floor, the expiry index)."""
    fd = _open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    # Read-only is enough for an flock, and lets the box and root-run jobs share a file either made.
    return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
