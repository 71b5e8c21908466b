"""Finding whole lines from the end of a ledger file, without reading the rest of it.

The box's ledger grows for years; at each start only its last line matters, so it is read backwards
from the end.
"""

from __future__ import annotations

import os

#: Longer lines are not entries (a real one is a few hundred bytes); the cap bounds memory on a bad file.
MAX_LINE = 64 * 1024
_STEP = 4096


def last_newline(fd: int, before: int) -> int:
    """The offset of the last newline in the file's first `before` bytes, or -1 if there is none."""
    position = before
    while position > 0:
        step = min(_STEP, position)
        position -= step
        found = os.pread(fd, step, position).rfind(b"\n")
        if found >= 0:
            return position + found
    return -1
