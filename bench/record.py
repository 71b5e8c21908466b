"""What recording costs the box next to `arecord | age`, and how soon capture follows the RECORD hold.

    python -m bench.record [MINUTES]

Cost: `consentbox simulate` records MINUTES of a test tone in virtual time, alternating with
`arecord | age` capturing the same samples through the same kind of device (ALSA's `file` plugin
on the `null` slave, which has no clock, so neither side waits for real time) and encrypting them.
Every process is measured whole, interpreter start-up included. CPU is getrusage(RUSAGE_CHILDREN)
before and after a run. Each command runs under GNU time, whose wait4() gives that command's own
peak RSS: waited for from here, a new program's ru_maxrss starts at this process's peak (Linux
carries it over at exec), and making a 10-minute test tone takes that to about 150 MB.

Latency: in virtual time the REC LED and capture come at the hold threshold by construction, so short
`--realtime` runs of two sessions are timed instead, from their timelines, counted from the script's
start (its `script` entry: the box is up, its self-test done). An entry's `t` is the box's clock read
just after the command was carried out: the LED once its pin is driven, capture opened once the device
is open (the files follow as its first period is handed on), capture closed once the device is closed
(the audio read until then is written and the interval sealed after). The thresholds are the script's
press times plus record_hold, end_hold (the first session ends so) or withdraw_hold (the second is
withdrawn from); the presses themselves come a little later, when the script's sleep ends, so the delays
are upper bounds. The first session is the process's first encryption, the second shows a box that has
recorded before.

Both kinds of run use Python's byte-code cache, as the box's Debian package ships compiled modules (the
environment here may turn it off: PYTHONDONTWRITEBYTECODE); one unmeasured run first fills it.

Under `make bench` the box runs under two Pythons in turn, one with Debian bookworm's cryptography
(bench/columns.py); each one's recordings are checked against the input.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench.columns import Column, columns_for, side_by_side
from bench.figures import figure_lines
from bench.profile import profile_run
from consentbox.box.config import load_config
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity, decrypt
from consentbox.crypto.stream import CHUNK_SIZE
from consentbox.recording.wav import HEADER_SIZE
from consentbox.sim.demo import write_test_tone

_RUNS = 3
_REALTIME_RUNS = 10  # of two sessions each: 20 sessions
_HOLD_AT = 1.0  # when the scripts press RECORD, after set-up and both consents
_REALTIME_RECORDING = 1.0  # seconds the realtime runs record after the threshold
_DEVICE = "consentbox_bench"
_COPY_FRAMES = 1 << 16


@dataclass(frozen=True)
class Commands:
    """The commands the recording benchmark runs besides the box."""

    arecord: str
    age: str
    time: str

    @classmethod
    def find(cls) -> Commands:
        """Find them on PATH; RuntimeError naming the Debian package of the first one missing."""
        found = {}
        for command, package in (("arecord", "alsa-utils"), ("age", "age"), ("time", "time")):
            path = shutil.which(command)
            if path is None:
                raise RuntimeError(f"the `{command}` command is not installed: apt-get install {package}")
            found[command] = path
        return cls(**found)


def _session(policy: Policy, start: float) -> tuple[str, float]:
    """Script lines: set-up at `start`, two consents, RECORD held past its threshold; and that threshold."""
    lines = (f"{start} tap record\n{start + 0.2} tap consent 1\n{start + 0.4} tap consent 2\n"
             f"{start + _HOLD_AT} hold record {policy.record_hold + 0.5}\n")
    return lines, start + _HOLD_AT + policy.record_hold


def _recording_script(policy: Policy, seconds: float) -> str:
    """One session that records for `seconds` after the threshold, then the end of the run."""
    lines, threshold = _session(policy, 0.0)
    return f"{lines}{threshold + seconds} end\n"


def _two_sessions_script(policy: Policy) -> tuple[str, list[float], list[float]]:
    """Two sessions recording `_REALTIME_RECORDING` s each, the first ended by holding RECORD, the second by a
    withdrawal (CONSENT 1 held); the script, and the thresholds that open and that close their capture."""
    first_session, first = _session(policy, 0.0)
    ending = first + _REALTIME_RECORDING
    second_session, second = _session(policy, ending + policy.end_hold + 1.0)
    withdrawing = second + _REALTIME_RECORDING
    script = (f"{first_session}{ending} hold record {policy.end_hold + 0.5}\n"
              f"{second_session}{withdrawing} hold consent 1 {policy.withdraw_hold + 0.5}\n"
              f"{withdrawing + policy.withdraw_hold + 1.0} end\n")
    return script, [first, second], [ending + policy.end_hold, withdrawing + policy.withdraw_hold]


def _simulate(column: Column, script: Path, wav: Path, card: Path, recipient: str) -> list[str]:
    """Empty `card` and return the command line of one `consentbox simulate` run of `column` onto it."""
    shutil.rmtree(card, ignore_errors=True)
    card.mkdir()
    return [str(column.consentbox), "simulate", "--script", str(script), "--audio", str(wav),
            "--card", str(card), "--recipient", recipient]


def _measured(
    time: str, pipeline: list[list[str]], output: IO[bytes] | int, workdir: Path,
    env: Mapping[str, str] | None = None,
) -> tuple[float, list[int]]:
    """Run `pipeline` into `output`: the CPU seconds of all its commands, and each one's peak RSS in bytes."""
    os.sync()  # the previous run's writes on disk, so that no run pays for another's
    reports = [workdir / f"rss.{n}" for n in range(len(pipeline))]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    processes: list[subprocess.Popen[bytes]] = []
    stdin: IO[bytes] | int = subprocess.DEVNULL
    for command, report in zip(pipeline, reports, strict=True):
        last = report == reports[-1]
        process = subprocess.Popen([time, "--format=%M", f"--output={report}", *command], env=env,
                                   stdin=stdin, stdout=output if last else subprocess.PIPE)
        if not isinstance(stdin, int):
            stdin.close()  # the previous command's output: this command reads it now
        processes.append(process)
        if process.stdout is not None:  # a pipe, except from the last command, which writes to `output`
            stdin = process.stdout
    for command, process in zip(pipeline, processes, strict=True):
        if process.wait():
            raise RuntimeError(f"`{' '.join(command)}` failed with status {process.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # GNU time reports kilobytes of 1024 bytes, on the last line should the command have failed.
    return cpu, [int(report.read_text().split()[-1]) * 1024 for report in reports]


def _samples_digest(recordings: list[Path], identity: X25519Identity, size: int, scratch: Path) -> str:
    """SHA-256 of the first `size` bytes of audio in `recordings`, age-encrypted WAVs in order."""
    digest, left = hashlib.sha256(), size
    for recording in recordings:
        with recording.open("rb") as source, scratch.open("wb") as target:
            decrypt(source, target, [identity])
        with scratch.open("rb") as wav:
            wav.seek(HEADER_SIZE)  # the box's streaming header and arecord's are both 44 bytes
            while left and (block := wav.read(min(left, 1 << 20))):
                digest.update(block)
                left -= len(block)
    scratch.unlink()
    return digest.hexdigest()


def _alsa_config(samples: Path) -> str:
    # The device FileMicrophone makes (consentbox.sim.file_microphone), reading a file that any process
    # can open instead of this process's memory file.
    return f"""pcm.{_DEVICE} {{
    type file
    slave.pcm null
    infile "{samples}"
    file "{os.devnull}"
    format raw
    truncate true
}}
"""


def _measure_cost(minutes: int, commands: Commands, policy: Policy, columns: Sequence[Column],
                  workdir: Path) -> list[str]:
    """CPU and peak RSS of recording `minutes` minutes with the box (under each of `columns`) and with
    `arecord | age`; lines to print."""
    seconds = minutes * 60
    identity = X25519Identity.generate()
    recipient = identity.recipient.to_string()
    wav, samples = workdir / "tone.wav", workdir / "tone.raw"
    write_test_tone(wav, policy, seconds)
    with wave.open(str(wav), "rb") as tone, samples.open("wb") as raw:
        while frames := tone.readframes(_COPY_FRAMES):
            raw.write(frames)
    config = workdir / "asound.conf"
    config.write_text(_alsa_config(samples), encoding="ascii")
    env = {**os.environ,
           "ALSA_CONFIG_PATH": f"{os.environ.get('ALSA_CONFIG_PATH', '/usr/share/alsa/alsa.conf')}:{config}"}
    recording, start_up = workdir / "recording.txt", workdir / "start-up.txt"
    recording.write_text(_recording_script(policy, seconds), encoding="ascii")
    # The same script ending at the threshold: the box's start-up, set-up and files, but no audio.
    start_up.write_text(_recording_script(policy, 0), encoding="ascii")
    cards, theirs = [workdir / f"card.{n}" for n in range(len(columns))], workdir / "theirs.age"
    arecord = [commands.arecord, "-q", "-D", _DEVICE, "-t", "wav", "-f", policy.sample_format.value,
               "-r", str(policy.rate), "-c", str(policy.channels), "-d", str(seconds)]

    box_runs: list[list[tuple[float, list[int]]]] = [[] for _ in columns]
    start_up_runs: list[list[tuple[float, list[int]]]] = [[] for _ in columns]
    baseline_runs = []
    environments = [column.environment(workdir / "pycache") for column in columns]
    for column, card, environment in zip(columns, cards, environments, strict=True):
        # Unmeasured: fills the byte-code cache, as the Debian package's compiled modules are there on the box.
        subprocess.run(_simulate(column, start_up, wav, card, recipient), env=environment, check=True,
                       stdout=subprocess.DEVNULL)
    for _ in range(_RUNS):
        for column, card, environment, column_box_runs, column_start_up_runs in zip(
                columns, cards, environments, box_runs, start_up_runs, strict=True):
            column_start_up_runs.append(_measured(commands.time, [_simulate(column, start_up, wav, card, recipient)],
                                                  subprocess.DEVNULL, workdir, environment))
            column_box_runs.append(_measured(commands.time, [_simulate(column, recording, wav, card, recipient)],
                                             subprocess.DEVNULL, workdir, environment))
        with theirs.open("wb") as output:
            baseline_runs.append(_measured(commands.time, [arecord, [commands.age, "-r", recipient]],
                                           output, workdir, env))

    size = seconds * policy.rate * policy.frame_bytes
    with samples.open("rb") as raw:
        expected = hashlib.file_digest(raw, "sha256").hexdigest()
    scratch = workdir / "check.wav"
    recorded = {_samples_digest(sorted(card.glob("*.wav.age")), identity, size, scratch) for card in cards}
    if not recorded | {_samples_digest([theirs], identity, size, scratch)} == {expected}:
        raise RuntimeError("a recording differs from the input's samples: the benchmark is void")

    # Once more under the profiler, this Python only: where the time goes.
    shares = profile_run(columns[0], _simulate(columns[0], recording, wav, cards[0], recipient)[1:], environments[0],
                         workdir)

    box_cpu = [min(run[0] for run in runs) for runs in box_runs]
    start_up_cpu = [min(run[0] for run in runs) for runs in start_up_runs]
    baseline_cpu = min(run[0] for run in baseline_runs)
    box_rss = [max(run[1][0] for run in runs) for runs in box_runs]
    start_up_rss = [max(run[1][0] for run in runs) for runs in start_up_runs]
    arecord_rss, age_rss = (max(run[1][n] for run in baseline_runs) for n in (0, 1))
    name = f"bench.record.{minutes}-min"
    figures = {  # what BENCHMARKS.md quotes, as it quotes it
        "bench.record.runs": str(_RUNS),
        f"{name}.baseline-cpu-s": f"{baseline_cpu:.3f}",
        f"{name}.arecord-rss-mb": f"{arecord_rss / 1e6:.1f}",
        f"{name}.age-rss-mb": f"{age_rss / 1e6:.1f}",
        f"{name}.periods": f"{seconds * policy.rate // policy.period_frames:,}",
        f"{name}.chunks": f"{-(-(HEADER_SIZE + size) // CHUNK_SIZE):,}",  # a WAV header, then the audio
    }
    for column, box, alone, rss, rss_alone in zip(columns, box_cpu, start_up_cpu, box_rss, start_up_rss, strict=True):
        figures |= {
            column.figure(name, "box-cpu-s"): f"{box:.2f}",
            column.figure(name, "box-per-baseline"): f"{box / baseline_cpu:.1f}",
            column.figure(name, "start-up-cpu-s"): f"{alone:.2f}",
            column.figure(name, "recording-cpu-s"): f"{box - alone:.2f}",
            column.figure(name, "recording-per-baseline"): f"{(box - alone) / baseline_cpu:.1f}",
            column.figure(name, "box-rss-mb"): f"{rss / 1e6:.1f}",
            column.figure(name, "start-up-rss-mb"): f"{rss_alone / 1e6:.1f}",
            column.figure(name, "percent-of-a-core"): f"{box / seconds * 100:.1f}",
        }
    rows = [
        ("  CPU, s", [f"{box:.2f}" for box in box_cpu]),
        ("  CPU / arecord | age (target at most 1.5)", [f"{box / baseline_cpu:.1f}" for box in box_cpu]),
        ("  CPU of start-up and set-up alone (the script ending at the threshold), s",
         [f"{alone:.2f}" for alone in start_up_cpu]),
        ("  CPU of the rest, s", [f"{box - alone:.2f}" for box, alone in zip(box_cpu, start_up_cpu, strict=True)]),
        ("  the rest / arecord | age",
         [f"{(box - alone) / baseline_cpu:.1f}" for box, alone in zip(box_cpu, start_up_cpu, strict=True)]),
        ("  peak RSS, MB (target at most 40)", [f"{rss / 1e6:.1f}" for rss in box_rss]),
        ("  peak RSS recording nothing, MB", [f"{rss / 1e6:.1f}" for rss in start_up_rss]),
    ]
    figures |= {f"bench.profile.{minutes}-min.{part}-percent": f"{share:.0f}" for part, _, share in shares}
    return [
        f"{minutes} min of {policy.rate} Hz, {policy.channels} channel(s), {policy.sample_format.value};"
        f" best of {_RUNS} alternating runs; the recordings hold the input's samples:",
        f"  arecord | age: CPU {baseline_cpu:.3f} s; peak RSS arecord {arecord_rss / 1e6:.1f} MB,"
        f" age {age_rss / 1e6:.1f} MB. The box:",
        *side_by_side(columns, rows),
        f"  where the box's time goes, by cProfile ({columns[0].heading}), percent of the profile's time:",
        *(f"    {words:<40} {share:5.1f}" for _, words, share in shares),
        figure_lines(figures),
    ]


def _measure_latency(policy: Policy, columns: Sequence[Column], workdir: Path) -> list[str]:
    """Delays from the RECORD hold threshold to the REC LED and to open capture, in real time, under each of
    `columns`; lines to print."""
    wav, script, card = workdir / "short.wav", workdir / "realtime.txt", workdir / "card"
    text, opening, closing = _two_sessions_script(policy)
    write_test_tone(wav, policy, closing[-1])
    script.write_text(text, encoding="ascii")
    recipient = X25519Identity.generate().recipient.to_string()
    # delays[column][what][session]: seconds from each session's threshold, one per run.
    delays: list[dict[str, list[list[float]]]] = [
        {"REC LED on": [[], []], "capture open": [[], []], "capture closed": [[], []]} for _ in columns]
    for _ in range(_REALTIME_RUNS):
        for column, column_delays in zip(columns, delays, strict=True):
            command = [*_simulate(column, script, wav, card, recipient), "--realtime"]
            os.sync()  # opening capture syncs the card several times: no earlier writes in the queue
            output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True,
                                    env=column.environment(workdir / "pycache")).stdout
            timeline: list[dict[str, Any]] = [json.loads(line) for line in output.splitlines()]
            # The script's times count from its start, once the box is up (its self-test listens first).
            [origin] = [entry["t"] for entry in timeline if entry["event"] == "script"]
            led = [entry["t"] - origin for entry in timeline if entry["event"] == "led" and entry["on"]]
            capture = [(entry["t"] - origin, entry["open"]) for entry in timeline if entry["event"] == "capture"]
            opened = [moment for moment, is_open in capture if is_open]
            closed = [moment for moment, is_open in capture if not is_open]
            for what, moments, thresholds in (("REC LED on", led, opening), ("capture open", opened, opening),
                                              ("capture closed", closed, closing)):
                if len(moments) != len(thresholds):
                    raise RuntimeError(f"a --realtime run has {len(moments)} {what} entries, not {len(thresholds)}")
                for session, (moment, threshold) in enumerate(zip(moments, thresholds, strict=True)):
                    column_delays[what][session].append(moment - threshold)
    lines = [f"From the hold threshold (0 in virtual time by construction), {_REALTIME_RUNS} --realtime runs of two"
             " sessions: REC LED and capture open from RECORD's; capture closed from the end's (RECORD held, first"
             " session) and the withdrawal's (CONSENT held, second session);"
             f" target under one period, {policy.period_seconds * 1000:.1f} ms:"]
    figures = {"bench.latency.runs": str(_REALTIME_RUNS),
               "bench.latency.period-ms": f"{policy.period_seconds * 1000:.1f}"}
    rows: list[tuple[str, list[str]]] = []
    for what in delays[0]:
        for session, which in enumerate(("first", "second")):
            name = f"bench.latency.{what.replace(' ', '-').lower()}.{which}"
            for statistic, measure in (("median", statistics.median), ("max", max)):
                shown = [f"{measure(column_delays[what][session]) * 1000:.1f}" for column_delays in delays]
                rows.append((f"  {what}, {which} session, {statistic} ms", shown))
                figures |= {column.figure(name, f"{statistic}-ms"): figure
                            for column, figure in zip(columns, shown, strict=True)}
        # The target holds for every session, the slowest of all of them included.
        shown = [f"{max(max(sessions) for sessions in column_delays[what]) * 1000:.1f}" for column_delays in delays]
        rows.append((f"  {what}, all {2 * _REALTIME_RUNS} sessions, max ms", shown))
        figures |= {column.figure(f"bench.latency.{what.replace(' ', '-').lower()}.all", "max-ms"): figure
                    for column, figure in zip(columns, shown, strict=True)}
    return [*lines, *side_by_side(columns, rows), figure_lines(figures)]


def run_record_benchmark(minutes: int = 10, *, columns: Sequence[Column] | None = None) -> list[str]:
    """Record `minutes` minutes with the box (under each of `columns`, by default this Python alone) and with
    `arecord | age`, then time the REC LED; lines to print."""
    commands = Commands.find()
    policy = load_config().policy
    columns = columns or columns_for()
    lines = ["recording benchmark: every process measured whole, start-up included"]
    with tempfile.TemporaryDirectory(prefix="bench-record-") as workdir:
        lines += _measure_cost(minutes, commands, policy, columns, Path(workdir))
        lines += _measure_latency(policy, columns, Path(workdir))
    return lines


if __name__ == "__main__":
    print("\n".join(run_record_benchmark(*(int(arg) for arg in sys.argv[1:2]))))
