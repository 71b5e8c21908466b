"""A power cut at a chosen system call, for crash tests that run the code under test in a forked child.

`cut_power_at` replaces the `os` functions that change a disk so that their `call`-th call (counted
across them all) is where the power goes. What a real cut may leave of that call is left: part of a
write, and of a sync only part of what it was syncing (the file is cut back to somewhere between its
size at its last sync and now); then the process is SIGKILLed. A cut can also come just after the
call instead. The count lives in memory shared with the parent, so the parent learns how many calls
a whole run makes (to try each of them) and where a cut landed (`on_cut`, told before it dies).
"""

from __future__ import annotations

import os
import random
import signal
import stat
from collections.abc import Callable, Sequence

#: The calls that change what a disk holds, and so where a power cut matters.
DISK_CALLS = ("write", "fsync", "fdatasync", "ftruncate", "unlink", "replace", "rename")


def cut_power_at(
    call: int,
    calls: memoryview,
    *,
    rng: random.Random,
    names: Sequence[str] = DISK_CALLS,
    after: bool = False,
    on_cut: Callable[[str, tuple], None] = lambda name, args: None,
) -> None:
    """From now on in this process, die at disk call number `call` (1-based; `calls[0]` counts them).

    Only ever call this in a child that is meant to die: it changes the `os` module for good.
    """
    real = {name: getattr(os, name) for name in (*names, "open")}
    synced: dict[int, int] = {}  # descriptor -> its file's size at its last sync (or its open)

    def die(name: str, args: tuple) -> None:
        on_cut(name, args)
        if not after and name == "write":
            view = memoryview(args[1])
            real["write"](args[0], view[:rng.randint(0, len(view))])
        elif not after and name in ("fsync", "fdatasync") and args[0] in synced:
            status = os.fstat(args[0])
            if stat.S_ISREG(status.st_mode):
                os.ftruncate(args[0], rng.randint(min(synced[args[0]], status.st_size), status.st_size))
        os.kill(os.getpid(), signal.SIGKILL)

    def wrapped(name: str) -> Callable[..., object]:
        def disk_call(*args: object, **kwargs: object) -> object:
            calls[0] += 1
            here = calls[0] == call
            if here and not after:
                die(name, args)
            result = real[name](*args, **kwargs)
            if name in ("fsync", "fdatasync"):
                synced[args[0]] = os.fstat(args[0]).st_size  # type: ignore[arg-type]
            if here:
                die(name, args)
            return result
        return disk_call

    def open_(*args: object, **kwargs: object) -> int:
        fd = real["open"](*args, **kwargs)
        synced[fd] = os.fstat(fd).st_size
        return fd

    for name in names:
        setattr(os, name, wrapped(name))
    os.open = open_  # type: ignore[assignment]
