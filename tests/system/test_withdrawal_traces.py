"""What a session leaves behind once it ends or is withdrawn (issue 22, items 3 and 4).

In memory: the box assembled by hand (`SimulatedBox.by_hand`: the real `Box`, real libasound through the
simulated microphone, the session's real files on a small tmpfs card) records; while it does, every
buffer reachable from the box that a program can zero is taken (`tests.support.buffers`); once capture
has stopped (a pause, the end, a withdrawal, one whose audio was held back since its press, a card that
filled up), each of them must be all zeros.

On the card: deploy/README.md mounts the card with `discard`, so each block a file gives back is
discarded at once. A loop device over a sparse image file takes a discard by punching a hole in the
image, so the image shows it: a session recorded on an ext4 card image and withdrawn while recording,
or just after it ended (issue 17), must leave no 4 KiB block of its ciphertext on the image, and the
image must hold fewer allocated bytes. The same withdrawal on a card mounted without `discard` leaves
every block (the contrast: the search would see them). The deployed cards are exFAT or FAT32, which this
kernel cannot mount; the VM of issue 18 takes them. Run with -s to print what was measured;
docs/retention.md quotes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentbox.core.events import RECORD, ConsentButton
from consentbox.core.policy import Policy
from consentbox.sim.file_microphone import FileMicrophone
from consentbox.testing.signal import write_wav
from tests.support.buffers import held_buffers, holding_anything
from tests.support.cards import card_image, ext4_card, small_card

from .conftest import Rig, SimulatedBox, card_files

POLICY = Policy(min_free_mb=1)
CARD_BYTES = 16 << 20
BLOCK = 4096
RECORD_SECONDS = 3.0


@pytest.fixture
def microphone(tmp_path: Path) -> Iterator[FileMicrophone]:
    """Fresh random input, so no byte of a card or a buffer can match it by chance."""
    wav = tmp_path / "input.wav"
    write_wav(wav, os.urandom(10 * POLICY.rate * POLICY.frame_bytes), POLICY)
    with FileMicrophone(wav, POLICY) as simulated:
        yield simulated


def withdraw(rig: Rig) -> None:
    """Seat 2 holds its CONSENT button: the session is withdrawn and its files destroyed (the default)."""
    rig.hold(ConsentButton(2), 2.5)
    [ended] = rig.entries("session")
    assert (ended["end"], ended["kept"]) == ("withdrawn", False), ended


def withdraw_after_the_end(rig: Rig) -> None:
    """Seat 2 holds its CONSENT button just after the session ended: the session is destroyed all the same."""
    rig.hold(ConsentButton(2), 2.5)
    [withdrawn] = rig.entries("withdrawal", after=True)
    assert withdrawn["kept"] is False, withdrawn


def fill(card: Path) -> None:
    """Take every free byte of the card: the next chunk the box writes fails (ENOSPC)."""
    status = os.statvfs(card)
    (card / "filler").write_bytes(bytes(status.f_bavail * status.f_frsize))


@pytest.mark.parametrize("ending", ["paused", "ended", "withdrawn", "withdrawn, audio held back", "card full"])
def test_every_buffer_that_held_audio_is_zeroed_once_capture_stops(tmp_path, microphone, recipient, ending):
    with small_card(tmp_path / "card", CARD_BYTES) as card:
        box = SimulatedBox(tmp_path / "box", recipient, card=card)
        with box.by_hand(microphone.device, policy=POLICY, require_mount=True) as rig:
            rig.start_recording()
            rig.wait(RECORD_SECONDS)
            buffers = held_buffers(rig.box)
            assert len(holding_anything(buffers)) >= 2, "the capture and the encryption buffers were not found"
            if ending == "paused":
                rig.tap(RECORD)
            elif ending == "ended":
                rig.end_recording()
            elif ending == "withdrawn":
                withdraw(rig)
            elif ending == "withdrawn, audio held back":  # from the press on, audio waits in memory
                rig.press(ConsentButton(2))
                rig.wait(1.5)
                buffers = held_buffers(rig.box)
                assert any(len(buffer) >= POLICY.rate * POLICY.frame_bytes for buffer in holding_anything(buffers))
                rig.wait(1.0)
                rig.release(ConsentButton(2))
                assert rig.entries("session")[-1]["end"] == "withdrawn"
            else:  # a write that fails leaves its segment unfinished, the writer's buffer full
                fill(card)
                rig.wait(1.0)
                assert rig.entries("session")[-1]["end"] == "card full"
            assert not rig.machine.capturing
            assert holding_anything(buffers) == []


def ciphertext_blocks(files: dict[str, bytes]) -> list[bytes]:
    """Every whole 4 KiB block of the files, at the file offsets a block of the card's file system starts at."""
    return [data[at:at + BLOCK] for data in files.values() for at in range(0, len(data) - BLOCK + 1, BLOCK)]


@pytest.mark.parametrize(("options", "after_the_end"), [(("discard",), False), ((), False), (("discard",), True)],
                         ids=["discard", "no-discard", "discard, withdrawn after the end"])
def test_a_withdrawal_on_a_card_mounted_with_discard_leaves_no_block_of_its_ciphertext(
        tmp_path, microphone, recipient, options, after_the_end):
    with ext4_card(tmp_path / "card", CARD_BYTES, options=options) as card:
        box = SimulatedBox(tmp_path / "box", recipient, card=card)
        with box.by_hand(microphone.device, policy=POLICY, require_mount=True) as rig:
            rig.start_recording()
            rig.wait(RECORD_SECONDS)
            if after_the_end:
                rig.end_recording()
            recorded = card_files(card)  # every sealed chunk is synced as it is written
            os.sync()
            holding = card_image(tmp_path / "card").stat().st_blocks * 512
            if after_the_end:
                withdraw_after_the_end(rig)
            else:
                withdraw(rig)
            assert card_files(card) == {}
            os.sync()  # ext4 discards a transaction's freed blocks when it commits
            left = card_image(tmp_path / "card").stat().st_blocks * 512
    raw = card_image(tmp_path / "card").read_bytes()  # unmounted: every block is on the image
    blocks = ciphertext_blocks(recorded)
    found = sum(block in raw for block in blocks)
    print(f"\n{'+'.join(options) or 'no discard'}: {sum(map(len, recorded.values()))} bytes of ciphertext "
          f"withdrawn; {found} of its {len(blocks)} blocks on the image after; the image held {holding} bytes, "
          f"{left} after")
    assert len(blocks) > 60, "too little was recorded to tell"
    if options:
        assert found == 0, "a withdrawn session's ciphertext is still in the image's blocks"
        assert left < holding, "the loop device punched no hole for the withdrawn files"
    else:  # freed, not discarded: the blocks keep the ciphertext until written over (a few are, at once)
        assert found > len(blocks) // 2 and left >= holding, (found, left, holding)
