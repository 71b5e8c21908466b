"""The simulated box of the system tests: one driver for every way they run a box.

A `SimulatedBox` is one box's files under a directory, `root`: its card (`root`/card, unless a test
puts the card elsewhere, on a mount point say), its state directory (`root`/state, unless a test puts it
elsewhere, on a partition of its own say), its configuration
(`root`/config.toml, if the test gives one), the microphone it hears (a WAV file) and the supervisor's
key it encrypts to. Each way of running the box is its own method or parameter, so that a test says
which it proves things about:

- `simulate(script)`: `consentbox simulate` as a user runs it, a subprocess, in virtual time; with
  `in_process=True`, the function that command runs, in this process, where a test can stand another
  trusted clock in for the box's (the one seam for a wall clock the box does not have);
- `start(script)`: that command left running, its timeline read as it comes (to kill it, say);
- `serve()`: `consentbox run`, the daemon, in real time on simulated pins;
- `by_hand(microphone)`: the real `Box` and `GpioPanel` assembled in this process on simulated pins and
  a virtual clock, driven edge by edge (a `Rig`), the microphone behind a `FailingSource`;
- `export(out)`: the supervisor's `consentbox-admin export` of the card, verified against this box, which
  `trusted_boxes()` pins as IT does; `card_files()`: what is on it.

A test module keeps what is its own: what the box hears (its `microphone` fixture), its scripts, its
checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import os
import subprocess
import sys
import wave
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from consentbox.admin.cli import load_identities
from consentbox.admin.extracts import load_extract
from consentbox.box.box import Box
from consentbox.box.clock import VirtualClock
from consentbox.box.config import load_config
from consentbox.box.logs import journal_fields
from consentbox.core.events import RECORD, Button, ConsentButton
from consentbox.core.policy import Policy
from consentbox.core.session import SessionMachine
from consentbox.crypto import bech32, parse_recipient
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.alsa import AlsaSource
from consentbox.hw.card import CardDirectory
from consentbox.hw.gpio import GpioPanel
from consentbox.ledger.writer import Ledger
from consentbox.recording.card_id import CARD_ID_NAME
from consentbox.recording.journal import Journal, JournalError
from consentbox.sim import simulate as simulate_module
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.script import parse_script
from consentbox.sim.simulate import simulate, simulated_config
from consentbox.state.clock_floor import TrustedClock
from consentbox.state.files import DEVICE_KEY, JOURNAL
from consentbox.testing.fakes import FailingSource
from tests.support.leaks import AUDIO_STRIDE, KEY_STRIDE, Probes, Secrets, device_key_bytes, probes

BIN = Path(sys.executable).parent
Entry = dict[str, Any]


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory) -> tuple[Path, str]:
    """The supervisor's identity file and recipient, made by `consentbox-admin keygen`."""
    key = tmp_path_factory.mktemp("keys") / "supervisor.key"
    made = subprocess.run([BIN / "consentbox-admin", "keygen", "-o", key], capture_output=True, check=True)
    return key, made.stderr.decode().split()[-1]


@pytest.fixture
def recipient(supervisor: tuple[Path, str]) -> str:
    """The supervisor's recipient (age1…), for a box that only encrypts to it."""
    return supervisor[1]


# --- What a box reports, and what the supervisor gets from its card ---------------------------------------


class Timeline(list[Entry]):
    """What a box reported, in order: each line `consentbox simulate` prints, each entry `Box` reports."""

    @classmethod
    def parse(cls, output: str) -> Timeline:
        return cls(json.loads(line) for line in output.splitlines())

    def of(self, event: str, **match: Any) -> list[Entry]:
        """The entries of `event` whose fields have the values given in `match`."""
        return [e for e in self if e["event"] == event and all(e.get(k) == v for k, v in match.items())]

    def states(self) -> list[str]:
        return [e["state"] for e in self.of("state")]

    def sessions(self) -> list[str]:
        """Session ids in the order they were set up."""
        return [e["id"] for e in self.of("setup")]


@dataclasses.dataclass(frozen=True)
class Export:
    """What `consentbox-admin export` made of a card: its exit status and messages, and for each session
    (by id, in order) the report and the WAV file it wrote."""

    status: int
    stderr: str
    reports: dict[str, dict[str, Any]]
    wavs: dict[str, bytes]


def pcm(wav: bytes) -> bytes:
    """The audio frames of a WAV file."""
    with wave.open(io.BytesIO(wav)) as reader:
        return reader.readframes(reader.getnframes())


def card_files(card: Path, *sessions: str) -> dict[str, bytes]:
    """Each session file on `card` (of `sessions` only, if any are named) and its bytes: every file there
    but the copies of the consent ledger (each session's extract) and the card's id."""
    return {path.name: path.read_bytes() for path in sorted(card.iterdir())
            if path.is_file() and not _ledger_copy(path.name) and path.name != CARD_ID_NAME
            and (not sessions or path.name[:16] in sessions)}


def _ledger_copy(name: str) -> bool:
    """Whether `name` is a session's ledger extract, <id>.ledger.age (or the temporary it is written to)."""
    return name.removeprefix(".").removesuffix(".tmp").endswith(".ledger.age")


# --- The box ---------------------------------------------------------------------------------------------


class SimulatedBox:
    """One box's files under `root`, and the ways to run it (see the module's docstring).

    `card` is made empty at `root`/card unless given (then it is left as it is: a mount point, or
    missing on purpose); `state` is `root`/state unless given; `config`, if given, is written to
    `root`/config.toml for every run.
    """

    def __init__(self, root: Path, recipient: str, *, key_file: Path | None = None, microphone: Path | None = None,
                 card: Path | None = None, state: Path | None = None, config: str | None = None) -> None:
        self.root, self.recipient, self.key_file, self.microphone = root, recipient, key_file, microphone
        self.state = root / "state" if state is None else state
        root.mkdir(parents=True, exist_ok=True)
        if card is None:
            card = root / "card"
            card.mkdir()
        self.card = card
        self.config: Path | None = None
        self.config_text = ""
        if config is not None:
            self.configure(config)
        self.scripts = 0
        # What its runs printed or journaled that no scan has seen yet (`leaks`), by where it came from.
        self._logged: list[tuple[str, str]] = []
        self._streams: list[KeptStream] = []

    def configure(self, text: str) -> None:
        """Write the box's configuration (TOML over the shipped defaults), `root`/config.toml."""
        self.config, self.config_text = self.root / "config.toml", text
        self.config.write_text(text)

    # Running the box.

    def simulate(self, script: str, *options: str | Path, state: bool = True, in_process: bool = False,
                 trusted_clock: Callable[..., TrustedClock] | None = None, env: Mapping[str, str] | None = None,
                 timeout: float | None = None) -> Timeline:
        """Play `script` through the box in virtual time; what it reported.

        `consentbox simulate` in a subprocess, with the box's card, recipient, configuration (if any) and
        state directory (unless `state` is False: the command then makes a private temporary one and
        removes it), `options` added to its command line and `env` to its environment; it must exit 0
        (within `timeout` seconds, if given). With `in_process`, the function that command runs, in this
        process, with the state directory; `trusted_clock`, if given, stands in for the box's
        `TrustedClock` while it runs.
        """
        path = self._script(script)
        if not in_process:
            assert trusted_clock is None, "the clock of a subprocess cannot be replaced"
            done = subprocess.run(self._simulate_command(path, options, state), capture_output=True, text=True,
                                  env=_environment(env), timeout=timeout)
            self._keep(f"stdout of `consentbox simulate {path.name}`", done.stdout)
            self._keep(f"stderr of `consentbox simulate {path.name}`", done.stderr)
            assert done.returncode == 0, done.stderr
            return Timeline.parse(done.stdout)
        assert state and not options and env is None and timeout is None, "only the command takes these"
        timeline = Timeline()
        config = simulated_config(load_config(self.config), card=self.card,
                                  recipients=[parse_recipient(self.recipient)], seats=None,
                                  shared_consent=False, state_dir=self.state)
        with pytest.MonkeyPatch.context() as patch:
            if trusted_clock is not None:
                patch.setattr(simulate_module, "TrustedClock", trusted_clock)
            try:
                simulate(config, parse_script(script, source=str(path)), audio=self.microphone, realtime=False,
                         report=timeline.append, script_dir=self.root)
            finally:
                self._keep(f"the journal ({path.name} played in this process)", _journal_records(timeline))
        return timeline

    def start(self, script: str, *options: str | Path, state: bool = True) -> subprocess.Popen[str]:
        """`consentbox simulate` as `simulate` runs it, left running: its timeline comes on its stdout."""
        path = self._script(script)
        process = subprocess.Popen(self._simulate_command(path, options, state), stdout=subprocess.PIPE, text=True)
        process.stdout = self._kept_stream(process, process.stdout, f"stdout of `consentbox simulate {path.name}`")
        return process

    def serve(self, *, audio_device: str | None = None, recipients: Sequence[str] | None = None,
              env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """`consentbox run`, the daemon, in real time on simulated pins ("mock"): the box's configuration
        with its card (no mount needed), `recipients` (the box's one unless given) and state directory,
        and ALSA `audio_device` if given (else the configured microphone); `env` added to its environment.
        Its timeline comes on its stderr; the caller stops it."""
        listed = ", ".join(f'"{r}"' for r in ([self.recipient] if recipients is None else recipients))
        audio = "" if audio_device is None else f'[audio]\ndevice = "{audio_device}"\n'
        config = self.root / "run.toml"
        config.write_text(f'{self.config_text}[panel]\npin_factory = "mock"\n{audio}'
                          f'[card]\npath = "{self.card}"\nrequire_mount = false\n[keys]\nrecipients = [{listed}]\n'
                          f'[box]\nstate_dir = "{self.state}"\n')
        process = subprocess.Popen([BIN / "consentbox", "run", "--config", config], stderr=subprocess.PIPE, text=True,
                                   env=_environment(env))
        process.stderr = self._kept_stream(process, process.stderr, "stderr of `consentbox run`")
        return process

    @contextlib.contextmanager
    def by_hand(self, microphone: str, *, policy: Policy, require_mount: bool,
                file_systems: Collection[str] = ()) -> Iterator[Rig]:
        """The box assembled in this process and driven by hand (a `Rig`), capturing from ALSA device
        `microphone`, its card required to be mounted (or not) with one of `file_systems` (any when none);
        shut down at the end, whatever happened."""
        rig = Rig(self, microphone, policy=policy, require_mount=require_mount, file_systems=file_systems)
        try:
            yield rig
        finally:
            rig.shut_down()
            self._keep("the journal (the box driven by hand)", _journal_records(rig.timeline))

    # What the supervisor gets.

    def export(self, out: Path, *, key: Path | None = None, statuses: Collection[int] | None = (0, 3)) -> Export:
        """`consentbox-admin export` of the card to `out` with the supervisor's key (or `key`), from this box
        (`trusted_boxes`); its exit status must be one of `statuses` (0: all whole; 3: some session cut
        short), unless that is None."""
        done = subprocess.run([BIN / "consentbox-admin", "export", "-i", key or self.key_file, "--out", out,
                               "--boxes", self.trusted_boxes(key), self.card], capture_output=True, text=True)
        if statuses is not None:
            assert done.returncode in statuses, done.stderr
        return Export(done.returncode, done.stderr,
                      {path.stem: json.loads(path.read_text()) for path in sorted(out.glob("*.json"))},
                      {path.stem: path.read_bytes() for path in sorted(out.glob("*.wav"))})

    def card_files(self, *sessions: str) -> dict[str, bytes]:
        """The session files on the card (see `card_files`)."""
        return card_files(self.card, *sessions)

    def trusted_boxes(self, key: Path | None = None) -> Path:
        """The supervisor's trusted boxes file, `root`/boxes, with this box in it: `consentbox-admin trust-box`
        with the device key its state directory holds, as IT reads it with `consentbox device-key`. A box run
        without a state directory kept its key in a temporary one, gone now: its key is then read where IT
        may also read it, the `boot` entry of its ledger (here one of its extracts on the card, decrypted
        with the supervisor's key, or `key`); a card with no extract names no box to trust."""
        path = self.root / "boxes"
        if (self.state / DEVICE_KEY).exists():
            device_key = DeviceSigningKey.load(self.state / DEVICE_KEY).public_key
        else:
            extract = next(self.card.glob("*.ledger.age"), None)
            if extract is None:
                return path
            device_key = load_extract(extract, load_identities([key or self.key_file])).device_key
        subprocess.run([BIN / "consentbox-admin", "trust-box", str(device_key), "the simulated box", "--boxes",
                        path], capture_output=True, check=True)
        return path

    # What it printed or journaled.

    def leaks(self) -> list[str]:
        """Audio or key material in what the box printed or journaled since the last look, or in any file of
        its state directory but its key files: one line each, naming where and what (tests/support/leaks.py).
        The `nothing_secret_logged` fixture looks after every test."""
        _RAN.pop(self, None)
        logged = [*self._logged, *(piece for stream in self._streams for piece in stream.taken())]
        self._logged.clear()
        files = [path for path in sorted(self.state.rglob("*")) if path.is_file() and not path.is_symlink()] \
            if self.state.is_dir() else []
        # The device key's file (and the temporary one it is saved through) and the journal's session keys
        # hold a key by design: they are what must not show anywhere else.
        keys = [path for path in files if path.name.lstrip(".").startswith(DEVICE_KEY) or path.suffix == ".key"]
        secrets = self._secrets(keys)
        found = [leak for where, text in logged for leak in secrets.leaks(text.encode(), where)]
        for path in files:
            if path not in keys:
                found += secrets.leaks(path.read_bytes(), str(path))
        return found

    def _secrets(self, keys: list[Path]) -> Secrets:
        """What this box must never show: the supervisor's identities, the keys in `keys` (its device key and its
        journal's), its microphone's samples."""
        identities = [] if self.key_file is None else [key.to_string() for key in load_identities([self.key_file])]
        found = [probes(bech32.decode(identity)[1], "an age identity's secret bytes", KEY_STRIDE)
                 for identity in identities]
        for key in keys:
            if key.name == DEVICE_KEY:
                found.append(probes(device_key_bytes(key.read_text()), "the box's device signing key", KEY_STRIDE))
            elif key.parent.name == JOURNAL:
                found.append(probes(key.read_bytes(), f"the journal's key {key.name}", KEY_STRIDE))
        if self.microphone is not None and self.microphone.is_file():
            found.append(_heard(self.microphone))
        return Secrets(tuple(found), tuple(identities))

    def _keep(self, where: str, text: str) -> None:
        """Keep what a run printed or journaled for `leaks`."""
        self._logged.append((where, text))
        _RAN[self] = None

    def _kept_stream(self, process: subprocess.Popen[str], stream: IO[str] | None, where: str) -> KeptStream:
        """`stream` of a running box's `process`, keeping for `leaks` what the test reads from it."""
        assert stream is not None
        kept = KeptStream(stream, process, where)
        self._streams.append(kept)
        _RAN[self] = None
        return kept

    def _script(self, text: str) -> Path:
        """`text` in a script file of its own under `root` (where a `usb` step's stick directories are)."""
        self.scripts += 1
        path = self.root / f"script{self.scripts}.txt"
        path.write_text(text)
        return path

    def _simulate_command(self, script: Path, options: Sequence[str | Path], state: bool) -> list[str | Path]:
        command = [BIN / "consentbox", "simulate", "--script", script, "--audio", self.microphone, "--card",
                   self.card, "--recipient", self.recipient, *options]
        if state:
            command += ["--state", self.state]
        if self.config is not None:
            command += ["--config", self.config]
        return command


def _environment(extra: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if extra is None else {**os.environ, **extra}


# --- Nothing from the audio or a key is ever logged ---------------------------------------------------------

#: The boxes that ran since the last scan, in order (a dict as an ordered set).
_RAN: dict[SimulatedBox, None] = {}


@pytest.fixture(autouse=True)
def nothing_secret_logged() -> Iterator[None]:
    """After each test, every box that ran is scanned (`SimulatedBox.leaks`): audio or key material in what it
    printed or journaled fails the test with one line naming where and what. Autouse fixtures are torn down
    last, so the boxes of the test's other fixtures have stopped by then."""
    yield
    leaks = leaks_of_boxes_that_ran()
    if leaks:
        pytest.fail("; ".join(leaks), pytrace=False)


def leaks_of_boxes_that_ran() -> list[str]:
    """`SimulatedBox.leaks` of every box that ran since the last look."""
    return [leak for box in list(_RAN) for leak in box.leaks()]


def _journal_records(timeline: Sequence[Entry]) -> str:
    """What the box would send journald for `timeline` (`consentbox.box.logs`), each field's value a line."""
    return "\n".join(value for entry in timeline for value in journal_fields(entry).values())


def _heard(microphone: Path) -> Probes:
    """The probes of the samples in `microphone` (a WAV file), made once while the file is unchanged."""
    status = microphone.stat()
    return _heard_in(microphone, status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _heard_in(microphone: Path, size: int, modified: int) -> Probes:
    return probes(pcm(microphone.read_bytes()), "audio its microphone gave it", AUDIO_STRIDE)


class KeptStream:
    """A text stream from a running box (`start`, `serve`) that keeps what the test reads from it for the scan;
    everything else is the stream's own."""

    def __init__(self, stream: IO[str], process: subprocess.Popen[str], where: str) -> None:
        self._stream, self._process, self._where = stream, process, where
        self._read: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return self._kept(next(self._stream))

    def readline(self, size: int = -1) -> str:
        return self._kept(self._stream.readline(size))

    def read(self, size: int = -1) -> str:
        return self._kept(self._stream.read(size))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def taken(self) -> list[tuple[str, str]]:
        """What was read since the last call, where it came from; once the box has stopped, all it printed."""
        if self._process.poll() is not None and not self._stream.closed:
            self._kept(self._stream.read())  # the box has stopped and nothing else holds its pipe: no wait
        text, self._read = "".join(self._read), []
        return [(self._where, text)] if text else []

    def _kept(self, text: str) -> str:
        self._read.append(text)
        return text


def _journal_failed(error: JournalError) -> None:
    raise AssertionError(f"the box's journal failed: {error}")


# --- The box driven by hand --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recorded:
    """A session that recorded one capture interval: its id, and the frames the microphone gave it."""

    id: str
    frames: int


class Rig:
    """A box put together in this process from its recording parts (not by `assemble_box`: no settings,
    recovery, provisioning, retention, trusted clock or self-test): the real `Box` and `GpioPanel` (the
    shipped pins, on gpiozero mock pins pressed edge by edge), a virtual clock, real libasound capturing
    from `microphone` behind a `FailingSource` (so the microphone can fail or overrun on demand), the card
    with `policy`, and the box's journal and ledger in its state directory. Time passes as under the
    daemon: the readiness check runs after every second and every button edge."""

    def __init__(self, files: SimulatedBox, microphone: str, *, policy: Policy, require_mount: bool,
                 file_systems: Collection[str] = ()) -> None:
        panel = dataclasses.replace(load_config(files.config).panel, pin_factory="mock")  # the shipped pins
        self.clock = VirtualClock()
        self.timeline = Timeline()
        self.machine = SessionMachine(policy, seats=panel.seats)
        self.panel = GpioPanel(panel, pin_factory=SimulatedFactory(self.clock.now), clock=self.clock.now,
                               on_event=lambda event: self.box.post(event))
        self.audio = FailingSource(AlsaSource(microphone, policy), policy)
        port = CardDirectory(files.card, policy, require_mount=require_mount, file_systems=file_systems)
        journal = Journal(files.state, on_failure=_journal_failed)
        ledger = Ledger.open(files.state / "ledger.jsonl", port,
                             DeviceSigningKey.load_or_create(files.state / "device.key"), monotonic=self.clock.now,
                             readers=lambda: [parse_recipient(files.recipient)])
        self.box = Box(machine=self.machine, panel=self.panel, audio=self.audio, card=port,
                       recipients=[parse_recipient(files.recipient)], policy=policy, clock=self.clock,
                       report=self.timeline.append, journal=journal, ledger=ledger)
        self._settle()

    # Time and buttons.

    def now(self) -> float:
        return self.clock.now()

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass, checking readiness after each second as `consentbox run` does."""
        end = self.now() + seconds
        while self.now() < end:
            self.box.run_until(min(end, self.now() + 1.0))
            self._settle()

    def press(self, button: Button) -> None:
        self.panel.buttons[button].pin.drive_low()  # pull-up: a pressed button pulls the pin low
        self._settle()

    def release(self, button: Button) -> None:
        self.panel.buttons[button].pin.drive_high()
        self._settle()

    def tap(self, button: Button) -> None:
        self.hold(button, 0.1)

    def hold(self, button: Button, seconds: float) -> None:
        """Press `button` for `seconds`, then leave the panel alone for a moment (longer than contact bounce)."""
        self.press(button)
        self.wait(seconds)
        self.release(button)
        self.wait(0.2)

    def start_recording(self) -> None:
        """Set up a session for two, both consent, hold RECORD: capture opens 1 s into the hold."""
        self.tap(RECORD)
        self.tap(ConsentButton(1))
        self.tap(ConsentButton(2))
        self.hold(RECORD, 1.2)
        assert self.machine.capturing, self.timeline[-10:]

    def end_recording(self) -> Recorded:
        """Hold RECORD 2.5 s to end the session; what it recorded."""
        self.hold(RECORD, 2.5)
        assert self.entries("session")[-1]["end"] == "ended"
        return self.last_recorded()

    def record(self, seconds: float) -> Recorded:
        """A whole session that records for about `seconds` and ends normally."""
        self.start_recording()
        self.wait(seconds)
        return self.end_recording()

    def last_recorded(self) -> Recorded:
        """The last session set up, and the frames its (last) capture interval read."""
        return Recorded(self.entries("setup")[-1]["id"], self.audio.frames_read)

    # What a person sees and hears.

    def entries(self, event: str, **match: Any) -> list[Entry]:
        return self.timeline.of(event, **match)

    def status(self, at: float | None = None) -> tuple[str, str, int]:
        """The STATUS LED's steady pattern now, or as it was at time `at`."""
        last = [e for e in self.entries("status") if at is None or e["t"] <= at][-1]
        return (last["colour"], last["rhythm"], last["count"])

    def rec_led_edges(self) -> list[tuple[float, bool]]:
        """Every change of the REC LED pin, with its (virtual) time."""
        edges, at = [], 0.0
        for change in self.panel.rec_led.pin.states[1:]:
            at += change.timestamp
            edges.append((at, bool(change.state)))
        return edges

    def rec_led(self) -> bool:
        return bool(self.panel.rec_led.pin.state)

    def assert_refused(self, code: int | None = None, text: str | None = None) -> None:
        """A RECORD tap in IDLE is refused (for `text`, flashing `code`, when given) and sets nothing up."""
        setups, refusals = len(self.entries("setup")), len(self.entries("refused"))
        self.tap(RECORD)
        assert len(self.entries("refused")) == refusals + 1
        flash = self.entries("flash")[-1]
        assert flash["colour"] == "red"
        if text is not None:
            assert (self.entries("refused")[-1]["reason"], flash["count"]) == (text, code)
        assert len(self.entries("setup")) == setups and self.machine.state.value == "IDLE"

    def assert_stopped_at_fault(self, problem: str, *, after: float, within: float) -> dict[str, Any]:
        """One fault, `problem`, came at most `within` s after `after`; capture closed and the REC LED went
        off at that very moment; the session ended for it, keeping its recording."""
        [fault] = self.entries("fault")
        assert fault["problem"] == problem, fault
        assert after <= fault["t"] <= after + within, (after, fault)
        assert self.entries("capture")[-1] == {"t": fault["t"], "event": "capture", "open": False, "pause": False}
        assert self.rec_led_edges()[-1] == (pytest.approx(fault["t"]), False)
        assert not self.rec_led() and not self.machine.capturing
        assert self.entries("session")[-1]["end"] == problem and self.entries("session")[-1]["kept"]
        assert self.machine.state.value == "IDLE"
        return fault

    def shut_down(self) -> None:
        self.box.shut_down()

    def _settle(self) -> None:
        self.box.check_readiness()
        self.box.pump()
