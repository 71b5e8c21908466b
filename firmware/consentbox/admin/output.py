"""Output files that appear whole or not at all.

A decryption that fails half-way must not leave a half file that looks like a recording, so output
goes to a hidden temporary file beside the target and is renamed over it only on success.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def whole_file(path: Path, *, mode: int = 0o600) -> Iterator[BinaryIO]:
    """Yield a file that becomes `path` (with `mode`) when the block ends without an exception."""
    directory = path.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def output_stream(path: Path | None, *, mode: int = 0o600) -> Iterator[BinaryIO]:
    """`whole_file(path)`, or standard output when `path` is None."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
    else:
        with whole_file(path, mode=mode) as out:
            yield out


@contextlib.contextmanager
def input_stream(path: Path | None) -> Iterator[BinaryIO]:
    """The file at `path` opened for reading, or standard input when `path` is None."""
    if path is None:
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as src:
            yield src
