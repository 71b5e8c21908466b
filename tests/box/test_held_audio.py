"""Audio captured while a CONSENT button is down is held back in memory, never written, until the press is over
(issue 17, point 2): a withdrawal keeps nothing from the moment its press began, and a press that withdraws
nothing loses nothing.

The box is assembled as `consentbox simulate` assembles it, with the position signal as its microphone, and
driven by button events on the real session machine; its segments are decrypted with the stock `age` and the
signal read back, frame by frame (`consentbox.testing.signal`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from consentbox.admin.export import read_manifest
from consentbox.core.events import RECORD, ConsentButton
from consentbox.core.policy import OnWithdrawal, Policy
from consentbox.core.table import State
from consentbox.crypto import X25519Identity
from consentbox.recording.manifest import Manifest, manifest_name, segment_name
from consentbox.recording.wav import HEADER_SIZE
from consentbox.testing.signal import spans
from tests.support.simulated import BoxRig

KEEP = Policy(on_withdrawal=OnWithdrawal.KEEP)


def recording(rig: BoxRig, session: str, identity: X25519Identity, age_cli: str,
              key_file: Path) -> tuple[Manifest, bytes]:
    """The session's manifest, and its audio as the stock `age` decrypts its one segment (`key_file` holds
    `identity`)."""
    manifest = read_manifest(rig.card / manifest_name(session), [identity])
    assert len(manifest.segments) == 1
    done = subprocess.run([age_cli, "-d", "-i", key_file, rig.card / segment_name(session, 0)], capture_output=True,
                          check=True)
    return manifest, done.stdout[HEADER_SIZE:]


def test_a_withdrawal_under_keep_keeps_nothing_captured_from_the_moment_its_press_began(tmp_path, identity,
                                                                                       age_cli, key_file):
    rig = BoxRig(tmp_path, identity.recipient, KEEP)
    session = rig.start_recording()
    set_up = rig.of("setup")[-1]["t"]
    rig.wait(3.0)
    pressed_at, captured_before = rig.clock.now(), rig.audio.frames_read
    rig.press(ConsentButton(2))
    rig.wait(1.9)
    assert rig.audio.frames_read > captured_before + 1.8 * KEEP.rate, "capture goes on while the button is down"
    rig.wait(0.6)
    rig.release(ConsentButton(2))
    assert rig.box.machine.state is State.WITHDRAWN and rig.of("session")[-1]["kept"]
    assert [e["held"] for e in rig.of("held")] == [True], "held back at the press, and never written"

    manifest, pcm = recording(rig, session, identity, age_cli, key_file)
    # The box hears the press between two reads: the period read last may hold audio from after the press,
    # so it is dropped too. The kept audio ends where the press began, or up to one period before.
    kept = captured_before - KEEP.period_frames
    assert spans(pcm, KEEP) == [range(0, kept)], "the kept audio ends where the press began"
    [interval] = manifest.intervals
    assert interval.frames == kept and interval.end == pytest.approx(pressed_at - set_up - KEEP.period_seconds)
    assert manifest.withdrawn


@pytest.mark.parametrize("presses", ["tap", "press 1.5 s", "overlapping presses"])
def test_a_press_that_withdraws_nothing_loses_nothing(tmp_path, identity, age_cli, key_file, presses):
    rig = BoxRig(tmp_path, identity.recipient, KEEP)
    session = rig.start_recording()
    rig.wait(2.0)
    if presses == "tap":
        rig.hold(ConsentButton(1))
    elif presses == "press 1.5 s":
        rig.hold(ConsentButton(1), 1.5)
    else:  # one seat holds as the other lets go: 2.8 s held back in all, no press long enough to withdraw
        rig.press(ConsentButton(1))
        rig.wait(1.0)
        rig.press(ConsentButton(2))
        rig.wait(0.5)
        rig.release(ConsentButton(1))
        rig.wait(1.3)
        rig.release(ConsentButton(2))
    assert rig.box.machine.state is State.RECORDING
    rig.wait(2.0)
    rig.hold(RECORD)  # a pause closes capture; then the end
    captured = rig.audio.frames_read
    rig.hold(RECORD, 2.5)
    assert rig.of("session")[-1]["end"] == "ended"
    assert [e["held"] for e in rig.of("held")] == [True, False], "held back, then written"

    manifest, pcm = recording(rig, session, identity, age_cli, key_file)
    assert spans(pcm, KEEP) == [range(0, captured)], "every frame captured, in order, no gap"
    [interval] = manifest.intervals
    assert interval.frames == captured > 4 * KEEP.rate and not manifest.withdrawn
