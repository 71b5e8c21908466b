"""A hostile card cannot hang, confuse or write through the box (issue 16, items 1 and 3).

A card is removable media that anyone can prepare on their own computer. docs/reliability.md ("Hostile
cards") is the table proven here: every name the box ever opens on the card, each holding in turn what
a card made elsewhere can hold instead of the box's file. Each cell is one case of
`test_a_hostile_entry_neither_hangs_nor_escapes_the_card[<name>-<kind>]`.

Set-up, made once (`made`): a box provisioned from a stick (so that `provisioned.cbundle` is among the
state files at stake) records session E and ends it, then records session S and is killed (SIGKILL, in
a forked child) while S is recording, so that S waits for start-up recovery. Each case copies that
box's card and state directory, with a canary directory beside them, plants one entry on the card,
and then, in this process, each step bounded by a timer that fails the test on a hang:
1. runs the box as `consentbox simulate` does (start-up recovery of S, the self-test, the card's id, the
   ledger extracts), and session Q, whose id the test chooses, records 3.5 s and ends;
2. runs the wipe as `consentbox wipe` does, its clock 40 days on: E, S and Q have all expired.
Then it checks that the state directory holds nothing the box does not add in its own right
(`assert_only_what_the_box_adds` says exactly what), that the canary directory and the disk image
behind the planted device node are unchanged, and that the box either worked around the entry or
refused the card with code 5 and said why (`check_outcome`).

Root reads any file whatever its mode, so for the unreadable files the test drops CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH from its thread's effective capabilities while the box runs, as the box's own
system user never has them.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from consentbox.box.box import Box
from consentbox.box.config import load_config
from consentbox.box.selftest import PROBE_NAME
from consentbox.box.timeline import describe
from consentbox.core.policy import Policy
from consentbox.crypto import parse_recipient
from consentbox.crypto.signing import DeviceSigningKey, OrgSigningKey
from consentbox.jobs import wipe as wipe_job
from consentbox.jobs.wipe import wipe_card
from consentbox.ledger import Entry, Kind, Tail, verify
from consentbox.provisioning.bundle import Bundle, seal
from consentbox.recording.card_id import CARD_ID_NAME
from consentbox.recording.manifest import extract_name, manifest_name, segment_name
from consentbox.recording.recorded import destroyed_mark_name, recorded_files
from consentbox.retention.index import RetentionIndex
from consentbox.state.clock_floor import TrustedClock
from consentbox.state.files import (
    CLOCK_FLOOR,
    DEVICE_KEY,
    INSTALLED_BUNDLE,
    JOURNAL,
    LEDGER,
    PROVISIONING_RESULT,
    RETENTION_INDEX,
)
from consentbox.storage.atomic import temporary_name
from consentbox.testing.signal import write_wav
from tests.support.cards import small_card

from .conftest import SimulatedBox, Timeline

POLICY = Policy(min_free_mb=1, max_session=60)
DAY = 86_400
ORG = OrgSigningKey.generate(secret=bytes(range(96, 128)))
E, S, Q = "e000000000000001", "5000000000000002", "9000000000000003"  # expired, stopped, the next session
HUGE = 64 << 30  # sparse; reading it whole would take far longer than BOUND
BOUND = 30.0  # seconds each step may take before the test calls it a hang (each takes well under one)

#: The box's sessions in the set-up: a stick installs the bundle, E records and ends, S records and the
#: box is killed at the script's end (at 16 s).
MADE = """\
0.0 usb stick
1.0 tap record
1.5 tap consent 1
2.0 tap consent 2
2.5 hold record 1.2
5.0 hold record 2.5
9.0 tap record
9.5 tap consent 1
10.0 tap consent 2
10.5 hold record 1.2
16.0 end
"""
#: What each case's box does: finishes S, then Q records 3.5 s (capture opens at 2.5 s, closes at 6 s).
NEXT = """\
0.0 tap record
0.5 tap consent 1
1.0 tap consent 2
1.5 hold record 1.2
4.0 hold record 2.5
8.0 end
"""


# --- The hostile entries -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Place:
    """A name the box opens on the card, and how the box treats it.

    `owned`: the name is the box's own to replace or remove (a temporary, a file rewritten whole by a
    rename): whatever is there goes, except a directory, which the box cannot unlink or rename over.
    `refused`: kinds of entry for which the box refuses the card (code 5, card write error).
    `reported`: the box says so when it leaves an entry there. `blocks`: a directory there keeps S from
    being recovered (the entry waits for the next start). `prepare`: what else the case does to the card.
    """

    name: str
    owned: bool = False
    refused: frozenset[str] = frozenset()
    reported: bool = True
    blocks: bool = False
    prepare: Callable[[Path], None] = lambda card: None


def _destroyed_off_box(card: Path) -> None:
    """E's recording removed, as `consentbox-admin destroy` removes it, before its mark is planted."""
    for path in recorded_files(card, E):
        path.unlink()


KINDS = ("symlink-to-state", "dangling-symlink", "fifo", "directory", "device-node", "hard-link-to-state",
         "huge-sparse", "unreadable")

PLACES = {
    "open-segment": Place(segment_name(S, 0)),
    "next-segment": Place(segment_name(S, 1)),
    "manifest": Place(manifest_name(S), owned=True, blocks=True),
    "manifest-temporary": Place(temporary_name(manifest_name(S)), owned=True, blocks=True),
    "extract": Place(extract_name(S), owned=True, reported=False),
    "extract-temporary": Place(temporary_name(extract_name(S)), owned=True, reported=False),
    "card-id": Place(CARD_ID_NAME),
    "self-test-probe": Place(PROBE_NAME, owned=True, refused=frozenset({"directory"})),
    "next-session-segment": Place(segment_name(Q, 0), refused=frozenset(KINDS)),
    "wipe-target": Place(segment_name(E, 0)),
    "destroyed-mark": Place(destroyed_mark_name(E), prepare=_destroyed_off_box),
    "old-ledger-copy": Place("ledger.jsonl", reported=False),
}


@dataclasses.dataclass(frozen=True)
class Planting:
    """What a case needs to plant any kind: the box's state directory and the loop device's numbers."""

    state: Path
    device: int


def plant(path: Path, kind: str, where: Planting) -> None:
    """Put an entry of `kind` at `path` on the card, in place of what is there (whose bytes a huge or an
    unreadable file keeps, so that a segment, say, still begins with its real age header)."""
    kept = path.read_bytes() if path.is_file() and not path.is_symlink() else b"not the box's file\n" * 8
    if path.is_symlink() or path.exists():
        path.unlink()
    if kind == "symlink-to-state":
        path.symlink_to(where.state / LEDGER)
    elif kind == "dangling-symlink":
        path.symlink_to(where.state / "planted-by-the-card")  # followed, a write would create it there
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
        (path / "inside").write_bytes(b"a file inside the directory\n")
    elif kind == "device-node":
        os.mknod(path, stat.S_IFBLK | 0o600, where.device)
    elif kind == "hard-link-to-state":
        os.link(where.state / DEVICE_KEY, path)  # the card and the state share the simulator's file system
    elif kind == "huge-sparse":
        path.write_bytes(kept)
        os.truncate(path, HUGE)
    elif kind == "unreadable":
        path.write_bytes(kept)
        path.chmod(0)
    else:
        raise AssertionError(f"no such kind of entry: {kind}")


def fingerprint(path: Path) -> tuple[Any, ...] | None:
    """What identifies the entry at `path` (a link not followed); None if there is none."""
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    target = os.readlink(path) if stat.S_ISLNK(status.st_mode) else None
    inside = sorted(os.listdir(path)) if stat.S_ISDIR(status.st_mode) else None
    return (stat.S_IFMT(status.st_mode), stat.S_IMODE(status.st_mode), status.st_ino, status.st_size,
            status.st_rdev, target, inside)


# --- The set-up --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, os.urandom(8 * POLICY.rate * POLICY.frame_bytes), POLICY)
    return path


@dataclasses.dataclass(frozen=True)
class Disk:
    """A disk image outside the card, attached to a loop device: the planted device nodes are that device."""

    image: Path
    device: int  # its st_rdev

    def digest(self) -> str:
        return hashlib.sha256(self.image.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def ram(tmp_path_factory) -> Iterator[Path]:
    """A file system in memory (tmpfs) for every box of this module: syncs cost nothing there, so the table's
    cases are quick; the card, the state directory and the canary share it, as they share the simulator's
    disk (a hard link from the card to a state file is possible)."""
    with small_card(tmp_path_factory.mktemp("ram"), 512 << 20) as path:
        yield path


@pytest.fixture(scope="module")
def disk(ram: Path) -> Iterator[Disk]:
    image = ram / "outside.img"
    image.write_bytes(os.urandom(1 << 20))
    name = subprocess.run(["losetup", "--find", "--show", image], capture_output=True, text=True,
                          check=True).stdout.strip()
    try:
        yield Disk(image, os.stat(name).st_rdev)
    finally:
        subprocess.run(["losetup", "--detach", name], check=True)


def configure(box: SimulatedBox, org_pub: Path) -> None:
    box.configure(f'[policy]\nmin_free_mb = 1\nmax_session = 60\n[keys]\norg_key = "{org_pub}"\n'
                  f'[card]\npath = "{box.card}"\nrequire_mount = false\n[box]\nstate_dir = "{box.state}"\n')


@pytest.fixture(scope="module")
def made(ram: Path, microphone: Path, supervisor: tuple[Path, str]) -> Path:
    """The box of every case, under the returned directory (see the module's docstring)."""
    root = ram / "made"
    root.mkdir()
    org_pub = root / "org.pub"
    org_pub.write_text(f"# ConsentBox organisation public key\n{ORG.public_key.to_string()}\n")
    box = SimulatedBox(root / "box", supervisor[1], microphone=microphone)
    configure(box, org_pub)
    stick = box.root / "stick"
    stick.mkdir()
    bundle = Bundle(1, int(time.time()) - 60, (parse_recipient(supervisor[1]),), POLICY)
    (stick / "consentbox-v1.cbundle").write_bytes(seal(bundle, ORG))
    failure = root / "failure.txt"
    child = os.fork()
    if child == 0:  # the box, killed where `consentbox simulate` would shut it down
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(Box, "shut_down", lambda self: os.kill(os.getpid(), signal.SIGKILL))
                patch.setitem(Box.__init__.__kwdefaults__, "new_session_id", iter([E, S]).__next__)
                box.simulate(MADE, in_process=True)
        except BaseException:
            failure.write_text(traceback.format_exc())
        os._exit(1)
    status = _wait(child, BOUND)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
        failure.read_text() if failure.exists() else status
    assert sorted(path.name for path in (box.state / JOURNAL).iterdir()) == [f"{S}.json", f"{S}.key"], \
        "S was not left open"
    return root


def _wait(child: int, seconds: float) -> int:
    """The wait status of `child`, which must end within `seconds` (it is killed, and the test fails, if not)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    pytest.fail(f"the box making the set-up did not stop within {seconds} s")


@dataclasses.dataclass
class Case:
    """One case's copy of the made box, and a canary directory beside its card and state."""

    box: SimulatedBox
    canary: Path
    disk: Disk

    @property
    def card(self) -> Path:
        return self.box.card

    @property
    def state(self) -> Path:
        return self.box.state


@pytest.fixture
def case(ram: Path, made: Path, supervisor: tuple[Path, str], microphone: Path, disk: Disk) -> Iterator[Case]:
    here = Path(tempfile.mkdtemp(dir=ram))
    root = here / "box"
    shutil.copytree(made / "box", root, symlinks=True)
    box = SimulatedBox(root, supervisor[1], microphone=microphone, card=root / "card")
    configure(box, made / "org.pub")
    canary = here / "canary"
    (canary / "sub").mkdir(parents=True)
    (canary / "notes.txt").write_bytes(b"beside the card, not on it\n")
    (canary / "sub" / "keep.bin").write_bytes(os.urandom(4096))
    yield Case(box, canary, disk)
    shutil.rmtree(here)


# --- Running the box, bounded -------------------------------------------------------------------------------


class Hung(BaseException):
    """A step of the box took longer than BOUND: a BaseException, so that no `except Exception` in the
    box can swallow it."""


@contextlib.contextmanager
def bounded(doing: str) -> Iterator[None]:
    """Fail the test if the block takes over BOUND seconds. SIGALRM interrupts a blocked system call (an
    open of a FIFO, a read of a device) and the handler raises, so Python does not retry it."""
    def expired(signum: int, frame: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 1.0)  # again, should anything catch it
        raise Hung(f"{doing} took over {BOUND} s: the box hangs")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, BOUND)
    try:
        yield
    except Hung as hung:
        pytest.fail(str(hung))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAPABILITY_VERSION_3 = 0x20080522
_PERMISSION_OVERRIDES = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


@contextlib.contextmanager
def file_modes_enforced(enforced: bool) -> Iterator[None]:
    """While the block runs (if `enforced`), this thread cannot override file modes, as a process not
    running as root cannot: a mode-000 file is then unreadable. They come back after (kept as permitted)."""
    if not enforced:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_CAPABILITY_VERSION_3, 0), (_CapData * 2)()

    def call(function: Callable[..., int]) -> None:
        if function(ctypes.byref(header), data) != 0:
            raise OSError(ctypes.get_errno(), f"{function.__name__} failed: the test runs as root, as CI does")

    call(libc.capget)
    saved = data[0].effective
    data[0].effective &= ~_PERMISSION_OVERRIDES
    call(libc.capset)
    try:
        yield
    finally:
        data[0].effective = saved
        call(libc.capset)


#: The timeline entries in which the box says what is wrong with its card.
PROBLEMS = ("card", "foreign", "fault", "selftest")


@dataclasses.dataclass(frozen=True)
class Run:
    """What the box and the wipe said."""

    timeline: Timeline
    wiped: list[str]

    def reports(self, name: str) -> list[str]:
        """What the box (its card, foreign-entry, fault and self-test entries) and the wipe said about `name`."""
        said = [describe(entry) for entry in self.timeline if entry["event"] in PROBLEMS] + self.wiped
        shown = ascii(name)[1:-1]
        return [text for text in said if shown in text]


def run_box(case: Case, *, enforce_modes: bool = False) -> Run:
    """The box (start-up, then session Q), then the wipe 40 days on; what they said."""
    with file_modes_enforced(enforce_modes):
        with bounded("the box"), pytest.MonkeyPatch.context() as patch:
            patch.setitem(Box.__init__.__kwdefaults__, "new_session_id", lambda: Q)
            timeline = case.box.simulate(NEXT, in_process=True)
        with bounded("the wipe"), pytest.MonkeyPatch.context() as patch:
            patch.setattr(wipe_job, "TrustedClock",
                          functools.partial(TrustedClock, wall=lambda: time.time() + 40 * DAY))
            assert case.box.config is not None
            wiped = wipe_card(load_config(case.box.config), wait=False).lines()
    return Run(timeline, wiped)


# --- What may change ----------------------------------------------------------------------------------------


#: State files no card may ever change.
NEVER_CHANGED = (DEVICE_KEY, INSTALLED_BUNDLE, PROVISIONING_RESULT)
#: Lock files: made empty when first needed (their contents never change).
LOCKS = ("session.lock", "retention.lock", "clock-floor.lock")


def snapshot(directory: Path) -> dict[str, tuple[str, bytes | str | None]]:
    """Every entry under `directory`, by relative path: its kind and its bytes (a link: its target)."""
    found: dict[str, tuple[str, bytes | str | None]] = {}
    for path in sorted(directory.rglob("*")):
        status = path.lstat()
        relative = str(path.relative_to(directory))
        if stat.S_ISLNK(status.st_mode):
            found[relative] = ("link", os.readlink(path))
        elif stat.S_ISREG(status.st_mode):
            found[relative] = (f"file {stat.S_IMODE(status.st_mode):o} {status.st_mtime_ns}", path.read_bytes())
        else:
            found[relative] = (f"{stat.S_IFMT(status.st_mode):o}", None)
    return found


def assert_only_what_the_box_adds(state: Path, before: dict[str, tuple[str, bytes | str | None]]) -> None:
    """The state directory after a case holds exactly what the box adds in its own right, nothing else:

    - device.key, provisioned.cbundle and provisioning-result.json: byte for byte as before;
    - ledger.jsonl: the old bytes, then whole entries appended, the whole ledger verifying with the
      device key;
    - retention.json: every session as before, but those the appended entries destroyed (gone) and set
      up (added);
    - clock-floor: a number, never lower;
    - journal/: a subset of its old files, each byte for byte as before (S's entry goes once S is
      recovered; Q's comes and goes);
    - the lock files: may appear, empty;
    - nothing else, and every entry of the same kind as before (no file turned into a link).
    """
    after = snapshot(state)
    added = set(after) - set(before)
    assert added <= set(LOCKS), f"the state directory gained {sorted(added)}"
    for lock in added:
        assert after[lock][1] == b"", f"{lock} is not empty"
    old_ledger, new_ledger = before[LEDGER][1], after[LEDGER][1]
    assert isinstance(old_ledger, bytes) and isinstance(new_ledger, bytes)
    assert new_ledger.startswith(old_ledger), "the ledger was changed, not appended to"
    key = DeviceSigningKey.load_or_create(state / DEVICE_KEY).public_key
    assert verify(state / LEDGER, key).tail is Tail.COMPLETE
    appended = [Entry.parse(line, f"appended line {n}")
                for n, line in enumerate(new_ledger[len(old_ledger):].splitlines(), start=1)]
    destroyed = {entry.session for entry in appended if entry.kind is Kind.DESTRUCTION}
    set_up = {entry.session for entry in appended if entry.kind is Kind.SETUP}
    for name, (kind, content) in before.items():
        assert name in after or name.startswith(f"{JOURNAL}/"), f"{name} went from the state directory"
        if name not in after:
            continue
        assert after[name][0].split()[0] == kind.split()[0], f"{name} changed kind: {kind} -> {after[name][0]}"
        if name in NEVER_CHANGED or name.startswith(f"{JOURNAL}/") or name in LOCKS:
            assert after[name][1] == content, f"{name} changed"
        elif name == CLOCK_FLOOR:
            assert isinstance(content, bytes)
            assert int(after[name][1] or b"") >= int(content), "the clock floor went down"
        elif name == RETENTION_INDEX:
            was = RetentionIndex(_holding(before, RETENTION_INDEX, state.parent / "index-before")).entries()
            now = RetentionIndex(state).entries()
            assert was.keys() - now.keys() <= destroyed, "a session left the index without a destruction"
            assert now.keys() - was.keys() <= set_up, "a session entered the index without a set-up"
            assert all(now[session] == was[session] for session in was.keys() & now.keys())
        elif name not in (LEDGER, JOURNAL):
            assert after[name] == before[name], f"{name} changed"


def _holding(files: dict[str, tuple[str, bytes | str | None]], name: str, directory: Path) -> Path:
    """A directory holding one state file as it was, for its reader."""
    directory.mkdir(exist_ok=True)
    content = files[name][1]
    assert isinstance(content, bytes)
    (directory / name).write_bytes(content)
    return directory


# --- The outcome ----------------------------------------------------------------------------------------------


def outcome(place: Place, kind: str) -> str:
    """What the box does with an entry of `kind` at `place`, in the words of the table in the docs."""
    if kind in place.refused:
        return "refused (5)"
    return "taken" if place.owned and kind != "directory" else "left"


def check_outcome(place: Place, kind: str, planted: tuple[Any, ...] | None, path: Path, run: Run) -> None:
    """The box left the entry (and said so), took it away as its own name's, or refused the card with code 5;
    in every case but a refusal it recorded Q, and it recovered S unless the entry was in the way."""
    timeline, after = run.timeline, fingerprint(path)
    refused = outcome(place, kind) == "refused (5)"
    if outcome(place, kind) != "taken":
        assert after == planted, f"the box changed the entry: {planted} -> {after}"
        if place.reported:
            assert run.reports(place.name), f"nothing said {place.name} was left: {timeline}, {run.wiped}"
    else:
        assert after is None or (after != planted and stat.S_ISREG(after[0]) and path.stat().st_nlink == 1), \
            f"the box left {planted} at its own name"
    sessions = {entry["id"]: entry for entry in timeline.of("session")}
    if refused:
        assert timeline.of("status")[-1]["count"] == 5, "the card was not refused with code 5 (card write error)"
        assert Q not in sessions or sessions[Q]["end"] == "card write error", sessions
    else:
        assert sessions[Q]["end"] == "ended" and sessions[Q]["kept"], sessions
    recovered = [entry["id"] for entry in timeline.of("recovered")]
    assert recovered == ([] if place.blocks and kind == "directory" else [S]), recovered
    assert not any(line.startswith("could not destroy") for line in run.wiped), run.wiped
    assert run.wiped[-1].startswith("no discard"), run.wiped


def assert_nothing_outside_changed(case: Case, canary: dict[str, tuple[str, bytes | str | None]],
                                   disk: str) -> None:
    assert snapshot(case.canary) == canary, "the canary directory beside the card changed"
    assert case.disk.digest() == disk, "the disk behind the planted device node was written"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", PLACES)
def test_a_hostile_entry_neither_hangs_nor_escapes_the_card(case: Case, where: str, kind: str):
    place = PLACES[where]
    place.prepare(case.card)
    path = case.card / place.name
    plant(path, kind, Planting(case.state, case.disk.device))
    planted = fingerprint(path)
    state, canary, disk = snapshot(case.state), snapshot(case.canary), case.disk.digest()

    run = run_box(case, enforce_modes=kind == "unreadable")

    assert_only_what_the_box_adds(case.state, state)
    assert_nothing_outside_changed(case, canary, disk)
    assert RetentionIndex(case.state).entries() == {}, "the wipe left an expired session in the index"
    check_outcome(place, kind, planted, path, run)


#: Names no box writes, made to trip whatever reads, matches or prints them: each is planted as a FIFO
#: (which would hang whatever opened it) and as a file.
ODD_NAMES = {
    "newline-after-a-segment-name": f"{S}.000.wav.age\n".encode(),
    "terminal-escape-before-a-manifest-name": f"\x1b[2J{S}.manifest.age".encode(),
    "not-utf-8-for-a-segment-number": E.encode() + b".\xff\xfe.wav.age",
    "carriage-return-after-a-temporary-name": f".{S}.manifest.age.tmp\r".encode(),
    "a-forged-timeline-line": f'{S}.ledger.age\n{{"t":0.0,"event":"recovered","id":"{S}"}}'.encode(),
}


@pytest.mark.parametrize("kind", ["fifo", "file"])
@pytest.mark.parametrize("odd", ODD_NAMES)
def test_a_name_with_control_characters_or_bytes_not_utf8_is_left_alone(case: Case, odd: str, kind: str):
    path = case.card / os.fsdecode(ODD_NAMES[odd])
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(b"not the box's file\n")
    planted = fingerprint(path)
    state, canary, disk = snapshot(case.state), snapshot(case.canary), case.disk.digest()

    run = run_box(case)

    assert_only_what_the_box_adds(case.state, state)
    assert_nothing_outside_changed(case, canary, disk)
    assert RetentionIndex(case.state).entries() == {}
    assert fingerprint(path) == planted, "the box changed an entry it has no name for"
    assert [entry["id"] for entry in run.timeline.of("recovered")] == [S]
    assert [(entry["id"], entry["end"]) for entry in run.timeline.of("session")] == [(Q, "ended")]
    said = [describe(entry) for entry in run.timeline] + run.wiped
    assert not [line for line in said if not line.isprintable()], "a line the box printed holds a control character"


def test_the_hostile_entries_are_the_table_in_the_docs():
    page = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text(encoding="utf-8")
    section = page[page.index("## Hostile cards"):]
    section = section[:section.index("\n## ")]
    cells = {f"{outcome(place, kind)} `[{where}-{kind}]`" for where, place in PLACES.items() for kind in KINDS}
    cells |= {f"left `[{odd}-{kind}]`" for odd in ODD_NAMES for kind in ("fifo", "file")}
    assert {cell for cell in cells if cell not in section} == set(), "cells the docs do not give, or give otherwise"
    assert len(re.findall(r"`\[[a-z0-9-]+\]`", section)) == len(cells), "the docs list cases the test does not"
