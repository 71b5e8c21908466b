"""A box's own disk keeps nothing readable of a finished session's manifest (issue 22, item 2).

The box's state directory is put on an ext4 partition of its own (a loop-mounted image made with mkfs.ext4's
defaults, mounted data=ordered as on a box), and sessions run through the real box:
- S records, pauses, resumes, and the box is SIGKILLed while it records (where `consentbox simulate` would
  shut it down); the next start recovers S, ends it `interrupted` and forgets it;
- P, in that next run, records, pauses, resumes, pauses, and is ended while paused;
- W records and is withdrawn, so its files are destroyed.
Each session's journal key is read from the state directory while the session is open. Then the partition
is unmounted and its raw image (free blocks and the file system's own journal included) is searched for
every journal key, for the names of the manifest's fields, and for the audio digests the card's manifests
hold. Before issue 22 the journal kept each manifest version in plaintext, renamed over the last, and the
raw image held every version: the field names and the digests were all found.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from consentbox.admin.cli import load_identities
from consentbox.admin.export import read_manifest
from consentbox.box.box import Box
from consentbox.core.policy import Policy
from consentbox.recording.journal import Journal
from consentbox.recording.manifest import Manifest, manifest_name
from consentbox.state.files import JOURNAL
from consentbox.testing.signal import position_pcm, write_wav
from tests.support.cards import card_image, ext4_card

from .conftest import SimulatedBox

POLICY = Policy()
STATE_BYTES = 16 << 20
BOUND = 120.0  # seconds the killed run may take before the test calls it a hang (it takes a few)

#: S: set up, recording from 4.5 s, paused at 8, resumed at 10; the box is killed at 14, still recording.
KILLED = "0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.5\n8 tap record\n10 tap record\n14 end\n"
#: The next start: S recovered first; then P (paused twice, ended while paused) and W (withdrawn, destroyed).
NEXT = (
    "0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.5\n8 tap record\n10 tap record\n"
    "13 tap record\n15 hold record 2.5\n"
    "30 tap record\n31 tap consent 1\n32 tap consent 2\n33 hold record 1.5\n38 hold consent 2 2.5\n"
    "50 end\n"
)


def field_names(values: Any) -> set[str]:
    """Every key in `values` (JSON values), at any depth."""
    if isinstance(values, dict):
        return set(values) | {name for value in values.values() for name in field_names(value)}
    if isinstance(values, list):
        return {name for value in values for name in field_names(value)}
    return set()


def killed_while_recording(box: SimulatedBox, script: str) -> None:
    """Play `script` through the box in a child process that SIGKILLs itself where the box would shut down."""

    def run() -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Box, "shut_down", lambda self: os.kill(os.getpid(), signal.SIGKILL))
            box.simulate(script, in_process=True)

    child = multiprocessing.get_context("fork").Process(target=run)
    child.start()
    child.join(BOUND)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"the box to be killed did not reach its end within {BOUND} s")
    assert child.exitcode == -signal.SIGKILL, f"the box was not killed (exit code {child.exitcode}): see its stderr"


@contextmanager
def keys_while_open(keys: dict[str, set[bytes]]) -> Iterator[None]:
    """While in this context, each session's journal key as its key file holds it after each save of an entry."""
    real_save = Journal.save

    def save(journal: Journal, manifest: Manifest, *, destroy: bool = False) -> bool:
        saved = real_save(journal, manifest, destroy=destroy)
        keys.setdefault(manifest.session, set()).add((journal.directory / f"{manifest.session}.key").read_bytes())
        return saved

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Journal, "save", save)
        yield


def test_a_finished_session_leaves_nothing_readable_on_the_box_s_disk(tmp_path: Path, supervisor):
    key_file, recipient = supervisor
    microphone = tmp_path / "microphone.wav"
    write_wav(microphone, position_pcm(0, 30 * POLICY.rate, POLICY), POLICY)
    keys: dict[str, set[bytes]] = {}
    with ext4_card(tmp_path / "partition", STATE_BYTES) as state:
        box = SimulatedBox(tmp_path / "box", recipient, key_file=key_file, microphone=microphone, state=state)
        journal = state / JOURNAL

        killed_while_recording(box, KILLED)
        [killed] = {path.name[:16] for path in journal.iterdir()}
        assert sorted(path.name for path in journal.iterdir()) == [f"{killed}.json", f"{killed}.key"]
        keys[killed] = {(journal / f"{killed}.key").read_bytes()}

        with keys_while_open(keys):
            timeline = box.simulate(NEXT, in_process=True)
        assert [(e["id"], e["end"]) for e in timeline.of("recovered")] == [(killed, "interrupted")]
        ended = timeline.of("session")
        assert [(e["end"], e["kept"]) for e in ended] == [("ended", True), ("withdrawn", False)], ended
        assert list(journal.iterdir()) == []

        identities = load_identities([key_file])
        kept = [read_manifest(box.card / manifest_name(session), identities) for session in (killed, ended[0]["id"])]
        live = b"".join(path.read_bytes() for path in state.rglob("*") if path.is_file())
    image = card_image(tmp_path / "partition").read_bytes()

    assert sorted(keys) == sorted([killed, *(e["id"] for e in ended)])
    assert all(len(versions) == 1 and len(next(iter(versions))) == 32 for versions in keys.values()), keys
    # The names of the manifest's fields, as an entry's JSON spells them, but those that the box's other state
    # files (its ledger, its expiry index) hold by design: none of these is anywhere else on the box.
    names = sorted(field_names({"destroy": True, "manifest": kept[1].to_mapping()}))
    markers = [f'"{name}":'.encode() for name in names if f'"{name}":'.encode() not in live]
    assert {b'"consents":', b'"intervals":', b'"plaintext_bytes":', b'"end_reason":', b'"withdrawn":',
            b'"overruns":', b'"destroy":'} <= set(markers), markers
    digests = sorted({segment.sha256.encode() for manifest in kept for segment in manifest.segments if segment.sha256})
    assert len(digests) >= 2  # P's two segments (S's first one heard what P's first one did)
    assert b'"kind":"setup"' in image  # the raw image does show the files' contents: the ledger, say

    leaks = [text for text in markers + digests if text in image]
    leaks += [f"the journal key of {session}".encode() for session, versions in keys.items()
              for key in versions if key in image]
    assert leaks == [], f"readable on the box's disk after its sessions: {leaks}"
