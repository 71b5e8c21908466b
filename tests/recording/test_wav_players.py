"""A sealed segment, decrypted by the real `age`, is a WAV whose length real audio tools take from the file.

Its streaming header cannot hold the length (docs/formats.md, "Segments"): libsndfile (`sndfile-info`) must
report the recorded frames, sox must say the length is unknown rather than claim one, and read exactly the
recorded frames without a warning.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from consentbox.core.policy import Policy, SampleFormat
from consentbox.core.reasons import EndReason
from consentbox.recording.session import SessionFiles
from consentbox.storage.ids import new_session_id
from tests.conftest import required_tool

PERIOD = 1024  # frames per write, as ALSA hands them over


def _recorded_segment(card: Path, identity, started, journal, policy: Policy, audio: bytes) -> Path:
    files = SessionFiles.create(card, new_session_id(), [identity.recipient], policy, headcount=1,
                                consents=[(1, 1.0)], started=started, journal=journal)
    files.start_interval(2.0)
    step = PERIOD * policy.frame_bytes
    for at in range(0, len(audio), step):
        files.write(audio[at:at + step])
    files.finalise(EndReason.ENDED, 9.0, withdrawn=False)
    (segment,) = sorted(card.glob("*.wav.age"))
    return segment


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, (command, done.stderr)
    return done


@pytest.mark.parametrize("policy", [Policy(), Policy(rate=44_100, channels=2, sample_format=SampleFormat.S32_LE)],
                         ids=["S16 mono 48 kHz", "S32 stereo 44.1 kHz"])
def test_a_segment_age_decrypts_has_the_recorded_length_in_libsndfile_and_sox(tmp_path, card, identity, started,
                                                                              journal, pcm, age_cli, key_file,
                                                                              policy):
    sndfile_info, sox, soxi = required_tool("sndfile-info"), required_tool("sox"), required_tool("soxi")
    frames = 3 * policy.rate + 777  # not a whole number of chunks, nor of periods
    segment = _recorded_segment(card, identity, started, journal, policy, pcm(policy, frames))
    wav = tmp_path / "segment.wav"
    _run(age_cli, "-d", "-i", str(key_file), "-o", str(wav), str(segment))

    info = _run(sndfile_info, str(wav)).stdout
    assert re.search(rf"^Frames\s*:\s*{frames}$", info, re.MULTILINE), info
    assert "Duration" not in _run(soxi, str(wav)).stdout  # sox's "unknown length": no length claimed
    assert _run(soxi, "-s", str(wav)).stdout.strip() == "0"
    read = _run(sox, str(wav), "-n", "stat")
    assert re.search(rf"^Samples read:\s*{frames * policy.channels}$", read.stderr, re.MULTILINE), read.stderr
    assert "WARN" not in read.stderr, read.stderr
