"""How fast our age is next to the `age` binary, and how little memory it needs, in one run.

    python -m bench.age [SIZE_MIB]

Both sides stream the same random file through files in one temporary directory, in alternating
runs that each start with no dirty pages left over. Ours runs in a child process that times its
own work (interpreter start-up excluded, as on the box, where the daemon is already running) and
reports its own peak RSS; `age` is timed as a whole command. The run is repeated at 64 MiB to show
that our memory does not grow with the file.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from consentbox.crypto import X25519Identity, decrypt, encrypt, identity_file_text, parse_identity_file

_RUNS = 3
_SMALL_MIB = 64
_MIB = 1024 * 1024
_WORKER_FLAG = "--worker"


def _settle(dst: Path) -> None:
    # A fresh output file, and the previous run's writes on disk, so no run pays for another's.
    dst.unlink(missing_ok=True)
    os.sync()


def _run_ours(direction: str, src: Path, dst: Path, key: Path) -> tuple[float, float, int]:
    """One run of ours in a child process: its own seconds, the wall clock with start-up, peak RSS."""
    _settle(dst)
    command = [sys.executable, "-m", __spec__.name, _WORKER_FLAG, direction, str(src), str(dst), str(key)]
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


def _measure(size_mib: int, age: str, workdir: Path) -> list[str]:
    key = workdir / "key.txt"
    key.write_text(identity_file_text(X25519Identity.generate(), datetime.now(UTC)))
    plain = workdir / "plain.bin"
    with plain.open("wb") as file:
        for _ in range(size_mib):
            file.write(os.urandom(_MIB))
    ours_age, their_age = workdir / "ours.age", workdir / "theirs.age"
    ours_out, their_out = workdir / "ours.out", workdir / "theirs.out"
    steps = {
        # Each side decrypts the file the other made, which checks interoperability on the way.
        "encrypt": ((plain, ours_age), (plain, their_age)),
        "decrypt": ((their_age, ours_out), (ours_age, their_out)),
    }

    megabytes = size_mib * _MIB / 1e6
    lines = [f"{size_mib} MiB, best of {_RUNS} alternating runs:"]
    for direction, (ours, theirs) in steps.items():
        runs, age_seconds = [], []
        for _ in range(_RUNS):
            runs.append(_run_ours(direction, *ours, key))
            age_seconds.append(_run_age([age, f"--{direction}", "-i", str(key)], *theirs))
        own, with_start = min(run[0] for run in runs), min(run[1] for run in runs)
        theirs_best = min(age_seconds)
        peak_rss = max(run[2] for run in runs)
        lines += [
            f"  {direction}: ours {megabytes / own:.1f} MB/s, age {megabytes / theirs_best:.1f} MB/s,"
            f" ours/age {theirs_best / own:.2f}; our peak RSS {peak_rss / 1e6:.1f} MB",
            f"    (counting our interpreter start-up: {megabytes / with_start:.1f} MB/s,"
            f" ours/age {theirs_best / with_start:.2f})",
        ]
    if not _sha256(ours_out) == _sha256(their_out) == _sha256(plain):
        raise RuntimeError("a decrypted file differs from the plaintext: the benchmark is void")
    for path in (plain, ours_age, their_age, ours_out, their_out):
        path.unlink()
    return lines


def run_age_benchmark(size_mib: int = 256) -> list[str]:
    """Encrypt and decrypt `size_mib` MiB, then 64 MiB, with ours and with `age`; lines to print."""
    age = shutil.which("age")
    if age is None:
        raise RuntimeError("the `age` command is not installed: apt-get install age")
    lines = ["age benchmark: ours timed inside its own process, `age` as a whole command"]
    with tempfile.TemporaryDirectory(prefix="bench-age-") as workdir:
        for size in dict.fromkeys([size_mib, _SMALL_MIB]):
            lines += _measure(size, age, Path(workdir))
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
