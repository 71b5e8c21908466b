"""A lost card tells nothing of the clinic's sessions (issue 15, item 3): many sessions recorded, withdrawn,
abandoned and refused on a loop-mounted ext4 card image, then the raw image (free blocks, the journal and
file system metadata included) searched for anything of them in plaintext.

Before issue 15 the card held the box's whole ledger in plaintext (`ledger.jsonl`): every session's id,
its times, headcount, consents and withdrawals, and file times that dated each session. Now it holds each
recorded session's files and its ledger extract, all age ciphertext, every one dated FIXED_TIME.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.recording.card_id import CARD_ID_NAME
from consentbox.recording.manifest import extract_name
from consentbox.storage.file_times import FIXED_TIME
from consentbox.testing.signal import position_pcm, write_wav
from tests.support.cards import card_image, ext4_card, loop_devices, remount_noatime
from tests.support.plaintext import files_holding

from .conftest import SimulatedBox

POLICY = Policy()
CARD_BYTES = 32 << 20
#: The words of the ledger that would tell what happened in a session. "consent" is looked for where it is
#: not the start of "consentbox": the card's id file, consentbox-card.id, names the product, not a consent.
WORDS = [re.compile(word) for word in (rb"headcount", rb"consent(?!box)", rb"withdrawal", rb"seat")]


def session(t: int, ending: str) -> str:
    """A script for two seats from `t`: set-up, both consent, recording opens at t+6; then `ending`."""
    return f"{t} tap record\n{t + 2} tap consent 1\n{t + 3} tap consent 2\n{t + 5} hold record 1.5\n{ending}"


FIRST_RUN = (
    session(0, "9 hold record 2.5\n")  # kept
    + session(30, "38 tap record\n40 tap record\n42 hold record 2.5\n")  # paused and resumed
    + session(60, "68 hold consent 2 2.5\n")  # withdrawn while recording: destroyed
    + "90 tap record\n91 tap consent 1\n"  # abandoned: the consent timeout ends it at 271
    + "300 tap record\n301 tap consent 1\n302 hold record 3\n308 hold consent 1 2.5\n"  # refused, then withdrawn
    + session(320, "329 hold record 2.5\n")  # kept
    + "340 end\n"
)
SECOND_RUN = (  # the box started again, told to keep a withdrawn recording
    session(0, "8 hold consent 1 2.5\n")  # withdrawn while recording: kept, marked
    + session(30, "39 hold record 2.5\n")  # kept
    + "50 end\n"
)


def times_of(box: SimulatedBox, sessions: list[str]) -> list[bytes]:
    """What a lost card must not tell of `sessions`: each of their entries' date, date and minute, and time
    of day, as the ledger writes them."""
    found = set()
    for line in (box.state / "ledger.jsonl").read_bytes().splitlines():
        entry = json.loads(line)
        if entry["session"] in sessions:
            wall = entry["wall"]  # 2026-05-06T14:00:12.345+02:00
            found |= {wall[:10].encode(), wall[:16].encode(), wall[:16].replace("T", " ").encode(),
                      wall[11:19].encode()}
    return sorted(found)


def test_a_card_after_many_sessions_holds_nothing_of_them_in_plaintext(tmp_path: Path, supervisor):
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        pytest.fail("this test loop-mounts an ext4 card image, which needs root and e2fsprogs (as CI has)")
    key, recipient = supervisor
    microphone = tmp_path / "microphone.wav"
    pcm = position_pcm(0, 20 * POLICY.rate, POLICY)
    write_wav(microphone, pcm, POLICY)
    with ext4_card(tmp_path / "image", CARD_BYTES) as card:
        remount_noatime(card)
        box = SimulatedBox(tmp_path / "box", recipient, key_file=key, microphone=microphone, card=card,
                           config="[policy]\nmin_free_mb = 1\nmax_session = 60\n")  # a small card
        timeline = box.simulate(FIRST_RUN)
        box.configure('[policy]\nmin_free_mb = 1\nmax_session = 60\non_withdrawal = "keep"\n')
        timeline += box.simulate(SECOND_RUN)
        ended = timeline.of("session")
        assert [(e["end"], e["kept"]) for e in ended] == [
            ("ended", True), ("ended", True), ("withdrawn", False), ("consent timeout", True),
            ("withdrawn", False), ("ended", True), ("withdrawn", True), ("ended", True)], ended
        sessions = [e["id"] for e in ended]
        recorded = [sessions[n] for n in (0, 1, 2, 5, 6, 7)]  # the others never opened capture
        # Each session that reached the card left its extract there (the destroyed one too); the others
        # left nothing, not even an extract.
        names = sorted(os.listdir(card))
        assert [name for name in names if name.endswith(".ledger.age")] == sorted(map(extract_name, recorded))
        assert not [name for name in names if name[:16] not in recorded and name[:16] in sessions]
        assert CARD_ID_NAME in names and "ledger.jsonl" not in names
        fixed = FIXED_TIME.timestamp()
        for path in [card, *(card / name for name in names if name != "lost+found")]:
            status = path.stat()
            assert (status.st_mtime, status.st_atime) == (fixed, fixed), f"{path.name} is dated"
        times = times_of(box, sessions)
    image = card_image(tmp_path / "image").read_bytes()
    assert not loop_devices(card_image(tmp_path / "image"))
    assert {len(text) for text in times} == {16, 10, 8}  # dates, minutes and seconds were found to look for
    leaks = [text for text in times if text in image]
    # A recorded session's id is in its file names (random: it tells nothing), so only there: in a directory
    # entry or the journal's copy of one, always followed by the rest of the name. A session that never
    # reached the card left its id nowhere.
    for session in sessions:
        places = [match.end() for match in re.finditer(session.encode(), image)]
        if session not in recorded and places:
            leaks.append(f"{session} (never on the card)".encode())
        leaks += [image[end - 16:end + 8] for end in places if image[end:end + 1] != b"."]
    leaks += [word.pattern for word in WORDS if word.search(image)]
    assert leaks == [], f"in plaintext on the card: {sorted(set(leaks))[:12]}"
    assert files_holding(pcm, [card_image(tmp_path / "image")]) == []
