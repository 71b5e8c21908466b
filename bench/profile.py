"""Where a recording's CPU goes: one `consentbox simulate` run under cProfile, its time by part of the box.

The recording benchmark (bench/record.py) runs the box once more under Python's profiler and prints the
share of the profile's time each part of the box took: a reproducible answer to "where does the rest of
the CPU go", printed as figures that BENCHMARKS.md quotes. The profiler adds a cost to every Python call,
so the shares lean towards the parts that make many calls; the recording benchmark's own CPU figures are
taken without it.
"""

from __future__ import annotations

import pstats
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.columns import Column

# The parts: a name for the figures, words for the report, and tests of a profile entry's file (or the
# built-in's name) and function, of which the first part with one that matches takes the entry's own time.
# What none matches is "rest".
_PARTS: Sequence[tuple[str, str, Sequence[str]]] = (
    ("start-up", "start-up: imports and set-up",
     ("<frozen importlib", "builtins.compile", "marshal.", "_imp.", "builtins.__build_class__", "builtins.exec",
      "/gpiozero/", "/colorzero/", "/dataclasses.py", "/enum.py", "/re/", "/typing.py", "/inspect.py")),
    ("alsa", "reading ALSA periods", ("alsaaudio", "/hw/alsa", "/hw/held_audio.py", "/box/clock.py")),
    ("microphone", "the simulated microphone: loading the WAV", ("/sim/", "BufferedReader")),
    ("loop", "the capture loop and the hold-back", ("/box/box.py", "/box/hold_back.py")),
    ("encryption", "encryption", ("/crypto/", "ChaCha20Poly1305", "openssl.aead")),
    ("sha-256", "SHA-256", ("_hashlib", "HASH")),
    ("card-writes", "writing and syncing the card",
     ("posix.fdatasync", "posix.fsync", "posix.write", "BufferedWriter", "/storage/", "/recording/", "/ledger/",
      "posix.open", "io.open")),
    ("hearing", "hearing: the level and silence", ("/core/level.py", "/box/listening.py", "/core/silence.py",
                                                   "translate")),
    ("card-check", "the card check, once a second", ("/hw/card.py", "TextIOWrapper", "posix.stat", "realpath")),
    ("machine", "the session machine: deadlines, holds", ("/core/",)),
    ("rest", "the rest", ()),
)

# CPU time (not the wall clock's, which would count the waits for the disk and for other threads).
_RUN = ("import cProfile, sys, time\n"
        "sys.argv = sys.argv[1:]\n"
        "profile = cProfile.Profile(time.process_time)\n"
        "profile.run('from consentbox.cli.consentbox import main; main()')\n"
        "profile.dump_stats({out!r})\n")


def _part(file: str, function: str) -> str:
    where = f"{file} {function}"
    return next((name for name, _, tests in _PARTS if any(test in where for test in tests)), "rest")


def profile_run(column: Column, simulate: Sequence[str], environment: Mapping[str, str],
                workdir: Path) -> list[tuple[str, str, float]]:
    """Run `simulate` (a `consentbox simulate` command line of `column`, without the command) under cProfile;
    each part's name, words and share of the profile's time, in percent."""
    out = workdir / "recording.prof"
    subprocess.run([str(column.python), "-c", _RUN.format(out=str(out)), "consentbox", *simulate],
                   env=dict(environment), check=True, stdout=subprocess.DEVNULL)
    own = dict.fromkeys((name for name, _, _ in _PARTS), 0.0)
    # Stats.stats (not typed): (file, line, function) -> (primitive calls, calls, own time, cumulative, callers)
    entries = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    for (file, _, function), (_, _, seconds, _, callers) in entries.items():
        part = _part(file, function)
        if part == "rest" and file == "~":  # a built-in (len, isinstance…) none names: its callers' part
            for (caller_file, _, caller), (_, _, caller_seconds, _) in callers.items():
                own[_part(caller_file, caller)] += caller_seconds
        else:
            own[part] += seconds
    total = sum(own.values())
    return [(name, words, 100 * own[name] / total) for name, words, _ in _PARTS]
