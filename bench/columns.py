"""Ours measured once per Python, each with its own cryptography, and the figures laid side by side.

The box runs Debian bookworm's python3-cryptography (38.0.4), older than the one a venv gets from PyPI,
and slower on our write path (cryptography 38 takes only `bytes` for ChaCha20-Poly1305: one 64 KiB copy
a chunk). So `make bench` runs our side of each benchmark under this venv's Python and under a second
venv's with cryptography 38.0.4 (.cache/bench-crypto38, which the Makefile makes once), alternating
with the rest, and prints each figure of ours in one column per Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Column:
    """A Python that runs our side of the benchmarks (`python -m …`, its `consentbox` command beside it)."""

    python: Path
    cryptography: str  # the version it imports
    first: bool  # the Python running the benchmark: its figures keep their plain names

    @property
    def consentbox(self) -> Path:
        """The `consentbox` command installed with this Python."""
        return self.python.parent / "consentbox"

    @property
    def heading(self) -> str:
        return f"cryptography {self.cryptography}"

    def environment(self, cache: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment to run its `consentbox` in: `base` (by default this process's), with Python's
        byte-code cache on and kept in `cache`. The Debian package ships its modules byte-compiled, so the
        box never compiles them at start-up; a run with the cache off would (the first run fills it)."""
        environment = {**(os.environ if base is None else base), "PYTHONPYCACHEPREFIX": str(cache)}
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
        return environment

    def figure(self, name: str, leaf: str) -> str:
        """The name of figure `leaf` of `name` measured under this Python: `name.leaf`, and for any but the
        first, `name.cryptography-MAJOR.leaf`."""
        return f"{name}.{leaf}" if self.first else f"{name}.cryptography-{self.cryptography.split('.')[0]}.{leaf}"


def columns_for(others: Sequence[str] = ()) -> list[Column]:
    """This Python's column, then one for each Python in `others`; RuntimeError if one cannot run ours."""
    found: list[Column] = []
    for python in [sys.executable, *others]:
        done = subprocess.run([python, "-c", "import consentbox, cryptography; print(cryptography.__version__)"],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{python} cannot import consentbox and cryptography: {done.stderr.strip()}")
        found.append(Column(Path(python).absolute(), done.stdout.strip(), first=not found))
    return found


def side_by_side(columns: Sequence[Column], rows: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """`rows` (a label, then one figure per column) as lines of a table headed by each column's heading."""
    width = max(len(label) for label, _ in rows)
    cells = [max(len(column.heading), *(len(row[n]) for _, row in rows)) for n, column in enumerate(columns)]
    lines = [" " * width + "".join(f"  {column.heading:>{cell}}" for column, cell in zip(columns, cells, strict=True))]
    lines += [f"{label:<{width}}" + "".join(f"  {figure:>{cell}}" for figure, cell in zip(row, cells, strict=True))
              for label, row in rows]
    return lines
