"""Card and audio faults on a real file system (issue 5, items 3 to 5), through a whole box.

Each test drives the box by hand (`SimulatedBox.by_hand`, in conftest.py): the real `Box` and `GpioPanel`
on gpiozero mock pins pressed edge by edge, a virtual clock, real libasound capturing the input through ALSA's `file`
plugin (wrapped in `FailingSource`, so the microphone can fail or overrun on demand), and a
loop-mounted ext4 image as the card, with `require_mount` as on the box. Time passes as under the
daemon: the readiness check runs after every second and every button edge. Then the test does to the
card or the microphone what a therapy room does to them, and checks what a person would see (the REC
LED pin, the STATUS blink code, refusals), what the supervisor gets from `consentbox-admin export`,
and that no 4 KiB run of the input is anywhere on the raw card image or in the temp directories.

The input is fresh random bytes, so any match is a leak from this test and exported audio is checked
byte for byte: a session is input frames [0, n) because every capture interval opens the device afresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.figures import check_quoted
from consentbox.box.box import CARD_CHECK_SECONDS
from consentbox.box.config import load_config
from consentbox.core.events import RECORD
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.crypto.stream import CHUNK_SIZE
from consentbox.recording.wav import HEADER_SIZE
from consentbox.sim.file_microphone import FileMicrophone
from consentbox.testing.signal import write_wav
from tests.support.cards import (
    card_image,
    ext4_card,
    fail_read_only,
    lazy_unmount,
    loop_devices,
    mount_image,
    remount_read_only,
    remount_writable,
    stop_answering,
    unmount,
)
from tests.support.plaintext import files_holding, temp_directories

from .conftest import Recorded, Rig, SimulatedBox, card_files, pcm

#: The card check reserves 1 MiB, so that an 8 MiB card is usable and a filler can leave it nearly full.
POLICY = Policy(min_free_mb=1)
PERIOD = POLICY.period_frames
FRAME = POLICY.frame_bytes
CHUNK_FRAMES = CHUNK_SIZE // FRAME
#: Longer than any capture interval here, short enough to scan for quickly.
INPUT_SECONDS = 20
CARD_BYTES = 8 << 20
MIB = 1 << 20
#: Free space a filler leaves before each full-card trial: enough to pass the 1 MiB check, and full after
#: 11 to 20 s of audio, so that the card fills in a different chunk each time.
LEFT_BY_FILLERS = [round(MIB * (1.05 + 0.15 * n)) for n in range(6)]
#: Room for a session recorded before, one after, and each full-card trial's session.
FULL_CARD_BYTES = 16 << 20

READY = ("green", "steady", 0)


def blink(code: int) -> tuple[str, str, int]:
    """The STATUS pattern of a blink code: red, that many blinks."""
    return ("red", "code", code)


# --- One trial: fresh input, a card image, the export, the scan -------------------------------------------


@dataclasses.dataclass(frozen=True)
class Exported:
    """One session as `consentbox-admin export` wrote it."""

    pcm: bytes
    report: dict[str, Any]

    @property
    def frames(self) -> int:
        return len(self.pcm) // FRAME


class Trial:
    """Fresh random input on a simulated microphone, and the places this trial's card and export live in."""

    def __init__(self, directory: Path, identity: X25519Identity, key_file: Path) -> None:
        self.started = time.time()
        self.directory = directory
        self.identity = identity
        self.key_file = key_file
        self.input = os.urandom(INPUT_SECONDS * POLICY.rate * FRAME)
        wav = directory / "input.wav"
        write_wav(wav, self.input, POLICY)
        self.microphone = FileMicrophone(wav, POLICY)
        wav.unlink()  # the samples now live in the microphone's memory file only
        self.exports = directory / "exported"

    @contextlib.contextmanager
    def card(self, size_bytes: int = CARD_BYTES) -> Iterator[Path]:
        """An ext4 card image (8 MiB unless told), loop-mounted; unmounted and detached afterwards whatever
        happened."""
        with contextlib.ExitStack() as stack:
            try:
                mount = stack.enter_context(ext4_card(self.directory / "card", size_bytes))
            except OSError as error:
                pytest.fail(f"cannot make or mount the test card: {error}")
            yield mount

    @property
    def image(self) -> Path:
        return card_image(self.directory / "card")

    def files(self, card: Path) -> SimulatedBox:
        """The box's files: its state directory in this trial's directory, its card at `card`."""
        return SimulatedBox(self.directory, self.identity.recipient.to_string(), key_file=self.key_file, card=card)

    @contextlib.contextmanager
    def box(self, card: Path) -> Iterator[Rig]:
        """The box driven by hand on `card`, which must be mounted (`require_mount`, as on the box)."""
        with self.files(card).by_hand(self.microphone.device, policy=POLICY, require_mount=True) as rig:
            yield rig

    def audio(self, frames: int, start: int = 0) -> bytes:
        """Input frames [start, start + frames)."""
        return self.input[start * FRAME : (start + frames) * FRAME]

    def export(self, card: Path) -> tuple[int, dict[str, Exported]]:
        """Run `consentbox-admin export` on the card: its exit status, and each session's audio and report."""
        self.exports.mkdir(exist_ok=True)
        out = self.exports / str(len(list(self.exports.iterdir())))
        exported = self.files(card).export(out)
        return exported.status, {session: Exported(pcm(exported.wavs[session]), report)
                                 for session, report in exported.reports.items()}

    def assert_intact(self, exported: Exported, recorded: Recorded) -> None:
        """The session exported whole, verified, and holds exactly the input it was given."""
        assert not exported.report["export"]["truncated"], exported.report["export"]
        assert {s["digest"] for s in exported.report["export"]["segments"]} == {"verified"}
        assert exported.frames == recorded.frames
        assert exported.pcm == self.audio(recorded.frames)

    def assert_no_plaintext(self) -> None:
        """No 4 KiB run of the input on the raw card image, or in any temp file written since the trial began."""
        assert not loop_devices(self.image), "the card image is still attached"
        assert files_holding(self.input, [self.image]) == [], "input audio on the raw card image"
        leaks = files_holding(self.input, temp_directories(), changed_since=self.started,
                              skip=[self.exports, self.image])
        assert leaks == [], f"input audio in {leaks}"

    def close(self) -> None:
        self.microphone.close()


@pytest.fixture
def trial(tmp_path: Path, identity: X25519Identity, key_file: Path) -> Iterator[Trial]:
    if os.geteuid() != 0:
        pytest.fail("these tests loop-mount ext4 card images, which needs root: run them as root, as CI does")
    for tool in ("mkfs.ext4", "mount", "umount", "losetup"):
        if shutil.which(tool) is None:
            pytest.fail(f"the `{tool}` command is not installed: install e2fsprogs and util-linux (make test does)")
    made = Trial(tmp_path, identity, key_file)
    try:
        yield made
    finally:
        made.close()


def free_space(card: Path) -> int:
    """The bytes the box's own user may still write to the card."""
    status = os.statvfs(card)
    return status.f_bavail * status.f_frsize


def fill(card: Path, leave: int) -> Path:
    """A file of zeros that leaves about `leave` bytes free on the card."""
    filler = card / "filler"
    size = free_space(card) - leave
    with open(filler, "wb") as file:
        file.write(bytes(size))
        os.fsync(file.fileno())
    return filler


def test_the_raw_image_scan_finds_input_written_to_the_card_and_deleted(trial: Trial) -> None:
    with trial.card() as card:
        leaked = card / "leak.raw"
        leaked.write_bytes(bytes(123) + trial.audio(2 * CHUNK_FRAMES, start=4321))  # at an odd offset
        os.sync()
        leaked.unlink()
        assert files_holding(trial.input, [card]) == []
    assert files_holding(trial.input, [trial.image]) == [trial.image]  # the blocks were freed, not wiped


# --- Card full --------------------------------------------------------------------------------------------


def test_a_full_card_loses_exactly_the_chunk_being_filled_and_refuses_until_space_is_freed(trial: Trial) -> None:
    full, left = [], []
    with trial.card(FULL_CARD_BYTES) as card:
        with trial.box(card) as box:
            earlier = box.record(3.0)
        before = card_files(card)
        for leave in LEFT_BY_FILLERS:
            with trial.box(card) as box:  # a box of its own for each trial: one fault each
                filler = fill(card, leave)
                box.wait(1.0)
                assert box.status() == READY
                left.append(free_space(card))
                box.start_recording()
                opened = box.entries("capture", open=True)[-1]["t"]
                box.wait(60.0)  # much longer than the space left can hold
                fault = box.assert_stopped_at_fault("card full", after=opened, within=60.0)
                full.append(box.last_recorded())
                # The period whose write failed is the last one read: capture stopped at that write.
                assert fault["t"] == pytest.approx(opened + full[-1].frames / POLICY.rate)
                assert box.status() == blink(3)
                box.wait(3.0)
                assert box.status() == blink(3), "the fault stands while the card is full"
                box.assert_refused(3, "card full")
                filler.unlink()
                box.wait(1.5)
                assert box.status() == READY
        with trial.box(card) as box:
            later = box.record(2.0)
        status, exported = trial.export(card)
        assert {name: card_files(card)[name] for name in before} == before, "earlier files changed"

    assert status == 3  # each full card's session is cut short at its last whole chunk
    assert set(exported) == {earlier.id, later.id, *(session.id for session in full)}
    trial.assert_intact(exported[earlier.id], earlier)
    trial.assert_intact(exported[later.id], later)
    lost = [lost_to_a_full_card(trial, exported[session.id], session) for session in full]
    trial.assert_no_plaintext()
    least, most = (f"{seconds:.2f}" for seconds in (min(lost), max(lost)))
    figures = {
        "card-full.trials": str(len(full)),
        "card-full.card-mib": str(FULL_CARD_BYTES >> 20),
        "card-full.lost-seconds": least if least == most else f"{least}–{most}",
        "card-full.left.least": f"{min(left) / MIB:.2f}",
        "card-full.left.most": f"{max(left) / MIB:.2f}",
    }
    check_quoted(figures)


def lost_to_a_full_card(trial: Trial, cut: Exported, recorded: Recorded) -> float:
    """Check that a session stopped by a full card lost exactly the chunk being filled; the seconds it lost.

    The period whose write failed filled that chunk past its end, so the writer sealed it; its write failed
    and was cut off. Every chunk before it is on the card whole: the export ends on a chunk's end (the WAV
    header counts in the first chunk), and the chunk after that end held every period written before the
    failing one. Periods go to the files one period late (`box/hold_back.py`), so the period read after the
    failing one was never written. The audio lost is that chunk, the failing period's bytes past it and
    that last period: under two periods more.
    """
    assert cut.report["end_reason"] == "card full"
    assert cut.pcm == trial.audio(cut.frames)
    sealed = HEADER_SIZE + cut.frames * FRAME  # the plaintext in the segment's whole chunks
    read = HEADER_SIZE + recorded.frames * FRAME  # and all that the microphone gave, the failing period too
    assert sealed % CHUNK_SIZE == 0, f"the export ends {sealed % CHUNK_SIZE} bytes into a chunk"
    assert read - 2 * PERIOD * FRAME <= sealed + CHUNK_SIZE < read, \
        f"lost {read - sealed} bytes, not the chunk that the failing period filled"
    return (recorded.frames - cut.frames) / POLICY.rate


# --- Card lost or failing while recording ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CardLoss:
    """One way a card goes while the box records on it, and how soon and as what the box finds out."""

    name: str
    happen: Callable[[Path], None]
    problem: str
    code: int
    noticed_within: float

    @property
    def source(self) -> str:
        """The source of this loss's figures in the docs (bench/figures.py)."""
        return "card-" + self.name.replace(" ", "-")


LOSSES = [
    # ext4's errors=remount-ro (a userspace `remount,ro` is refused while a segment is open for writing):
    # writes fail with EROFS, found at the latest by the next chunk's write.
    CardLoss("turned read-only", fail_read_only, "card lost", 4, CHUNK_FRAMES / POLICY.rate + 0.05),
    # Writes still reach a lazily unmounted card through open files: the card check finds the empty mount point.
    CardLoss("unmounted", lazy_unmount, "card lost", 4, CARD_CHECK_SECONDS + POLICY.period_seconds),
    # Every operation fails with EIO, the directory still there: found by the next chunk's write.
    CardLoss("stops answering", stop_answering, "card write error", 5, CHUNK_FRAMES / POLICY.rate + 0.05),
]


def reinsert(trial: Trial, box: Rig, card: Path) -> None:
    """The card taken out (if still mounted), left out over a readiness check, and put back in."""
    if os.path.ismount(card):
        unmount(card)
    box.wait(1.5)
    assert loop_devices(trial.image) == [], "the card is still in use: the box kept a file of it open"
    mount_image(trial.image, card)


@pytest.mark.parametrize("loss", LOSSES, ids=[loss.name for loss in LOSSES])
def test_a_card_lost_while_recording_stops_capture_and_keeps_what_was_synced(trial: Trial, loss: CardLoss) -> None:
    with trial.card() as card, trial.box(card) as box:
        earlier = box.record(3.0)
        before = card_files(card)
        box.start_recording()
        box.wait(4.0)
        synced_by = box.audio.frames_read  # at most one chunk of this is still unsealed
        lost_at = box.now()
        loss.happen(card)
        box.wait(3.0)
        fault = box.assert_stopped_at_fault(loss.problem, after=lost_at, within=loss.noticed_within)
        lost = box.last_recorded()
        assert box.status(at=fault["t"]) == blink(loss.code)
        box.assert_refused()

        reinsert(trial, box, card)
        box.wait(1.5)
        assert box.status() == READY
        later = box.record(2.0)
        _, exported = trial.export(card)
        assert {name: card_files(card)[name] for name in before} == before, "earlier files changed"

    trial.assert_intact(exported[earlier.id], earlier)
    trial.assert_intact(exported[later.id], later)
    cut = exported[lost.id]
    assert cut.pcm == trial.audio(cut.frames)
    assert synced_by - CHUNK_FRAMES <= cut.frames <= lost.frames
    trial.assert_no_plaintext()
    figures = {f"{loss.source}.noticed-seconds": f"{fault['t'] - lost_at:.2f}",
               f"{loss.source}.noticed-within": f"{loss.noticed_within:.2f}",
               f"{loss.source}.lost-seconds": f"{(lost.frames - cut.frames) / POLICY.rate:.2f}"}
    check_quoted(figures)


@pytest.mark.parametrize("loss", LOSSES, ids=[loss.name for loss in LOSSES])
def test_the_fault_stays_on_the_status_led_until_the_card_is_back(trial: Trial, loss: CardLoss) -> None:
    with trial.card() as card, trial.box(card) as box:
        box.start_recording()
        box.wait(2.0)
        loss.happen(card)
        box.wait(2.0)
        assert box.entries("session")[-1]["end"] == loss.problem
        box.wait(5.0)  # five readiness checks later, nobody has touched the card
        assert box.status() == blink(loss.code), f"code {loss.code} ({loss.problem}) must stand until the card is back"
        box.assert_refused(loss.code, loss.problem)
        reinsert(trial, box, card)
        box.wait(1.5)
        assert box.status() == READY
    trial.assert_no_plaintext()


def test_a_card_unmounted_while_recording_is_finalised_on_the_card_not_where_it_was(trial: Trial) -> None:
    # After `umount -l` the card's path leads to the empty mount point, on the box's own disk.
    with trial.card() as card, trial.box(card) as box:
        box.start_recording()
        box.wait(2.0)
        lazy_unmount(card)
        box.wait(3.0)
        lost = box.last_recorded()
        assert box.entries("session")[-1]["end"] == "card lost"
        assert sorted(path.name for path in card.iterdir()) == [], "session files landed where the card was"
        reinsert(trial, box, card)
        box.wait(1.5)  # the box sees the card back and brings its ledger extracts up to date
        _, exported = trial.export(card)
    # Its segment reached the card through the open file; its final manifest must have gone the same way.
    assert exported[lost.id].report["end_reason"] == "card lost"
    trial.assert_intact(exported[lost.id], lost)
    trial.assert_no_plaintext()


def test_a_card_locked_while_paused_refuses_the_resume_and_keeps_what_was_recorded(trial: Trial) -> None:
    # While paused no file is open, so the card can be remounted read-only (its lock switch, say).
    with trial.card() as card, trial.box(card) as box:
        box.start_recording()
        box.wait(3.0)
        box.tap(RECORD)  # pause: the interval's segment is sealed
        paused = box.last_recorded()
        remount_read_only(card)
        box.wait(1.5)
        box.tap(RECORD)  # resume
        assert box.entries("refused")[-1]["reason"] == "card read-only"
        assert box.machine.state.value == "PAUSED" and not box.rec_led()
        box.hold(RECORD, 2.5)  # end: the final manifest cannot be written, the sealed audio stays
        assert box.machine.state.value == "IDLE"
        assert box.status() == blink(2)
        remount_writable(card)
        box.wait(1.5)
        assert box.status() == READY
        _, exported = trial.export(card)
    session = exported[paused.id]
    assert {s["digest"] for s in session.report["export"]["segments"]} == {"verified"}
    assert session.pcm == trial.audio(paused.frames)
    trial.assert_no_plaintext()


# --- Not ready at session start ---------------------------------------------------------------------------


def test_no_card_at_start_is_refused_with_code_1_until_one_is_inserted(trial: Trial) -> None:
    with trial.card() as card:
        unmount(card)
        with trial.box(card) as box:
            assert box.status() == blink(1)
            box.assert_refused(1, "no card")
            assert list(card.iterdir()) == [], "nothing may be written to an empty mount point"
            mount_image(trial.image, card)
            box.wait(1.5)
            assert box.status() == READY
            recorded = box.record(2.0)
            _, exported = trial.export(card)
    trial.assert_intact(exported[recorded.id], recorded)
    trial.assert_no_plaintext()


def test_a_read_only_card_at_start_is_refused_with_code_2_until_unlocked(trial: Trial) -> None:
    with trial.card() as card, trial.box(card) as box:
        earlier = box.record(2.0)
        before = card_files(card)
        remount_read_only(card)
        box.wait(1.5)
        assert box.status() == blink(2)
        box.assert_refused(2, "card read-only")
        assert card_files(card) == before
        remount_writable(card)
        box.wait(1.5)
        assert box.status() == READY
        later = box.record(2.0)
        _, exported = trial.export(card)
    trial.assert_intact(exported[earlier.id], earlier)
    trial.assert_intact(exported[later.id], later)
    trial.assert_no_plaintext()


def test_a_card_of_another_format_is_refused_with_code_10_and_never_written_to(trial: Trial) -> None:
    # These cards are ext4 (as one formatted on Linux, or NTFS, would be): as deployed the box takes exFAT and
    # FAT32 only. The fstab line does not even mount such a card; one mounted by other means is refused whole.
    deployed = load_config().card_file_systems
    with trial.card() as card:
        files = trial.files(card)
        with files.by_hand(trial.microphone.device, policy=POLICY, require_mount=True, file_systems=deployed) as box:
            box.wait(1.5)
            assert box.status() == blink(10)
            box.assert_refused(10, "card wrong format")
            assert box.rec_led_edges() == [] and box.entries("setup") == []
        assert os.listdir(card) == ["lost+found"], "a refused card gets nothing: no ledger copy, no card id"
        # The same card, once the box is told to take ext4: the format was the only thing wrong with it.
        with files.by_hand(trial.microphone.device, policy=POLICY, require_mount=True, file_systems={"ext4"}) as box:
            box.wait(1.5)
            assert box.status() == READY


def test_a_card_the_kernel_turned_read_only_is_refused_before_the_rec_led_lights(trial: Trial) -> None:
    # ext4's errors=remount-ro, met while idle: /proc/mounts says "rw,...,emergency_ro" and statvfs says
    # read-write, yet every write fails with EROFS.
    with trial.card() as card, trial.box(card) as box:
        earlier = box.record(2.0)
        fail_read_only(card)
        box.wait(1.5)
        assert box.status() == blink(2), "a card that takes no writes is read-only"
        box.assert_refused(2, "card read-only")
        assert box.rec_led_edges()[-1][1] is False and len(box.rec_led_edges()) == 2
        reinsert(trial, box, card)
        _, exported = trial.export(card)
    trial.assert_intact(exported[earlier.id], earlier)
    trial.assert_no_plaintext()


# --- Audio faults -----------------------------------------------------------------------------------------


def test_a_microphone_lost_while_recording_stops_capture_and_finalises_the_session(trial: Trial) -> None:
    with trial.card() as card, trial.box(card) as box:
        earlier = box.record(2.0)
        box.start_recording()
        box.wait(3.0)
        lost_at = box.now()
        box.audio.lose()
        box.wait(2.0)
        box.assert_stopped_at_fault("audio lost", after=lost_at, within=POLICY.period_seconds)
        lost = box.last_recorded()
        assert box.status() == blink(8)
        box.assert_refused(8, "audio lost")
        _, exported = trial.export(card)
    trial.assert_intact(exported[earlier.id], earlier)
    # Every period read before the device failed reached the card, and the session was sealed.
    trial.assert_intact(exported[lost.id], lost)
    assert exported[lost.id].report["end_reason"] == "audio lost"
    trial.assert_no_plaintext()


def test_after_audio_lost_the_box_records_again_once_the_microphone_is_back(trial: Trial) -> None:
    with trial.card() as card, trial.box(card) as box:
        box.start_recording()
        box.wait(1.0)
        box.audio.lose()
        box.wait(1.0)
        assert box.entries("session")[-1]["end"] == "audio lost"
        box.audio.restore()  # plugged back in
        box.wait(12.0)  # longer than any notice (notice_timeout is 10 s)
        assert box.status() == READY, "the box must not refuse every session after one microphone fault"
        later = box.record(2.0)
        _, exported = trial.export(card)
    trial.assert_intact(exported[later.id], later)
    trial.assert_no_plaintext()


def test_overruns_are_counted_in_the_manifest_and_recording_goes_on(trial: Trial) -> None:
    with trial.card() as card, trial.box(card) as box:
        box.start_recording()
        box.wait(1.0)
        first_gap = box.audio.frames_read
        box.audio.overrun(3)  # one xrun that lost three periods
        box.wait(1.0)
        assert box.machine.capturing and box.rec_led()
        box.tap(RECORD)  # pause: the interval's overruns are noted when capture closes
        first = box.audio.frames_read
        box.wait(2.0)
        box.tap(RECORD)  # resume: the device opens afresh, from the input's start
        box.wait(1.0)
        second_gap = box.audio.frames_read
        box.audio.overrun(1)
        box.wait(1.0)
        recorded = box.end_recording()
        assert box.entries("fault") == []
        _, exported = trial.export(card)
    session = exported[recorded.id]
    assert session.report["overruns"] == 2
    assert not session.report["export"]["truncated"]
    first_interval = trial.audio(first_gap) + trial.audio(first - first_gap, start=first_gap + 3 * PERIOD)
    second_interval = trial.audio(second_gap) + trial.audio(recorded.frames - second_gap, start=second_gap + PERIOD)
    assert session.pcm == first_interval + second_interval
    trial.assert_no_plaintext()
