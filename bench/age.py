"""How fast our age is next to the `age` binary, and how little memory it needs, in one run.

    python -m bench.age [SIZE_MIB]

Both sides stream the same random file through files in one temporary directory, in alternating
runs that each start with no dirty pages left over. Ours runs in a child process that times its
own work (interpreter start-up excluded, as on the box, where the daemon is already running) and
reports its own peak RSS; `age` is timed as a whole command. The run is repeated at 64 MiB to show
that our memory does not grow with the file. Under `make bench` ours runs under two Pythons in turn,
one with Debian bookworm's cryptography (bench/columns.py); each decrypts what `age` made, and `age`
decrypts what each made.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.columns import Column, columns_for, side_by_side
from bench.figures import figure_lines
from consentbox.crypto import X25519Identity, decrypt, encrypt, identity_file_text, parse_identity_file

_RUNS = 3
_SMALL_MIB = 64
_MIB = 1024 * 1024
_WORKER_FLAG = "--worker"


def _settle(dst: Path) -> None:
    # A fresh output file, and the previous run's writes on disk, so no run pays for another's.
    dst.unlink(missing_ok=True)
    os.sync()


def _run_ours(column: Column, direction: str, src: Path, dst: Path, key: Path) -> tuple[float, float, int]:
    """One run of ours in a child process of `column`'s Python: its own seconds, the wall clock with start-up,
    peak RSS."""
    _settle(dst)
    command = [str(column.python), "-m", __spec__.name, _WORKER_FLAG, direction, str(src), str(dst), str(key)]
    started = time.perf_counter()
    seconds, peak_rss = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()
    return float(seconds), time.perf_counter() - started, int(peak_rss)


def _run_age(command: list[str], src: Path, dst: Path) -> float:
    """Wall-clock seconds of one `age` command reading `src` and writing `dst`."""
    _settle(dst)
    started = time.perf_counter()
    subprocess.run([*command, "-o", str(dst), str(src)], check=True, capture_output=True)
    return time.perf_counter() - started


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_MIB):
            digest.update(block)
    return digest.hexdigest()


def _measure(size_mib: int, age: str, columns: Sequence[Column], workdir: Path) -> list[str]:
    key = workdir / "key.txt"
    key.write_text(identity_file_text(X25519Identity.generate(), datetime.now(UTC)))
    plain = workdir / "plain.bin"
    with plain.open("wb") as file:
        for _ in range(size_mib):
            file.write(os.urandom(_MIB))
    ours_age = [workdir / f"ours.{n}.age" for n in range(len(columns))]
    ours_out = [workdir / f"ours.{n}.out" for n in range(len(columns))]
    their_age, their_out = workdir / "theirs.age", workdir / "theirs.out"
    steps = {
        # Each side decrypts the file the other made, which checks interoperability on the way.
        "encrypt": ([(plain, made) for made in ours_age], (plain, their_age)),
        "decrypt": ([(their_age, out) for out in ours_out], (ours_age[0], their_out)),
    }

    megabytes = size_mib * _MIB / 1e6
    lines = [f"{size_mib} MiB, best of {_RUNS} alternating runs; ours:"]
    rows: list[tuple[str, list[str]]] = []
    figures = {"bench.age.runs": str(_RUNS)}
    for direction, (ours, theirs) in steps.items():
        runs: list[list[tuple[float, float, int]]] = [[] for _ in columns]
        age_seconds = []
        for _ in range(_RUNS):
            for column, files, column_runs in zip(columns, ours, runs, strict=True):
                column_runs.append(_run_ours(column, direction, *files, key))
            age_seconds.append(_run_age([age, f"--{direction}", "-i", str(key)], *theirs))
        theirs_best = min(age_seconds)
        own = [min(run[0] for run in column_runs) for column_runs in runs]
        with_start = [min(run[1] for run in column_runs) for column_runs in runs]
        peak_rss = [max(run[2] for run in column_runs) for column_runs in runs]
        rows += [
            (f"  {direction}: ours MB/s", [f"{megabytes / seconds:.1f}" for seconds in own]),
            (f"  {direction}: ours/age (age {megabytes / theirs_best:.1f} MB/s)",
             [f"{theirs_best / seconds:.2f}" for seconds in own]),
            (f"  {direction}: ours/age counting our interpreter start-up",
             [f"{theirs_best / seconds:.2f}" for seconds in with_start]),
            (f"  {direction}: our peak RSS, MB", [f"{peak / 1e6:.1f}" for peak in peak_rss]),
        ]
        # What BENCHMARKS.md quotes, as it quotes it.
        name = f"bench.age.{size_mib}-mib.{direction}"
        figures[f"{name}.age-mb-s"] = f"{megabytes / theirs_best:.0f}"
        for column, seconds, started, peak in zip(columns, own, with_start, peak_rss, strict=True):
            figures |= {column.figure(name, "ours-mb-s"): f"{megabytes / seconds:.0f}",
                        column.figure(name, "ours-per-age"): f"{theirs_best / seconds:.2f}",
                        column.figure(name, "with-start-up"): f"{theirs_best / started:.2f}",
                        column.figure(name, "peak-rss-mb"): f"{peak / 1e6:.1f}"}
    for made in ours_age[1:]:  # the first was decrypted by `age` above; the others are checked here
        _run_age([age, "--decrypt", "-i", str(key)], made, their_out)
        if _sha256(their_out) != _sha256(plain):
            raise RuntimeError(f"`age` decrypts {made.name} to other than the plaintext: the benchmark is void")
    if not {_sha256(path) for path in [*ours_out, their_out]} == {_sha256(plain)}:
        raise RuntimeError("a decrypted file differs from the plaintext: the benchmark is void")
    for path in (plain, *ours_age, their_age, *ours_out, their_out):
        path.unlink()
    return [*lines, *side_by_side(columns, rows), figure_lines(figures)]


def run_age_benchmark(size_mib: int = 256, *, columns: Sequence[Column] | None = None) -> list[str]:
    """Encrypt and decrypt `size_mib` MiB, then 64 MiB, with ours (under each of `columns`, by default this
    Python alone) and with `age`; lines to print."""
    age = shutil.which("age")
    if age is None:
        raise RuntimeError("the `age` command is not installed: apt-get install age")
    columns = columns or columns_for()
    lines = ["age benchmark: ours timed inside its own process, `age` as a whole command"]
    with tempfile.TemporaryDirectory(prefix="bench-age-") as workdir:
        for size in dict.fromkeys([size_mib, _SMALL_MIB]):
            lines += _measure(size, age, columns, Path(workdir))
    return lines


def _peak_rss_bytes() -> int:
    """This process's peak resident memory since it started (VmHWM; Linux, like the box)."""
    # Not getrusage(): a child's ru_maxrss starts from its parent's size at the moment it was
    # spawned, so it would report the benchmark driver's memory, not ours.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM line: measuring peak memory needs Linux")


def _work(direction: str, src: str, dst: str, key: str) -> float:
    """One run of ours in this (child) process: the seconds spent streaming `src` to `dst`."""
    identities = parse_identity_file(Path(key).read_text(), key)
    started = time.perf_counter()
    with open(src, "rb") as source, open(dst, "wb") as target:
        if direction == "encrypt":
            encrypt(source, target, [identity.recipient for identity in identities])
        else:
            decrypt(source, target, identities)
    return time.perf_counter() - started


if __name__ == "__main__":
    if sys.argv[1:2] == [_WORKER_FLAG]:
        print(_work(*sys.argv[2:6]), _peak_rss_bytes())
    else:
        print("\n".join(run_age_benchmark(*(int(arg) for arg in sys.argv[1:2]))))
