"""What an age header costs for each recipient type, how many headers a session writes, and that the payload's
throughput does not depend on the type.

    python -m bench.headers [--repetitions N] [--minutes M] [PYTHON …]

Header: for X25519, post-quantum mlkem768x25519 and a token's p256tag, with 1 and with 4 recipients of the
type, the CPU time (time.process_time) of constructing an AgeWriter into memory, which writes the whole
header (one stanza, one encapsulation, per recipient; the header's MAC; the payload nonce) and nothing
else: the median of N repetitions, taken type after type in turn, in 4 child processes of each Python
alternating with the other Pythons'. And the header's size in bytes, as the age spec counts it (to its
MAC line; the 16-byte payload nonce follows it). A type that a Python's cryptography cannot use (HPKE
and ML-KEM need cryptography 47 or later) is reported as such, not measured.

Per session: the box writes a new age file, so a new header, for each audio segment, for each version of
the manifest and for each version of the ledger extract, rewritten after every entry of the session
(checkpoint seals every 22 s among them). The count comes from a session of M minutes (two consents, RECORD
held, the recording benchmark's test tone throughout, RECORD held to end it) played by `consentbox simulate`
in virtual time under this Python, with every AgeWriter constructed counted by what made it; a session's
header cost is that count times the median per file, every file to the same number of recipients.

Throughput: 64 MiB of random bytes (the size of the age benchmark's second run) encrypted to one X25519
recipient and to one mlkem768x25519 recipient, from memory to /dev/null, so that only the encryption is
timed (CPU time, in a child process of each Python), best of runs taken type after type in turn; a file of
each type is then decrypted and checked. The header is paid once a file, so the two rates should agree.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench.columns import Column, columns_for, side_by_side
from bench.figures import figure_lines
from consentbox.box.config import load_config
from consentbox.crypto import (
    AgeWriter,
    Identity,
    MLKEM768X25519Identity,
    P256TagRecipient,
    Recipient,
    UnsupportedKey,
    X25519Identity,
    decrypt,
    encrypt,
)
from consentbox.crypto.stream import NONCE_SIZE
from consentbox.sim.demo import write_test_tone

_REPETITIONS = 2000
_ROUNDS = 4  # child processes per Python, alternating with the other Pythons'
_WARM_UP = 20  # unmeasured repetitions first: the first HPKE calls set things up
_COUNTS = (1, 4)
_SESSION_MINUTES = 50  # a therapy hour
_THROUGHPUT_MIB = 64
_THROUGHPUT_RUNS = 5
_MIB = 1024 * 1024
_WORKER_FLAG = "--worker"
_THROUGHPUT_FLAG = "--worker-throughput"
_TONE_CYCLE_SECONDS = 24  # write_test_tone's pitch repeats every 24 s: its tone is this much, over and over

X25519, PQ, TAG = "X25519", "mlkem768x25519", "p256tag"
_TYPES = (X25519, PQ, TAG)


def _p256tag_recipient() -> P256TagRecipient:
    """A token's key, as a token would make it: a P-256 point, compressed."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.X962, PublicFormat.CompressedPoint)
    return P256TagRecipient(point)


_MAKERS: dict[str, Callable[[], Recipient]] = {
    X25519: lambda: X25519Identity.generate().recipient,
    PQ: lambda: MLKEM768X25519Identity.generate().recipient,
    TAG: _p256tag_recipient,
}


def _header(recipients: Sequence[Recipient]) -> tuple[float, int]:
    """One header written to memory: its CPU seconds, and its size (without the payload nonce)."""
    out = io.BytesIO()
    started = time.process_time()
    AgeWriter(out, recipients)
    spent = time.process_time() - started
    return spent, len(out.getvalue()) - NONCE_SIZE


def _work(repetitions: int) -> dict[str, Any]:
    """In a child process: for each type, None if this cryptography cannot use it, else for each count of
    recipients the CPU seconds of each of `repetitions` headers and the header's size."""
    groups: dict[tuple[str, int], list[Recipient]] = {}
    refused: set[str] = set()
    for kind in _TYPES:
        try:
            recipients = [_MAKERS[kind]() for _ in range(max(_COUNTS))]
        except UnsupportedKey:
            refused.add(kind)
            continue
        groups |= {(kind, count): recipients[:count] for count in _COUNTS}
    seconds: dict[tuple[str, int], list[float]] = {group: [] for group in groups}
    sizes = {}
    for repetition in range(_WARM_UP + repetitions):
        for group, recipients in groups.items():  # in turn, so that no type gets a quieter moment than another
            spent, sizes[group] = _header(recipients)
            if repetition >= _WARM_UP:
                seconds[group].append(spent)
    return {kind: None if kind in refused else
            {str(count): {"seconds": seconds[kind, count], "bytes": sizes[kind, count]} for count in _COUNTS}
            for kind in _TYPES}


def _measure_headers(columns: Sequence[Column], repetitions: int) -> list[dict[str, Any]]:
    """For each column, what `_work` found, its repetitions taken in _ROUNDS child processes alternating
    with the other columns', and the median of them all in place of the seconds."""
    found: list[dict[str, Any]] = [{} for _ in columns]
    share = -(-repetitions // _ROUNDS)
    for _ in range(_ROUNDS):
        for column, results in zip(columns, found, strict=True):
            command = [str(column.python), "-m", __spec__.name, _WORKER_FLAG, str(share)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            for kind, counts in result.items():
                if counts is None:
                    results[kind] = None
                    continue
                results.setdefault(kind, {str(count): {"seconds": [], "bytes": 0} for count in _COUNTS})
                for count, measured in counts.items():
                    results[kind][count]["seconds"] += measured["seconds"]
                    results[kind][count]["bytes"] = measured["bytes"]
    return [{kind: None if counts is None else
             {count: [statistics.median(measured["seconds"]), measured["bytes"]] for count, measured in counts.items()}
             for kind, counts in results.items()} for results in found]


# In a child process of this Python: `consentbox simulate` with every AgeWriter counted by what constructed it.
_COUNT_RUN = """\
import collections, json, sys, traceback
from consentbox.crypto import age
made = collections.Counter()
construct = age.AgeWriter.__init__
def counted(self, *args, **kwargs):
    callers = [frame.name for frame in traceback.extract_stack()]
    made[next((name for name in reversed(callers) if name in {kinds!r}), "other")] += 1
    construct(self, *args, **kwargs)
age.AgeWriter.__init__ = counted
sys.argv = sys.argv[1:]
from consentbox.cli.consentbox import main
status = main()
with open({out!r}, "w") as report:
    json.dump(made, report)
sys.exit(status)
"""
# What constructs an AgeWriter on the box, by the function that does (consentbox.recording.session,
# consentbox.ledger.extract), and the words for the report.
_FILE_KINDS = {"_open_segment": "audio segment", "write_manifest": "manifest version",
               "encrypt_extract": "ledger extract version", "other": "other"}


def _count_session_files(minutes: int, column: Column, workdir: Path) -> dict[str, int]:
    """How many age files of each kind one session of `minutes` minutes writes, played by `consentbox
    simulate` of `column` in virtual time."""
    policy = load_config().policy
    seconds = minutes * 60
    cycle, wav = workdir / "cycle.wav", workdir / "tone.wav"
    write_test_tone(cycle, policy, _TONE_CYCLE_SECONDS)
    with wave.open(str(cycle), "rb") as source, wave.open(str(wav), "wb") as tone:
        tone.setparams(source.getparams())
        frames = source.readframes(source.getnframes())
        # The tone goes on past the end: silence would add the silence alert's entries to the ledger.
        for _ in range((seconds + 10) // _TONE_CYCLE_SECONDS + 1):
            tone.writeframes(frames)
    threshold = 1.0 + policy.record_hold
    ending = threshold + seconds
    script = workdir / "session.txt"
    script.write_text(f"0.0 tap record\n0.2 tap consent 1\n0.4 tap consent 2\n"
                      f"1.0 hold record {policy.record_hold + 0.5}\n{ending} hold record {policy.end_hold + 0.5}\n"
                      f"{ending + policy.end_hold + 1.0} end\n", encoding="ascii")
    card, out = workdir / "card", workdir / "made.json"
    card.mkdir()
    recipient = X25519Identity.generate().recipient.to_string()
    subprocess.run([str(column.python), "-c", _COUNT_RUN.format(kinds=set(_FILE_KINDS), out=str(out)), "consentbox",
                    "simulate", "--script", str(script), "--audio", str(wav), "--card", str(card),
                    "--recipient", recipient], check=True, stdout=subprocess.DEVNULL)
    made = json.loads(out.read_text())
    return {kind: made.get(kind, 0) for kind in _FILE_KINDS}


def _encrypt_seconds(plaintext: bytes, recipient: Recipient, sink: BinaryIO) -> float:
    """CPU seconds of encrypting `plaintext` from memory to `sink` for `recipient`."""
    started = time.process_time()
    encrypt(io.BytesIO(plaintext), sink, [recipient])
    return time.process_time() - started


def _work_throughput(mib: int, runs: int) -> dict[str, float | None]:
    """In a child process: the least CPU seconds of `runs` encryptions of `mib` MiB of random bytes to one
    X25519 recipient and to one mlkem768x25519 recipient, in turn (None for a type this cryptography cannot
    use); after them each type's file is decrypted and checked against the plaintext."""
    identities: dict[str, Identity] = {X25519: X25519Identity.generate()}
    with contextlib.suppress(UnsupportedKey):
        identities[PQ] = MLKEM768X25519Identity.generate()
    plaintext = os.urandom(mib * _MIB)
    seconds: dict[str, list[float]] = {kind: [] for kind in identities}
    with open(os.devnull, "wb") as sink:  # the payload goes nowhere: only the encryption is timed
        for run in range(runs):
            for kind in list(identities)[::1 if run % 2 else -1]:  # each type first in every other run
                seconds[kind].append(_encrypt_seconds(plaintext, identities[kind].recipient, sink))
    for kind, identity in identities.items():
        sealed, opened = io.BytesIO(), io.BytesIO()
        encrypt(io.BytesIO(plaintext), sealed, [identity.recipient])
        decrypt(io.BytesIO(sealed.getvalue()), opened, [identity])
        if opened.getvalue() != plaintext:
            raise RuntimeError(f"a file encrypted to {kind} does not decrypt to the plaintext: the benchmark is void")
    return {kind: min(seconds[kind]) if kind in seconds else None for kind in (X25519, PQ)}


def _throughput(columns: Sequence[Column]) -> dict[str, list[float | None]]:
    """MB/s encrypting _THROUGHPUT_MIB to one recipient of X25519 and of mlkem768x25519 under each column,
    the best of _THROUGHPUT_RUNS (None where the column cannot use the type)."""
    rates: dict[str, list[float | None]] = {X25519: [], PQ: []}
    megabytes = _THROUGHPUT_MIB * _MIB / 1e6
    for column in columns:
        command = [str(column.python), "-m", __spec__.name, _THROUGHPUT_FLAG, str(_THROUGHPUT_MIB),
                   str(_THROUGHPUT_RUNS)]
        best = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        for kind, rate in rates.items():
            rate.append(None if best[kind] is None else megabytes / best[kind])
    return rates


def run_headers_benchmark(repetitions: int = _REPETITIONS, minutes: int = _SESSION_MINUTES, *,
                          columns: Sequence[Column] | None = None) -> list[str]:
    """Header cost and size per recipient type (under each of `columns`, by default this Python alone), the age
    files of a session of `minutes`, and the payload's throughput per type; lines to print."""
    columns = columns or columns_for()
    repetitions = -(-repetitions // _ROUNDS) * _ROUNDS  # as many in each round
    measured = _measure_headers(columns, repetitions)

    def unavailable(column: Column) -> str:
        return f"n/a (cryptography {column.cryptography.split('.')[0]} has no HPKE)"

    figures = {"bench.headers.repetitions": str(repetitions)}
    rows: list[tuple[str, list[str]]] = []
    for kind in _TYPES:
        for count in _COUNTS:
            plural = "s" if count > 1 else ""
            label = f"  {kind}, {count} recipient{plural}"
            name = f"bench.headers.{kind.lower()}.{count}-recipient{plural}"
            cells = [f"{result[kind][str(count)][0] * 1000:.3f}" if result[kind] else unavailable(column)
                     for column, result in zip(columns, measured, strict=True)]
            rows.append((f"{label}: CPU ms", cells))
            sizes = {result[kind][str(count)][1] for result in measured if result[kind]}
            rows.append((f"{label}: header bytes",
                         [f"{result[kind][str(count)][1]:,}" if result[kind] else unavailable(column)
                          for column, result in zip(columns, measured, strict=True)]))
            for column, result, cell in zip(columns, measured, cells, strict=True):
                if result[kind]:
                    figures[column.figure(name, "ms")] = cell
            if sizes:  # the same under every Python that can write it
                figures[f"{name}.bytes"] = f"{max(sizes):,}"
    lines = [f"header cost per recipient type: an AgeWriter constructed into memory (its header written), CPU time, "
             f"median of {repetitions} repetitions taken in turn:", *side_by_side(columns, rows)]

    with tempfile.TemporaryDirectory(prefix="bench-headers-") as directory:
        workdir = Path(directory)
        made = _count_session_files(minutes, columns[0], workdir)
    rates = _throughput(columns)

    files = sum(made.values())
    session = f"bench.headers.session.{minutes}-min"
    figures |= {f"{session}.files": str(files), f"{session}.segments": str(made["_open_segment"]),
                f"{session}.manifests": str(made["write_manifest"]),
                f"{session}.extracts": str(made["encrypt_extract"])}
    counted = ", ".join(f"{made[kind]} {words}{'s' if made[kind] != 1 else ''}" for kind, words in _FILE_KINDS.items()
                        if made[kind] or kind != "other")
    session_rows: list[tuple[str, list[str]]] = []
    for kind in _TYPES:
        for count in _COUNTS:
            plural = "s" if count > 1 else ""
            name = f"bench.headers.{kind.lower()}.{count}-recipient{plural}"
            cells = [f"{files * result[kind][str(count)][0] * 1000:.1f}" if result[kind] else unavailable(column)
                     for column, result in zip(columns, measured, strict=True)]
            session_rows.append((f"  {kind}, {count} recipient{plural}: CPU ms a session", cells))
            for column, result, cell in zip(columns, measured, cells, strict=True):
                if result[kind]:
                    figures[column.figure(name, f"session-{minutes}-min-ms")] = cell
    lines += [f"a {minutes}-minute session (`consentbox simulate` in virtual time, this Python) wrote {files} age "
              f"files, so {files} headers: {counted}; its headers' cost, {files} × the median above:",
              *side_by_side(columns, session_rows)]

    megabytes = f"{_THROUGHPUT_MIB} MiB"
    throughput = f"bench.headers.throughput.{_THROUGHPUT_MIB}-mib"
    rate_rows: list[tuple[str, list[str]]] = []
    for kind in (X25519, PQ):
        cells = [f"{rate:.1f}" if rate is not None else unavailable(column)
                 for column, rate in zip(columns, rates[kind], strict=True)]
        rate_rows.append((f"  encrypt to one {kind} recipient: MB/s", cells))
        for column, rate in zip(columns, rates[kind], strict=True):
            if rate is not None:
                figures[column.figure(f"{throughput}.{kind.lower()}", "mb-s")] = f"{rate:.0f}"
    ratios = [f"{pq / classic:.2f}" if pq is not None and classic is not None else unavailable(column)
              for column, pq, classic in zip(columns, rates[PQ], rates[X25519], strict=True)]
    rate_rows.append((f"  {PQ} / {X25519}", ratios))
    for column, ratio, pq in zip(columns, ratios, rates[PQ], strict=True):
        if pq is not None:
            figures[column.figure(throughput, "pq-per-x25519")] = ratio
    figures["bench.headers.throughput.runs"] = str(_THROUGHPUT_RUNS)
    lines += [f"whole-file throughput: {megabytes} of random bytes encrypted from memory to /dev/null, CPU time, "
              f"best of {_THROUGHPUT_RUNS} runs taken in turn; a file of each decrypts to the plaintext:",
              *side_by_side(columns, rate_rows)]
    return [*lines, figure_lines(figures)]


if __name__ == "__main__":
    if sys.argv[1:2] == [_WORKER_FLAG]:
        print(json.dumps(_work(int(sys.argv[2]))))
    elif sys.argv[1:2] == [_THROUGHPUT_FLAG]:
        print(json.dumps(_work_throughput(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        parser = argparse.ArgumentParser(prog="python -m bench.headers", description=__doc__.split("\n\n")[0])
        parser.add_argument("--repetitions", type=int, default=_REPETITIONS, help="headers timed per type and count")
        parser.add_argument("--minutes", type=int, default=_SESSION_MINUTES, help="the session whose files are counted")
        parser.add_argument("python", nargs="*", help="another Python to run ours under, a column each")
        args = parser.parse_args()
        print("\n".join(run_headers_benchmark(args.repetitions, args.minutes, columns=columns_for(args.python))))
