"""How long the box takes from `consentbox run` to READY=1, its self-test included, and the CPU it spends.

    python -m bench.ready

`consentbox run` starts as systemd starts it, with NOTIFY_SOCKET naming a socket here, on mock pins, a
card directory and a simulated microphone that plays a test tone (ALSA's `file` plugin on the `null`
slave), so that its self-test listens and passes. The time is from just before the process is started
to the READY=1 datagram; the CPU is the process's user + system time read from /proc at that moment;
both the least of the runs. Python's byte-code cache is on (the Debian package ships its modules
compiled): one run unmeasured first fills it. systemd's own start-up is not counted; the VM test prints
the box's start to READY=1 under systemd (tests/vm).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from pathlib import Path

from bench.columns import Column, columns_for, side_by_side
from bench.figures import figure_lines
from consentbox.box.config import load_config
from consentbox.crypto import X25519Identity
from consentbox.sim.demo import write_test_tone

_RUNS = 5
_DEVICE = "consentbox_ready"
_TONE_SECONDS = 5
_READY_TIMEOUT = 60.0


def _files(workdir: Path) -> tuple[Path, dict[str, str]]:
    """The box's config.toml in `workdir` and the ALSA settings its microphone needs."""
    policy = load_config().policy
    wav, samples = workdir / "tone.wav", workdir / "tone.raw"
    write_test_tone(wav, policy, _TONE_SECONDS)
    with wave.open(str(wav), "rb") as tone:
        samples.write_bytes(tone.readframes(tone.getnframes()))
    alsa = workdir / "asound.conf"
    alsa.write_text(f'pcm.{_DEVICE} {{\n    type file\n    slave.pcm null\n    infile "{samples}"\n'
                    f'    file "{os.devnull}"\n    format raw\n    truncate true\n}}\n', encoding="ascii")
    (workdir / "card").mkdir()
    config = workdir / "config.toml"
    config.write_text(f'[panel]\npin_factory = "mock"\n[audio]\ndevice = "{_DEVICE}"\n'
                      f'[card]\npath = "{workdir / "card"}"\nrequire_mount = false\n'
                      f'[keys]\nrecipients = ["{X25519Identity.generate().recipient.to_string()}"]\n'
                      f'org_key = "{workdir / "org.pub"}"\n[box]\nstate_dir = "{workdir / "state"}"\n',
                      encoding="ascii")
    system = os.environ.get("ALSA_CONFIG_PATH", "/usr/share/alsa/alsa.conf")
    return config, {"ALSA_CONFIG_PATH": f"{system}:{alsa}"}


def _until_ready(column: Column, config: Path, environment: dict[str, str], workdir: Path) -> tuple[float, float]:
    """One `consentbox run` of `column` until READY=1, then stopped as systemd stops it: seconds to READY=1
    and CPU seconds spent by then."""
    path = workdir / "notify.sock"
    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        systemd.settimeout(_READY_TIMEOUT)
        started = time.monotonic()
        log = workdir / "box.log"  # its timeline and any error, for when it does not get ready
        with log.open("wb") as output:
            box = subprocess.Popen([str(column.consentbox), "run", "--config", str(config)],
                                   env={**environment, "NOTIFY_SOCKET": str(path)}, stdout=output, stderr=output)
        try:
            try:
                while not systemd.recv(4096).startswith(b"READY=1"):
                    pass
            except TimeoutError:
                raise RuntimeError(f"`consentbox run` under {column.python} sent no READY=1 in {_READY_TIMEOUT:.0f} s:"
                                   f" {log.read_text(errors='replace')[-500:]}") from None
            ready = time.monotonic() - started
            # /proc/PID/stat: fields 14 and 15 (utime, stime) in clock ticks, counted after the command's name.
            fields = Path(f"/proc/{box.pid}/stat").read_text().rpartition(")")[2].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            box.send_signal(signal.SIGTERM)
            if box.wait(timeout=_READY_TIMEOUT):
                raise RuntimeError(f"`consentbox run` under {column.python} stopped with status {box.returncode}")
        finally:
            box.kill()
            box.wait()
    return ready, cpu


def run_ready_benchmark(*, columns: Sequence[Column] | None = None) -> list[str]:
    """Time `consentbox run` to READY=1 (under each of `columns`, by default this Python alone); lines to print."""
    columns = columns or columns_for()
    with tempfile.TemporaryDirectory(prefix="bench-ready-") as directory:
        workdir = Path(directory)
        config, alsa = _files(workdir)
        environments = [column.environment(workdir / "pycache", {**os.environ, **alsa}) for column in columns]
        for column, environment in zip(columns, environments, strict=True):
            _until_ready(column, config, environment, workdir)  # fills the byte-code cache
        runs: list[list[tuple[float, float]]] = [[] for _ in columns]
        for _ in range(_RUNS):
            for column, environment, column_runs in zip(columns, environments, runs, strict=True):
                column_runs.append(_until_ready(column, config, environment, workdir))
    ready = [f"{min(run[0] for run in column_runs):.3f}" for column_runs in runs]
    cpu = [f"{min(run[1] for run in column_runs):.2f}" for column_runs in runs]
    figures = {"bench.ready.runs": str(_RUNS)}
    for column, seconds, spent in zip(columns, ready, cpu, strict=True):
        figures |= {column.figure("bench.ready", "seconds"): seconds, column.figure("bench.ready", "cpu-s"): spent}
    rows = [("  `consentbox run` to READY=1, s", ready), ("  its CPU by then, s", cpu)]
    return [f"start-up: `consentbox run` to READY=1 (the self-test included), least of {_RUNS} alternating runs:",
            *side_by_side(columns, rows), figure_lines(figures)]


if __name__ == "__main__":
    print("\n".join(run_ready_benchmark(columns=columns_for(sys.argv[1:]))))
