"""What a `make bench` run measured: its date, the code, the machine and how busy it was, the software.

`make bench` prints these lines around its measurements and keeps them in its report (bench/report.txt),
so that every timing BENCHMARKS.md quotes names the run, the machine and the code it came from.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.figures import ROOT, figure_lines
from bench.record import Commands

_OS_RELEASE = Path("/etc/os-release")
_MEMINFO = Path("/proc/meminfo")


def _version(command: list[str]) -> str:
    """The first dotted version number that `command` prints about itself; `unknown` if none."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = re.search(r"\d+(?:\.\d+)+", done.stdout + done.stderr)
    return found.group() if found else "unknown"


def _commit() -> tuple[str, str]:
    """The checkout's commit, and whether its tree then held uncommitted changes (a sentence); or unknowns."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "unknown", "not a git checkout"
    # The report itself is rewritten by every run: a change to it alone is no change to what was measured.
    changes = [line for line in git("status", "--porcelain").stdout.splitlines()
               if not line.endswith(" bench/report.txt")]
    return head.stdout.strip(), f"{len(changes)} uncommitted changes in the tree" if changes else "a clean tree"


def _os_release(key: str) -> str:
    found = re.search(rf'^{key}="?([^"\n]*)"?$', _OS_RELEASE.read_text(encoding="utf-8"), re.MULTILINE)
    return found.group(1) if found else "unknown"


def _memory_gib() -> str:
    """The machine's memory, in whole GiB."""
    for line in _MEMINFO.read_text(encoding="ascii").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / (1 << 20):.0f}"  # in kB
    raise RuntimeError(f"{_MEMINFO} has no MemTotal line: make bench needs Linux")


def _load() -> str:
    """The load average over the last minute."""
    return f"{os.getloadavg()[0]:.1f}"


def run_started(commands: Commands) -> list[str]:
    """The lines that open a run: when, on what code, on what machine, how busy, with what software."""
    commit, tree = _commit()
    figures = {
        "bench.run.date": datetime.now(UTC).date().isoformat(),
        "bench.run.commit": commit,
        "bench.run.machine": platform.machine(),
        "bench.run.cores": str(os.cpu_count()),
        "bench.run.memory-gib": _memory_gib(),
        "bench.run.debian": _os_release("VERSION_ID"),
        "bench.run.kernel": ".".join(platform.release().split(".")[:2]),
        "bench.run.load-at-start": _load(),
        "bench.run.python": platform.python_version(),
        **{f"bench.run.{package}": metadata.version(package)
           for package in ("cryptography", "gpiozero", "pyalsaaudio")},
        "bench.run.age": _version([commands.age, "--version"]),
        "bench.run.alsa-utils": _version([commands.arecord, "--version"]),
    }
    return [
        f"make bench run of {figures['bench.run.date']} (UTC) on commit {commit}, {tree}",
        f"machine: {figures['bench.run.machine']}, {figures['bench.run.cores']} cores,"
        f" {figures['bench.run.memory-gib']} GiB, {_os_release('PRETTY_NAME')}, Linux {platform.release()},"
        f" load average {figures['bench.run.load-at-start']} at the start",
        f"software: Python {figures['bench.run.python']}, cryptography {figures['bench.run.cryptography']},"
        f" gpiozero {figures['bench.run.gpiozero']}, pyalsaaudio {figures['bench.run.pyalsaaudio']},"
        f" age {figures['bench.run.age']}, alsa-utils {figures['bench.run.alsa-utils']},"
        f" GNU time {_version([commands.time, '--version'])}",
        figure_lines(figures),
    ]


def run_ended() -> list[str]:
    """The line that closes a run: how busy the machine was at its end."""
    load = _load()  # one reading: the line and the figure say the same
    return [f"load average {load} at the end", figure_lines({"bench.run.load-at-end": load})]
