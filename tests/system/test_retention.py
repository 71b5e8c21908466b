"""Retention and self-wipe on real card images, through the real commands (issue 8, item 5).

Each card is a new ext4 image (mkfs.ext4's defaults but 4 KiB blocks, as on any card over 512 MiB,
and no blocks reserved for root; mounted data=ordered, so file data is never journalled) on a loop
device. The box records on it with `consentbox simulate --state DIR` (real pins, real libasound, the
input fresh random bytes), the test makes some sessions old by editing the box's expiry index or
moves the box's clock floor, and `consentbox wipe` runs as systemd runs it. Then, as a clinic and an
auditor would check: which files are on the card, the raw image (unmounted, so every block is on the
backing file), the ledger's receipts, `consentbox-admin verify-ledger` and `export`.

The raw image is searched twice for each wiped session: for any 4 KiB run of its files' bytes at any
offset (`files_holding`, the project's leak finder), and for each 4 KiB block of its files, the short
last one included (so a manifest too), at every block boundary. Before the wipe the second search
finds every block of every session, which shows the search would see what it looks for. Run with -s
to print what was measured; docs/retention.md quotes its figures, and the tests that measured them fail
where a quote differs (bench/figures.py).

Some tests need a wall clock the box does not have: they build the box as `consentbox simulate` does
(`simulate()` in this process) with the trusted clock's wall clock replaced, the one seam for it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import json
import mmap
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.figures import check_quoted
from consentbox import BUILD_DATE
from consentbox.admin.extracts import load_extract
from consentbox.admin.provisioning import write_bundle
from consentbox.box.config import load_config
from consentbox.core.policy import Policy
from consentbox.crypto import decrypt, parse_identity_file, parse_recipient
from consentbox.crypto.signing import DeviceSigningKey, OrgSigningKey
from consentbox.jobs import wipe as wipe_module
from consentbox.jobs.wipe import wipe_card
from consentbox.ledger import verify
from consentbox.provisioning.bundle import Bundle
from consentbox.recording.card_id import CARD_ID_NAME, read_card_id
from consentbox.recording.manifest import Manifest, extract_name
from consentbox.recording.session import session_files
from consentbox.retention import wipe as retention_wipe_module
from consentbox.retention.index import Expiry, RetentionIndex
from consentbox.state.clock_floor import ClockFloor, TrustedClock, firmware_built
from consentbox.state.files import RETENTION_INDEX
from consentbox.state.session_lock import SessionLock
from consentbox.storage import shred as shred_module
from consentbox.testing.signal import write_wav
from tests.support.plaintext import files_holding
from tests.support.power_cuts import cut_power_at

from ..conftest import required_tool
from .conftest import BIN, SimulatedBox, Timeline, pcm

DAY = 86_400
POLICY = Policy(min_free_mb=1)
BLOCK = 4096  # the card's file system block size
IMAGE_BYTES = 24 << 20
INPUT_SECONDS = 6
NO_DISCARD = "no discard: the card directory is not a mount point"


# --- Cards: ext4 images on loop devices -------------------------------------------------------------------


class LoopCard:
    """An ext4 image on a loop device of its own, put in (mounted at) and taken out of a slot."""

    def __init__(self, image: Path, device: str) -> None:
        self.image, self.device = image, device
        self.slot: Path | None = None
        self.options: tuple[str, ...] = ()

    def insert(self, slot: Path, *options: str) -> Path:
        """Mount the card at `slot`, with the mount `options` given (and then again after `raw`)."""
        slot.mkdir(parents=True, exist_ok=True)
        _run("mount", "-t", "ext4", *(["-o", ",".join(options)] if options else []), self.device, str(slot))
        self.slot, self.options = slot, options
        return slot

    def eject(self) -> None:
        assert self.slot is not None
        _run("umount", str(self.slot))
        self.slot = None

    @contextlib.contextmanager
    def raw(self) -> Iterator[Path]:
        """The card's image, taken out first (so every block is on the image file), put back after."""
        slot, options = self.slot, self.options
        self.eject()
        try:
            yield self.image
        finally:
            assert slot is not None
            self.insert(slot, *options)

    def allocated(self) -> int:
        """Bytes of the image file that hold data (a discarded block becomes a hole in it)."""
        return self.image.stat().st_blocks * 512


def _run(*args: str) -> str:
    done = subprocess.run([required_tool(args[0]), *args[1:]], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed (it needs root and loop devices): {done.stderr.strip()}"
    return done.stdout


@contextlib.contextmanager
def card_maker(directory: Path) -> Iterator[Any]:
    """`make()`: a new, empty card image in `directory` on its own loop device, not yet inserted; all of
    them taken out and detached at the end."""
    made: list[LoopCard] = []

    def make() -> LoopCard:
        image = directory / f"card{len(made)}.img"
        with open(image, "xb") as file:
            file.truncate(IMAGE_BYTES)
        _run("mkfs.ext4", "-q", "-F", "-m", "0", "-b", str(BLOCK), str(image))
        device = _run("losetup", "--find", "--show", str(image)).strip()
        made.append(LoopCard(image, device))
        # A `blockdev --setro` outlives the detaching of a loop device, so a device another test once
        # set read-only (a provisioning stick) would mount read-only: make sure ours takes writes.
        _run("blockdev", "--setrw", device)
        return made[-1]

    try:
        yield make
    finally:
        for card in made:
            if card.slot is not None and subprocess.run(["umount", str(card.slot)], check=False).returncode:
                subprocess.run(["umount", "--lazy", str(card.slot)], check=False)
            subprocess.run(["losetup", "--detach", card.device], capture_output=True, check=False)


@pytest.fixture
def new_card(tmp_path) -> Iterator[Any]:
    with card_maker(tmp_path) as make:
        yield make


# --- The box: the real commands on one state directory ----------------------------------------------------


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    """The input: fresh random samples, so no byte of a card can match the input or a file by chance."""
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, os.urandom(INPUT_SECONDS * POLICY.rate * POLICY.frame_bytes), POLICY)
    return path


def script(*sessions: str) -> str:
    """A script recording one session per word, 20 s apart: "one" records ~4 s in one interval, "paused"
    two intervals (so three files: two segments and the manifest)."""
    lines = []
    for number, kind in enumerate(sessions):
        t = 20 * number
        lines += [f"{t} tap record", f"{t + 1} tap consent 1", f"{t + 2} tap consent 2", f"{t + 3} hold record 1.2"]
        if kind == "paused":
            lines += [f"{t + 5} tap record", f"{t + 6} tap record"]
        lines.append(f"{t + 8} hold record 2.5")
    return "\n".join(lines) + "\n"


class Box(SimulatedBox):
    """One box: its state directory, its configuration (as /etc/consentbox/config.toml), its card slot.

    `simulate` is `consentbox simulate --state` on this box's card and state directory."""

    def __init__(self, root: Path, card: Path, microphone: Path, supervisor: tuple[Path, str], *,
                 require_mount: bool, org_key: Path | None = None) -> None:
        super().__init__(root, supervisor[1], key_file=supervisor[0], microphone=microphone, card=card)
        # The recipients too, as on a box: the wipe job encrypts the card's ledger extracts to them.
        keys = f'[keys]\nrecipients = ["{supervisor[1]}"]\n' + (f'org_key = "{org_key}"\n' if org_key else "")
        # The test cards are ext4 images, so the box is told to take that type (a deployed box: exFAT, FAT32).
        self.configure(f'[policy]\nmin_free_mb = 1\nmax_session = 60\n[card]\npath = "{card}"\n'
                       f'require_mount = {str(require_mount).lower()}\nfile_systems = ["ext4"]\n'
                       f'[box]\nstate_dir = "{self.state}"\n{keys}')

    # The box itself.

    def simulate_with_wall_clock(self, text: str, wall: float) -> Timeline:
        """`simulate` in this process, the box's trusted clock reading `wall` as the wall clock."""
        return self.simulate(text, in_process=True, trusted_clock=stopped_clock(wall))

    def record(self, *sessions: str) -> list[str]:
        """Record the sessions (see `script`); their ids."""
        ended = [e for e in self.simulate(script(*sessions)) if e["event"] == "session"]
        assert [(e["end"], e["kept"]) for e in ended] == [("ended", True)] * len(sessions), ended
        return [e["id"] for e in ended]

    # The retention job and the supervisor's tools.

    def wipe(self, *options: str) -> list[str]:
        """`consentbox wipe --config …`: the lines it printed, without their prefix."""
        done = subprocess.run([BIN / "consentbox", "wipe", "--config", self.config, *options],
                              capture_output=True, text=True, timeout=120)  # fails a hung wipe
        assert done.returncode == 0 and not done.stderr, done.stderr
        prefix = "consentbox: wipe: "
        assert all(line.startswith(prefix) for line in done.stdout.splitlines()), done.stdout
        return [line[len(prefix):] for line in done.stdout.splitlines()]

    def wavs(self, out: Path) -> dict[str, bytes]:
        """`consentbox-admin export` of the card, every session whole: each session's WAV file."""
        return self.export(out, statuses=(0,)).wavs

    def manifest(self, session: str, out: Path) -> dict[str, Any]:
        return self.export(out, statuses=(0,)).reports[session]

    # What the box keeps.

    def files(self, *sessions: str) -> dict[str, bytes]:
        """The files of `sessions` on the card (of every session if none is named)."""
        return self.card_files(*sessions)

    def index(self) -> dict[str, Expiry]:
        return RetentionIndex(self.state).entries()

    def backdate(self, session: str, days: int) -> None:
        """Edit the expiry index as if `session` had been recorded `days` days earlier."""
        path = self.state / RETENTION_INDEX
        content = json.loads(path.read_text())
        entry = content["sessions"][session]
        entry["started"] -= days * DAY
        entry["expires"] -= days * DAY
        path.write_text(json.dumps(content))

    def ledger(self, where: str = "box") -> list[dict[str, Any]]:
        """The entries of the box's ledger (or those in the sessions' extracts on the card, decrypted with the
        supervisor's key), after `verify-ledger` says each file is intact."""
        paths = [self.state / "ledger.jsonl"] if where == "box" else sorted(self.card.glob("*.ledger.age"))
        entries = []
        for path in paths:
            key = [] if where == "box" else ["-i", self.key_file]
            done = subprocess.run([BIN / "consentbox-admin", "verify-ledger", *key, path], capture_output=True,
                                  text=True)
            assert done.returncode == 0, done.stdout + done.stderr
            if where == "box":
                entries += [json.loads(line) for line in path.read_bytes().splitlines()]
            else:
                extract = load_extract(path, parse_identity_file(self.key_file.read_text(), str(self.key_file)))
                entries += [json.loads(entry.line) for entry in extract.entries]
        return entries

    def receipts(self, where: str = "box") -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for entry in self.ledger(where):
            if entry["kind"] == "destruction":
                found.setdefault(entry["session"], []).append(entry["fields"])
        return found


def stopped_clock(wall: float) -> Callable[..., TrustedClock]:
    """TrustedClock, its wall clock reading `wall` and its monotonic clock standing still, so that
    times behind the floor are exact (how time runs on from the floor is tests/retention's); the clocks
    it is made with (a simulation's) are set aside."""
    return lambda state_dir, **clocks: TrustedClock(state_dir, wall=lambda: wall, monotonic=lambda: 0.0)


def destroyed(session: str, files: int) -> str:
    return f"destroyed session {session} ({files} files)"


class _Date:
    """Equal to any date as the ledger writes one (which date each receipt is due: test_destruction.py)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", other) is not None

    def __repr__(self) -> str:
        return "YYYY-MM-DD"


def retention(files: int) -> list[dict[str, Any]]:
    return [{"cause": "retention", "files": files, "due": _Date()}]


# --- Searching the raw card ---------------------------------------------------------------------------------


def pieces(files: Mapping[str, bytes]) -> Iterator[tuple[str, int, bytes]]:
    """Each file's 4 KiB blocks, as a file system that writes in place keeps them: (file, offset, bytes).
    The last block is shorter; one under 32 bytes (1 time in 128) is too short to be told apart, and left out."""
    for name, data in files.items():
        for offset in range(0, len(data), BLOCK):
            if len(data) - offset >= 32:
                yield name, offset, data[offset:offset + BLOCK]


def blocks_on_image(raw: bytes, files: Mapping[str, bytes]) -> set[tuple[str, int]]:
    """(file, offset) of each of the `pieces` of `files` found at a block boundary of the raw image."""
    wanted: dict[bytes, list[tuple[str, int, bytes]]] = {}
    for name, offset, piece in pieces(files):
        wanted.setdefault(piece[:32], []).append((name, offset, piece))
    found = set()
    for at in range(0, len(raw), BLOCK):
        for name, offset, piece in wanted.get(raw[at:at + 32], ()):
            if raw[at:at + len(piece)] == piece:
                found.add((name, offset))
    return found


def all_blocks(files: Mapping[str, bytes]) -> set[tuple[str, int]]:
    return {(name, offset) for name, offset, _ in pieces(files)}


def any_run_on_image(image: Path, files: Mapping[str, bytes]) -> bool:
    """Whether any 4 KiB run of any of `files`, at any offset, is anywhere on the raw image."""
    # One search for all: the files joined by fresh random bytes, so a run of one file is still found
    # and no match spans two. Each file starts 512 bytes past a multiple of 1024, so none of the
    # finder's quick probes (8 bytes at every 1024th offset) falls on the age header that every file
    # on the card begins with, which would send it to its slow search every time.
    parts, length = [], 0
    for data in files.values():
        pad = 4096 + (512 - length) % 1024
        parts += [os.urandom(pad), data]
        length += pad + len(data)
    return files_holding(b"".join(parts), [image]) != []


def manifests_on_image(raw: bytes, key_file: Path) -> list[str]:
    """The session of every manifest version (current or replaced) left in a block of the raw image: each
    block that starts like an age file and decrypts with the supervisor's key to a manifest."""
    identities = parse_identity_file(key_file.read_text(), str(key_file))
    sessions = []
    for at in range(0, len(raw), BLOCK):
        block = raw[at:at + BLOCK]
        if not block.startswith(b"age-encryption.org/v1\n"):
            continue
        body = block.rstrip(b"\0")  # a manifest is one short file: its block is zeros after it
        for zeros in range(4):  # ...unless its ciphertext ends in zero bytes
            plain = io.BytesIO()
            try:
                decrypt(io.BytesIO(body + bytes(zeros)), plain, identities)
            except Exception:
                continue
            with contextlib.suppress(Exception):
                sessions.append(Manifest.from_json(plain.getvalue()).session)
            break
    return sessions


# --- The wipe on a real card ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded_and_wiped(tmp_path_factory, microphone, supervisor) -> Iterator[dict[str, Any]]:
    """Four sessions recorded on an ext4 card by the box, two of them made old, then `consentbox wipe`.

    The sessions are in a directory on the card rather than at its mount point, so the wipe discards
    nothing: the raw image shows what the overwrite alone does.
    """
    root = tmp_path_factory.mktemp("wiped")
    with card_maker(root) as new_card:
        card = new_card()
        card.insert(root / "slot")
        box = Box(root, root / "slot" / "sessions", microphone, supervisor, require_mount=False)
        box.card.mkdir()
        old, older, recent, new = box.record("paused", "one", "paused", "one")
        box.backdate(old, 31)  # expired yesterday
        box.backdate(older, 45)  # expired two weeks ago
        box.backdate(recent, 29)  # expires tomorrow; `new` in 30 days
        wiped, kept = box.files(old, older), box.files(recent, new)
        exported = box.wavs(root / "before")
        with card.raw() as image:
            raw = image.read_bytes()
            assert blocks_on_image(raw, wiped | kept) == all_blocks(wiped | kept), "the search cannot see the files"
            manifests_before = manifests_on_image(raw, box.key_file)

        lines = box.wipe()

        with card.raw() as image:
            raw = image.read_bytes()
            found = {"wiped blocks": blocks_on_image(raw, wiped), "kept blocks": blocks_on_image(raw, kept),
                     "wiped run": any_run_on_image(image, wiped), "manifests": manifests_on_image(raw, box.key_file)}
        sessions = (old, older, recent, new)
        print(f"\nraw image {IMAGE_BYTES >> 20} MiB, ext4, {BLOCK}-byte blocks. Wiped {len(wiped)} files of 2 "
              f"sessions, {sum(map(len, wiped.values()))} bytes in {len(all_blocks(wiped))} blocks; kept "
              f"{len(kept)} files, {sum(map(len, kept.values()))} bytes in {len(all_blocks(kept))} blocks. Before "
              f"the wipe every block of both was found. After it: {len(found['wiped blocks'])} blocks of the wiped "
              f"files, a 4 KiB run of them {'found' if found['wiped run'] else 'nowhere'}; "
              f"{len(found['kept blocks'])} blocks of the kept. Manifest versions (current and replaced) on the "
              f"image, wiped, wiped, kept, kept: before {[manifests_before.count(s) for s in sessions]}, after "
              f"{[found['manifests'].count(s) for s in sessions]}")
        figures = {
            "wipe-image.image-mib": str(IMAGE_BYTES >> 20),
            "wipe-image.block-kib": str(BLOCK >> 10),
            "wipe-image.sessions": str(len(sessions)),
            "wipe-image.files": str(len(wiped) + len(kept)),
            "wipe-image.wiped.files": str(len(wiped)),
            "wipe-image.wiped.bytes": f"{sum(map(len, wiped.values())):,}",
            "wipe-image.wiped.blocks": str(len(all_blocks(wiped))),
            "wipe-image.kept.blocks": str(len(all_blocks(kept))),
            **{f"wipe-image.{name}.files": str(sum(file.startswith(session) for file in wiped))
               for name, session in (("old", old), ("older", older))},
            **{f"wipe-image.{name}.manifests-left": str(found["manifests"].count(session))
               for name, session in (("old", old), ("older", older))},
        }
        yield {"box": box, "ids": sessions, "lines": lines, "wiped": wiped, "kept": kept, "exported": exported,
               "found": found, "root": root, "figures": figures}


def test_the_wipe_destroys_exactly_the_expired_sessions_and_no_block_of_them_is_left_on_the_card(
        recorded_and_wiped):
    run = recorded_and_wiped
    box, (old, older, recent, new) = run["box"], run["ids"]
    assert run["lines"] == [destroyed(older, 2), destroyed(old, 3), NO_DISCARD]

    assert box.files() == run["kept"], "the kept sessions' files changed"
    extracts = [extract_name(session) for session in run["ids"]]  # the destroyed sessions' records stay
    assert sorted(p.name for p in box.card.iterdir()) == sorted([*run["kept"], *extracts, CARD_ID_NAME]), \
        "the card holds something else (no expiry index: that stays on the box)"
    assert set(box.index()) == {recent, new}
    assert run["found"]["wiped blocks"] == set() and run["found"]["wiped run"] is False
    assert run["found"]["kept blocks"] == all_blocks(run["kept"])

    for where in ("box", "card"):
        assert box.receipts(where) == {old: retention(3), older: retention(2)}
    assert [e["fields"] for e in box.ledger() if e["kind"] == "wipe"] == [{"files": 5}]
    assert [e for e in box.ledger("card") if e["kind"] == "wipe"] == []  # in no session: it stays on the box

    exported = box.wavs(run["root"] / "after")
    assert sorted(exported) == sorted([new, recent])
    assert exported == {s: run["exported"][s] for s in (new, recent)}, "a kept session does not export as before"
    assert all(len(pcm(wav)) > POLICY.rate for wav in exported.values())

    assert box.wipe() == ["nothing has expired"]
    check_quoted(run["figures"])


def test_the_wipe_discards_the_freed_blocks_of_a_mounted_card(tmp_path, new_card, microphone, supervisor):
    card = new_card()
    box = Box(tmp_path, card.insert(tmp_path / "slot"), microphone, supervisor, require_mount=True)
    session, kept = box.record("paused", "one")
    box.backdate(session, 40)
    wiped = box.files(session)
    holding = card.allocated()

    lines = box.wipe()
    assert lines[:1] == [destroyed(session, 3)] and len(lines) == 2
    discarded = int(lines[1].removeprefix("discarded ").removesuffix(" bytes of free space"))
    assert discarded >= sum(map(len, wiped.values())), lines
    assert card.allocated() < holding, "the loop device punched no hole in the image"
    with card.raw() as image:
        raw = image.read_bytes()
        assert blocks_on_image(raw, wiped) == set() and not any_run_on_image(image, wiped)
        assert set(manifests_on_image(raw, box.key_file)) == {kept}, "a replaced manifest version was not discarded"
    # Not figures for the docs: how much free space FITRIM reports, and so the holes, differ from run to run.
    print(f"\ndiscard: {lines[1]}; the image held {holding} bytes, {card.allocated()} after")


def test_as_deployed_the_card_mounted_with_discard_keeps_nothing_of_a_wiped_session(
        tmp_path, new_card, microphone, supervisor):
    # deploy/README.md mounts the card with `discard`, and consentbox-wipe.service runs the wipe with no
    # capabilities (CapabilityBoundingSet=), which FITRIM would need: the blocks freed by each unlink,
    # and by each replaced version of a manifest while the session was recorded, are discarded by the
    # mount instead.
    card = new_card()
    box = Box(tmp_path, card.insert(tmp_path / "slot", "discard"), microphone, supervisor, require_mount=True)
    session, kept = box.record("paused", "one")
    box.backdate(session, 40)
    wiped = box.files(session)

    done = subprocess.run([required_tool("setpriv"), "--inh-caps=-all", "--bounding-set=-all", "--",
                           BIN / "consentbox", "wipe", "--config", box.config], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"consentbox: wipe: {destroyed(session, 3)}",
        "consentbox: wipe: freed blocks discarded as they were freed (the card is mounted with discard)"]
    with card.raw() as image:
        raw = image.read_bytes()
        assert blocks_on_image(raw, wiped) == set() and not any_run_on_image(image, wiped)
        assert manifests_on_image(raw, box.key_file) == [kept], "a replaced manifest version is still there"


# --- The clock ----------------------------------------------------------------------------------------------


def test_a_clock_set_back_below_the_floor_keeps_nothing_longer_and_the_box_logs_it(
        tmp_path, new_card, microphone, supervisor):
    card = new_card()
    box = Box(tmp_path, card.insert(tmp_path / "slot"), microphone, supervisor, require_mount=True)
    recent, older = box.record("one", "one")
    box.backdate(older, 20)  # by the wall clock it has ten days to go
    floor = int(time.time()) + 15 * DAY  # the box once saw a time fifteen days ahead of this clock
    ClockFloor(box.state).raise_to(floor)

    lines = box.wipe()
    assert lines[0] == destroyed(older, 2) and lines[1].startswith("discarded ") and len(lines) == 2
    assert sorted({name[:16] for name in box.files()}) == [recent]
    assert box.receipts() == {older: retention(2)}

    entries = len(box.ledger())
    timeline = box.simulate(script("one"))
    [clock] = [e for e in timeline if e["event"] == "clock"]
    assert clock["trusted"] is True and clock["behind"] == pytest.approx(15 * DAY, abs=120)
    [new] = [e["id"] for e in timeline if e["event"] == "session"]
    run = box.ledger()[entries:]
    [correction] = [e for e in run if e["kind"] == "clock_correction"]
    assert correction["fields"]["delta"] == pytest.approx(15 * DAY, abs=120)
    # What the box dated meanwhile is dated from the floor on (the run took a few seconds): the
    # session, its expiry, its manifest, its ledger entries.
    def from_the_floor(moment: float) -> bool:
        return floor <= moment <= floor + 60

    expiry = box.index()[new]
    assert from_the_floor(expiry.started) and expiry.expires == expiry.started + 30 * DAY
    assert from_the_floor(datetime.fromisoformat(box.manifest(new, tmp_path / "export")["started"]).timestamp())
    assert all(from_the_floor(datetime.fromisoformat(e["wall"]).timestamp()) for e in run)
    assert ClockFloor(box.state).read() == floor, "the floor moved"


def test_a_clock_that_jumps_forward_raises_the_floor_and_a_step_back_after_it_is_corrected(
        tmp_path, new_card, microphone, supervisor, monkeypatch):
    card = new_card()
    box = Box(tmp_path, card.insert(tmp_path / "slot"), microphone, supervisor, require_mount=True)
    now = int(time.time())

    def wipe_at(wall: float) -> list[str]:
        """`consentbox wipe` (the function it runs) with the box's wall clock at `wall`."""
        with monkeypatch.context() as patch:
            patch.setattr(wipe_module, "TrustedClock", stopped_clock(wall))
            return wipe_card(load_config(box.config), wait=False).lines()

    def record_at(wall: float) -> tuple[str, Timeline]:
        timeline = box.simulate_with_wall_clock(script("one"), wall)
        [session] = [e["id"] for e in timeline if e["event"] == "session"]
        return session, timeline

    first, _ = record_at(now)
    assert box.index()[first] == Expiry(now, now + 30 * DAY, card=read_card_id(box.card))
    assert ClockFloor(box.state).read() == now

    # Forward: set right after six weeks switched off. The floor follows; nothing is corrected.
    second, timeline = record_at(now + 40 * DAY)
    assert not [e for e in timeline if e["event"] == "clock"]
    assert box.index()[second].started == now + 40 * DAY and ClockFloor(box.state).read() == now + 40 * DAY
    lines = wipe_at(now + 40 * DAY)
    assert lines[0] == destroyed(first, 2) and lines[1].startswith("discarded ") and len(lines) == 2

    # Back: a restart without a clock battery, 39 days behind. The box says so and dates by the floor.
    third, timeline = record_at(now + DAY)
    [clock] = [e for e in timeline if e["event"] == "clock"]
    assert clock["behind"] == 39 * DAY and clock["trusted"] is True
    assert [e["fields"]["delta"] for e in box.ledger() if e["kind"] == "clock_correction"] == [39 * DAY]
    assert box.index()[third] == Expiry(now + 40 * DAY, now + 70 * DAY, card=read_card_id(box.card))
    assert wipe_at(now + DAY) == ["nothing has expired"]
    # Thirty days after the floor, by a clock still behind it, both later sessions have expired.
    lines = wipe_at(now + 70 * DAY)
    assert sorted(lines[:2]) == sorted([destroyed(second, 2), destroyed(third, 2)]) and len(lines) == 3
    assert box.files() == {} and ClockFloor(box.state).read() == now + 70 * DAY


def test_a_box_that_never_knew_the_time_refuses_to_record_with_code_9(tmp_path, new_card, microphone, supervisor):
    card = new_card()
    box = Box(tmp_path, card.insert(tmp_path / "slot"), microphone, supervisor, require_mount=True)
    built = firmware_built()
    assert datetime.fromtimestamp(built, UTC).date().isoformat() == BUILD_DATE

    # A Pi without a clock battery, never set, never provisioned: its clock starts in the past.
    timeline = box.simulate_with_wall_clock(script("one"), built - 400 * DAY)
    statuses = [e for e in timeline if e["event"] == "status"]
    assert (statuses[0]["colour"], statuses[0]["rhythm"], statuses[0]["count"]) == ("red", "code", 9)
    assert {e["count"] for e in statuses} == {9}, "the STATUS LED showed anything but code 9"
    assert [e["state"] for e in timeline if e["event"] == "state"] == ["IDLE"]
    refusals = [e["reason"] for e in timeline if e["event"] == "refused"]
    assert refusals and set(refusals) == {"clock untrusted"}
    assert {(e["colour"], e["count"]) for e in timeline if e["event"] == "flash"} == {("red", 9)}
    assert not [e for e in timeline if e["event"] in ("setup", "capture", "file", "session")]
    assert [e for e in timeline if e["event"] == "led" and e.get("on")] == []
    assert box.files() == {} and box.index() == {} and ClockFloor(box.state).read() is None
    [clock] = [e for e in timeline if e["event"] == "clock"]
    assert clock["trusted"] is False and clock["behind"] == 400 * DAY

    # IT sets the clock: the box trusts it, records, and the floor is set.
    timeline = box.simulate_with_wall_clock(script("one"), built + DAY)
    [session] = [e["id"] for e in timeline if e["event"] == "session"]
    assert box.index()[session].started == built + DAY and ClockFloor(box.state).read() == built + DAY


# --- A wipe killed at any call ------------------------------------------------------------------------------

#: The calls that change a disk: every step of a wipe that could be cut is one of them.
WRAPPED = ("write", "fsync", "fdatasync", "ftruncate", "unlink", "replace", "rename")
PLACES = ("session file", "card ledger", "box ledger", "expiry index", "clock floor", "directory", "other")
KILL_TRIALS = 60  # at least; every call of a whole run is hit once, the rest drawn at random
KILL_CHUNK = 256 << 10  # overwritten between checks for a session: a segment of a few seconds takes two
NEVER = 1 << 62
# Slots of the memory the child shares with its parent (plain stores: no system call to count).
CALLS, PLACE = range(2)


def _place(name: str, args: tuple) -> str:
    """What the call at hand changes."""
    try:
        target = Path(args[0] if name in ("unlink", "replace", "rename") else os.readlink(f"/proc/self/fd/{args[0]}"))
    except (OSError, TypeError):
        return "other"
    if target.is_dir():
        return "directory"
    if target.name.removesuffix(".tmp").endswith(".ledger.age"):
        return "card ledger"
    if target.name.endswith(".age"):
        return "session file"
    if target.name == "ledger.jsonl":
        return "box ledger"
    return {RETENTION_INDEX: "expiry index", ".retention.json.tmp": "expiry index", "clock-floor": "clock floor",
            ".clock-floor.tmp": "clock floor"}.get(target.name, "other")


def _wipe_dying(config: Path, call: int, after: bool, shared: memoryview, errors: Path) -> None:
    """In a forked child: one run of `consentbox wipe` (the function it runs), SIGKILLed just before (or,
    if `after`, just after) its `call`-th disk-changing call; never returns."""
    try:
        shred_module.CHUNK = KILL_CHUNK

        def note_place(name: str, args: tuple) -> None:
            shared[PLACE] = PLACES.index(_place(name, args))

        cut_power_at(call, shared, rng=random.Random(call), names=WRAPPED, after=after, on_cut=note_place)
        wipe_card(load_config(config), wait=False)
        os._exit(0)
    except BaseException:
        errors.write_text(traceback.format_exc())
        os._exit(1)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, microphone, supervisor) -> dict[str, dict[str, bytes]]:
    """Three sessions the box recorded (two files, three files, two files): each trial's card holds copies."""
    root = tmp_path_factory.mktemp("recorded")
    box = Box(root, root / "card", microphone, supervisor, require_mount=False)
    box.card.mkdir()
    return {session: box.files(session) for session in box.record("one", "paused", "one")}


@dataclasses.dataclass(frozen=True)
class Trial:
    call: int  # the disk-changing call the wipe was killed at (1 is the first), or NEVER
    after: bool  # killed just after that call rather than just before it
    killed: bool
    place: str  # what that call changed
    problems: tuple[str, ...]  # what was wrong after the next two runs


def test_a_wipe_killed_at_any_call_is_finished_by_the_next_runs_with_one_receipt_each(
        tmp_path, new_card, recorded, monkeypatch):
    # The wipe's pause between chunks lets a waiting box take the card; no box waits here.
    monkeypatch.setattr(retention_wipe_module, "_YIELD_SECONDS", 0)
    slot = new_card().insert(tmp_path / "slot")
    (expired, expired_too, unexpired), now = list(recorded), int(time.time())
    started = {expired: now - 45 * DAY, expired_too: now - 31 * DAY, unexpired: now - DAY}
    shared = memoryview(mmap.mmap(-1, 8 * 2)).cast("q")

    def trial(number: int, call: int, after: bool) -> Trial:
        """A card and a box holding the three sessions; a wipe killed at `call`; then two whole runs."""
        base = slot / f"{number:03d}"
        card, state = base / "card", base / "state"
        card.mkdir(parents=True)
        state.mkdir(mode=0o700)
        for files in recorded.values():
            for name, data in files.items():
                (card / name).write_bytes(data)
        DeviceSigningKey.load_or_create(state / "device.key")
        for session, start in started.items():
            RetentionIndex(state).add(session, start, 30)
        config = base / "config.toml"
        config.write_text(f'[card]\npath = "{card}"\nrequire_mount = false\n[box]\nstate_dir = "{state}"\n')
        shared[CALLS], shared[PLACE] = 0, PLACES.index("other")
        pid = os.fork()
        if pid == 0:
            _wipe_dying(config, call, after, shared, base / "child-error")
        _, status = os.waitpid(pid, 0)
        assert not (base / "child-error").exists(), (base / "child-error").read_text()
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert killed or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and shared[CALLS] < call)

        for _ in range(2):  # the next two runs: the timer's, or the next boot's
            wipe_card(load_config(config), wait=False)
        problems = [f"{session} survived" for session in (expired, expired_too) if session_files(card, session)]
        if {name: (card / name).read_bytes() for name in recorded[unexpired]} != recorded[unexpired]:
            problems.append("the unexpired session was touched")
        if RetentionIndex(state).entries() != {unexpired: Expiry(started[unexpired], started[unexpired] + 30 * DAY)}:
            problems.append(f"index: {RetentionIndex(state).entries()}")
        verify(state / "ledger.jsonl")  # LedgerError unless intact as far as it goes; a torn last entry is allowed
        receipts = [json.loads(line) for line in (state / "ledger.jsonl").read_bytes().splitlines()
                    if b'"kind":"destruction"' in line]
        for session in (expired, expired_too):
            mine = [receipt["fields"] for receipt in receipts if receipt["session"] == session]
            if mine != retention(len(recorded[session])):
                problems.append(f"receipts of {session}: {mine}")
        shutil.rmtree(base)
        return Trial(call, after, killed, PLACES[shared[PLACE]], tuple(problems))

    whole = trial(999, NEVER, False)
    calls = shared[CALLS]
    assert whole.problems == () and calls > 20, f"an uninterrupted wipe went wrong: {whole.problems}"
    draw = random.Random(8)
    plan = [(call, False) for call in range(1, calls + 1)]  # every call once...
    plan += [(draw.randint(1, calls + 2), draw.random() < 0.5)  # ...and more at random, before or after it
             for _ in range(max(0, KILL_TRIALS - calls) + 10)]
    trials = [trial(number, call, after) for number, (call, after) in enumerate(plan)]

    killed = [t for t in trials if t.killed]
    places = collections.Counter(t.place for t in killed)
    print(f"\n{len(trials)} trials, {calls} disk-changing calls in a whole run, {len(killed)} killed; "
          f"kills by what the call changed: {dict(places)}")
    failures = [f"killed {'after' if t.after else 'at'} call {t.call} ({t.place}): {'; '.join(t.problems)}"
                for t in trials if t.problems]
    assert len(killed) >= 50 and places["session file"] and places["expiry index"] and places["box ledger"]
    assert failures == [], "\n".join(failures)
    check_quoted({"wipe-killed.trials": str(len(trials)), "wipe-killed.calls": str(calls),
                  "wipe-killed.killed": str(len(killed))})


# --- Provisioning shortens, never lengthens ---------------------------------------------------------------


def test_a_bundle_shortens_expiries_and_never_lengthens_them(tmp_path, new_card, microphone, supervisor):
    org = tmp_path / "org"
    subprocess.run([BIN / "consentbox-admin", "init-org", "--out", org], capture_output=True, check=True)
    card = new_card()
    box = Box(tmp_path, card.insert(tmp_path / "slot"), microphone, supervisor, require_mount=True,
              org_key=org / "org.pub")
    early, late = box.record("one", "one")
    box.backdate(early, 5)  # recorded five days ago; `late` today
    expires = {s: e.expires for s, e in box.index().items()}
    started = {s: e.started for s, e in box.index().items()}
    sticks = iter(range(100))

    def provision(version: int, retention_days: int, *options: str) -> subprocess.CompletedProcess:
        stick, policy = tmp_path / f"stick{next(sticks)}", tmp_path / "policy.toml"
        stick.mkdir()
        policy.write_text(f"[policy]\nretention_days = {retention_days}\nmin_free_mb = 1\nmax_session = 60\n")
        subprocess.run([BIN / "consentbox-admin", "bundle", "--org-key", org / "org.key", "--recipient",
                        box.recipient, "--policy", policy, "--version", str(version), "--single-recipient", *options,
                        "--out", stick],
                       capture_output=True, check=True)
        return subprocess.run([BIN / "consentbox", "provision", "--config", box.config, stick],
                              capture_output=True, text=True)

    def limited_to(days: int) -> dict[str, int]:
        return {s: started[s] + days * DAY for s in started}

    assert provision(1, 60).returncode == 0
    assert {s: e.expires for s, e in box.index().items()} == expires, "a longer policy lengthened an expiry"
    assert provision(2, 10).returncode == 0
    assert {s: e.expires for s, e in box.index().items()} == limited_to(10)
    refused = provision(2, 1)  # not newer: refused, so it shortens nothing either
    assert refused.returncode == 2 and {s: e.expires for s, e in box.index().items()} == limited_to(10)
    assert provision(3, 30, "--existing-days", "3").returncode == 0  # new recordings 30 days, old ones 3
    assert {s: e.expires for s, e in box.index().items()} == limited_to(3)
    assert provision(4, 365, "--existing-days", "100").returncode == 0
    assert {s: e.expires for s, e in box.index().items()} == limited_to(3)

    lines = box.wipe()  # three days after its start, `early` has expired
    assert lines[0] == destroyed(early, 2) and lines[1].startswith("discarded ") and len(lines) == 2
    assert set(box.index()) == {late}


def test_a_bundle_dated_ahead_of_the_clock_raises_the_floor_and_the_wipe_decides_by_it(
        tmp_path, new_card, microphone, supervisor):
    org = OrgSigningKey.generate()
    (tmp_path / "org.pub").write_text(f"{org.public_key.to_string()}\n")
    card = new_card()
    box = Box(tmp_path, card.insert(tmp_path / "slot"), microphone, supervisor, require_mount=True,
              org_key=tmp_path / "org.pub")
    soon, later = box.record("one", "one")
    box.backdate(soon, 25)  # five days to go by this box's clock
    created = int(time.time()) + 10 * DAY  # IT's workstation is ten days ahead of this box
    stick = tmp_path / "stick"
    stick.mkdir()
    write_bundle(Bundle(1, created, (parse_recipient(box.recipient),), POLICY, None), org, stick)

    done = subprocess.run([BIN / "consentbox", "provision", "--config", box.config, stick], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert ClockFloor(box.state).read() == created
    lines = box.wipe()
    assert lines[0] == destroyed(soon, 2) and len(lines) == 2
    assert set(box.index()) == {later}


# --- When the wipe does nothing ----------------------------------------------------------------------------


def test_the_wipe_never_runs_during_a_session_and_with_now_waits_for_its_end(
        tmp_path, new_card, microphone, supervisor):
    card = new_card()
    box = Box(tmp_path, card.insert(tmp_path / "slot"), microphone, supervisor, require_mount=True)
    [session] = box.record("one")
    box.backdate(session, 40)
    files, index, ledger = box.files(), box.index(), (box.state / "ledger.jsonl").read_bytes()
    recording = SessionLock(box.state)
    assert recording.acquire(wait=False)  # as the box holds it, from a session's set-up to its end

    assert box.wipe() == ["stopped: a session is open; the next run continues"]
    assert (box.files(), box.index(), (box.state / "ledger.jsonl").read_bytes()) == (files, index, ledger)

    untouched = []

    def session_ends() -> None:
        untouched.append(box.files() == files and box.index() == index)
        recording.release()

    ending = threading.Timer(1.5, session_ends)
    ending.start()
    lines = box.wipe("--now")
    ending.join(timeout=10)
    assert untouched == [True], "the wipe touched the card during the session"
    assert lines[0] == "a session is in progress; waiting for it to end"
    assert lines[1] == destroyed(session, 2) and len(lines) == 3
    assert box.files() == {}


def test_wipe_now_says_it_is_waiting_while_the_session_is_still_in_progress(
        tmp_path, new_card, microphone, supervisor):
    card = new_card()
    box = Box(tmp_path, card.insert(tmp_path / "slot"), microphone, supervisor, require_mount=True)
    box.state.mkdir(mode=0o700)
    recording = SessionLock(box.state)
    assert recording.acquire(wait=False)  # a session is in progress
    with subprocess.Popen([BIN / "consentbox", "wipe", "--config", box.config, "--now"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as wipe:
        try:
            said = wipe.stdout.readline()  # type: ignore[union-attr]
            assert said == "consentbox: wipe: a session is in progress; waiting for it to end\n"
            assert wipe.poll() is None, "the wipe did not wait for the session"
        finally:
            recording.release()
        out, err = wipe.communicate(timeout=120)
    assert wipe.returncode == 0 and not err, err
    assert "waiting" not in out


def test_wipe_now_without_a_session_does_not_say_it_waits(tmp_path, new_card, microphone, supervisor):
    card = new_card()
    box = Box(tmp_path, card.insert(tmp_path / "slot"), microphone, supervisor, require_mount=True)
    assert not any("waiting" in line for line in box.wipe("--now"))


def test_without_a_card_the_wipe_says_so_and_changes_nothing(tmp_path, new_card, microphone, supervisor):
    card = new_card()
    slot = card.insert(tmp_path / "slot")
    box = Box(tmp_path, slot, microphone, supervisor, require_mount=True)
    [session] = box.record("one")
    box.backdate(session, 40)
    card.eject()  # the empty slot: a directory of the box's own file system, not the card
    state = {p.name: p.read_bytes() for p in box.state.iterdir() if p.is_file()}

    assert box.wipe() == [f"stopped: no card at {slot}; the next run continues"]
    assert {p.name: p.read_bytes() for p in box.state.iterdir() if p.is_file()} == state
    assert os.listdir(slot) == []

    card.insert(slot)
    lines = box.wipe()
    assert lines[0] == destroyed(session, 2) and len(lines) == 2


def test_a_session_on_the_other_card_waits_for_it_and_another_boxs_sessions_are_left_alone(
        tmp_path, new_card, microphone, supervisor):
    first, second = new_card(), new_card()
    slot = tmp_path / "slot"
    box = Box(tmp_path / "box", slot, microphone, supervisor, require_mount=True)
    neighbour = Box(tmp_path / "neighbour", slot, microphone, supervisor, require_mount=True)  # a second box

    first.insert(slot)
    [on_first] = box.record("one")
    first.eject()
    second.insert(slot)
    [on_second] = box.record("one")
    [strangers] = neighbour.record("one")  # the clinic's other box used this card too
    for session in (on_first, on_second):
        box.backdate(session, 40)
    neighbour.backdate(strangers, 40)
    theirs = box.files(strangers)

    lines = box.wipe()
    assert lines[:3] == [destroyed(on_second, 2), f"session {on_first} has expired but is not on this card",
                         "1 session(s) on the card are not in this box's index: not touched"]
    assert lines[3].startswith("discarded ") and len(lines) == 4
    assert box.files() == theirs and set(box.index()) == {on_first}

    second.eject()
    first.insert(slot)
    lines = box.wipe()
    assert lines[0] == destroyed(on_first, 2) and len(lines) == 2
    assert box.index() == {} and box.receipts() == {on_second: retention(2), on_first: retention(2)}


def test_a_bundle_that_no_longer_verifies_lets_no_other_policy_shorten_or_destroy(
        tmp_path, new_card, microphone, supervisor):
    org, stranger = tmp_path / "org", tmp_path / "another-org"
    for out in (org, stranger):
        subprocess.run([BIN / "consentbox-admin", "init-org", "--out", out], capture_output=True, check=True)
    box = Box(tmp_path, new_card().insert(tmp_path / "slot"), microphone, supervisor, require_mount=True,
              org_key=org / "org.pub")
    stick, policy = tmp_path / "stick", tmp_path / "policy.toml"
    stick.mkdir()
    policy.write_text("[policy]\nretention_days = 30\nmin_free_mb = 1\nmax_session = 60\n")
    subprocess.run([BIN / "consentbox-admin", "bundle", "--org-key", org / "org.key", "--recipient", box.recipient,
                    "--policy", policy, "--version", "1", "--single-recipient", "--out", stick],
                   capture_output=True, check=True)
    assert subprocess.run([BIN / "consentbox", "provision", "--config", box.config, stick]).returncode == 0
    [session] = box.record("one")
    box.backdate(session, 5)  # recorded five days ago, kept 30 by the bundle
    expiry = box.index()[session]

    # The organisation key is replaced, and the configuration would keep recordings two days.
    shutil.copyfile(stranger / "org.pub", org / "org.pub")
    box.config.write_text(box.config.read_text().replace("[policy]\n", "[policy]\nretention_days = 2\n", 1))
    lines = box.wipe()
    assert box.index() == {session: expiry} and box.files(session), f"destroyed by the configuration: {lines}"
    assert any("installed bundle not obeyed" in line and "code 6" in line for line in lines), lines
    entries = [json.loads(line) for line in (box.state / "ledger.jsonl").read_bytes().splitlines()]
    assert not [e for e in entries if e["kind"] == "expiry" and e["fields"]["reason"] == "policy"], \
        "an expiry shortened by a policy that is not in force"
