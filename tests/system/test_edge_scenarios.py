"""The shipped scenario scripts of consent at the edges (firmware/consentbox/sim/scenarios), each played through
`consentbox simulate` with its policy file, its card decrypted with stock `age` and exported by the supervisor.

The microphone plays a position signal, so the exported audio says which input frames it holds.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.testing.signal import position_pcm, spans, write_wav

from .conftest import Export, SimulatedBox, Timeline, card_files, pcm

SCENARIOS = Path(__file__).parents[2] / "firmware/consentbox/sim/scenarios"
POLICY = Policy()
RATE, PERIOD = POLICY.rate, POLICY.period_frames


class Played:
    """One scenario's run: its timeline, its card, and the supervisor's export of it."""

    def __init__(self, root: Path, name: str, supervisor: tuple[Path, str], microphone: Path) -> None:
        policy = SCENARIOS / f"{name}.toml"
        box = SimulatedBox(root, supervisor[1], key_file=supervisor[0], microphone=microphone,
                           config=policy.read_text() if policy.exists() else None)
        self.timeline: Timeline = box.simulate((SCENARIOS / f"{name}.txt").read_text())
        self.card = box.card
        self.files = card_files(box.card)
        for path in self.files:  # stock age reads every file the box left
            subprocess.run(["age", "-d", "-i", supervisor[0], "-o", "/dev/null", box.card / path], check=True)
        self.exported: Export = box.export(root / "exported") if self.files else Export(0, "", {}, {})

    def audio(self) -> list[list[range]]:
        """Each exported session's audio as runs of input frames (no silence expected)."""
        runs = [spans(pcm(wav), POLICY) for wav in self.exported.wavs.values()]
        assert all(isinstance(run, range) for session in runs for run in session), runs
        return runs  # type: ignore[return-value]


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, position_pcm(0, 300 * RATE, POLICY), POLICY)
    return path


@pytest.fixture
def scenario(tmp_path, supervisor, microphone):
    return lambda name: Played(tmp_path, name, supervisor, microphone)


def seconds(run: range) -> float:
    return len(run) / RATE


def test_withdrawal_after_the_session_shreds_it_from_the_card(scenario):
    played = scenario("withdraw-after")
    [withdrawal] = [e for e in played.timeline.of("withdrawal") if e.get("after")]
    assert (withdrawal["t"], withdrawal["seat"], withdrawal["kept"]) == (64.0, 2, False)
    assert played.files == {}, "the withdrawn session's segments and manifest are gone from the card"


def test_a_withdrawal_during_recording_keeps_nothing_from_its_press_and_taps_lose_nothing(scenario):
    played = scenario("withdraw-hold")  # on_withdrawal = "keep"
    [session] = played.timeline.of("session")
    assert (session["end"], session["kept"]) == ("withdrawn", True)
    [[kept]] = played.audio()
    # One continuous piece from the start of capture (4.0 s) to the press that withdrew (20.0 s): the tap at
    # 10 s and the 1.5 s press at 12 s lost nothing, and nothing after the press at 20 s was kept.
    assert kept.start == 0 and abs(seconds(kept) - 16.0) <= PERIOD / RATE, seconds(kept)


def test_a_long_press_in_paused_never_resumes(scenario):
    played = scenario("paused-long-press")
    assert played.timeline.states()[-3:] == ["RECORDING", "PAUSED", "IDLE"]
    assert played.timeline.of("tone", tone="hold longer")[0]["t"] == 16.5
    assert [len(session) for session in played.audio()] == [1], "one interval: capture never reopened"


def test_a_late_arrival_joins_while_paused(scenario):
    played = scenario("group-late-arrival")
    [report] = played.exported.reports.values()
    assert report["headcount"] == 3
    assert [len(session) for session in played.audio()] == [2]


def test_group_set_up_cancelled_then_lowered(scenario):
    played = scenario("group-setup")
    assert [e["end"] for e in played.timeline.of("session")] == ["cancelled", "ended"]
    assert played.timeline.of("withdrawal") == []
    [report] = played.exported.reports.values()
    assert report["headcount"] == 1, "the second session was lowered to the one who consented"
    assert [e["count"] for e in played.timeline.of("flash", colour="amber") if e["t"] in (6.0, 15.1, 17.1)] == [
        1, 2, 3]


def test_reminder_tones_sound_while_recording(scenario):
    played = scenario("reminder")  # cue_every = 1
    # While recording, time moves one period at a time: each tone comes within a period of its minute.
    times = [e["t"] for e in played.timeline.of("tone", tone="reminder")]
    assert times == pytest.approx([64.0, 124.0, 260.1], abs=PERIOD / RATE)
    assert [len(session) for session in played.audio()] == [2]


def test_a_silent_microphone_is_alerted_while_recording_goes_on_and_the_export_says_where(tmp_path, supervisor):
    # Issue 17, point 5: input silent from 10 s to 40 s; capture opens at 4.0 s, one period at a time.
    microphone = tmp_path / "gap.wav"
    silence = bytes(30 * RATE * POLICY.frame_bytes)
    write_wav(microphone, position_pcm(0, 10 * RATE, POLICY) + silence + position_pcm(40 * RATE, 30 * RATE, POLICY),
              POLICY)
    played = Played(tmp_path, "microphone-silent", supervisor, microphone)
    [fault] = played.timeline.of("fault")
    [ended] = played.timeline.of("silence_ended")
    assert fault["problem"] == "microphone silent" and fault["t"] == pytest.approx(34.0, abs=2 * PERIOD / RATE)
    assert ended["heard"] and ended["t"] == pytest.approx(44.0, abs=2 * PERIOD / RATE)
    assert played.timeline.of("tone", tone="silence")[0]["t"] == fault["t"]
    assert [e["open"] for e in played.timeline.of("capture")] == [True, False], "recording went on"
    assert played.exported.status == 0 and ", silent from 0:00:10 for 30 s" in played.exported.stderr
    [wav] = played.exported.wavs.values()
    assert len(pcm(wav)) // POLICY.frame_bytes == pytest.approx(58 * RATE, abs=2 * PERIOD), "all 58 s recorded"
