"""A microphone that is heard (issue 17, point 5), on the whole box.

While recording, a microphone that hears nothing for `silence_alert` seconds gives the amber code 11, the
silence tone and a ledger `fault`, and recording goes on; sound coming back ends it (`silence_ended`, the
STATUS LED as before). The STATUS LED flickers with the input level for the first seconds of each capture.
The export and the audit report show the silent stretches. Played through `consentbox simulate`'s wiring
(libasound reading a WAV through ALSA's file plugin), or, for a microphone never heard at all (the start-up
self-test would catch it there), a box driven button by button.
"""

from __future__ import annotations

import io
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from consentbox.admin.audit.sources import Period, audit
from consentbox.admin.audit.text_table import render_text
from consentbox.admin.boxes import GivenDeviceKey
from consentbox.admin.export import Outcome, export_card
from consentbox.box.box import LEVEL_BLOCK_PERIODS
from consentbox.box.logs import journal_fields
from consentbox.box.timeline import describe
from consentbox.core.level import LEVEL_LIT_DBFS, LEVEL_SHOWN_SECONDS
from consentbox.core.policy import Policy
from consentbox.core.reasons import Problem
from consentbox.crypto import X25519Identity
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.hw.gpio import GpioPanel
from consentbox.state.files import DEVICE_KEY
from consentbox.testing.fakes import GeneratedSource
from consentbox.testing.signal import position_pcm
from tests.support.simulated import BoxRig, play

POLICY = Policy()
RATE = POLICY.rate
PERIOD = POLICY.period_seconds
LEVEL_BLOCK = LEVEL_BLOCK_PERIODS * PERIOD  # how often the level changes at most
#: Where capture opens in the scripts below: RECORD is held from 4 s, for record_hold.
OPENED = 5.0
SET_UP = "0 tap record\n1 tap consent 1\n2 tap consent 2\n4 hold record 1.2\n"
#: The end of the last period that holds the signal before the gap, and the start of the first after it.
SILENT_FROM = OPENED + math.ceil(10 * RATE / POLICY.period_frames) * PERIOD
HEARD_FROM = OPENED + 40 * RATE // POLICY.period_frames * PERIOD


def microphone_with_a_gap() -> bytes:
    """The position signal for 10 s, 30 s of digital silence, then the signal again for 20 s."""
    silence = bytes(30 * RATE * POLICY.frame_bytes)
    return position_pcm(0, 10 * RATE, POLICY) + silence + position_pcm(40 * RATE, 20 * RATE, POLICY)


def of(timeline: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in timeline if entry["event"] == event]


def ledger_of(tmp_path: Path) -> list[dict[str, Any]]:
    """The entries of the box's ledger that belong to a session."""
    entries = [json.loads(line) for line in (tmp_path / "state" / "ledger.jsonl").read_bytes().splitlines()]
    return [entry for entry in entries if entry["session"] is not None]


def exported(card: Path, out: Path, identity: X25519Identity, state: Path) -> tuple[Outcome, str, Path]:
    """Export `card` verified against the box of `state`: the outcome, the lines printed, the session's report."""
    lines = io.StringIO()
    boxes = GivenDeviceKey(DeviceSigningKey.load(state / DEVICE_KEY).public_key)
    outcome = export_card(card, out, [identity], boxes, messages=lines)
    [report] = out.glob("*.json")
    return outcome, lines.getvalue(), report


def audit_text(card: Path, identity: X25519Identity, state: Path) -> str:
    boxes = GivenDeviceKey(DeviceSigningKey.load(state / DEVICE_KEY).public_key)
    return render_text(audit(card, [identity], boxes, period=Period(), made=datetime.now().astimezone()))


def test_silence_while_recording_alerts_in_amber_with_a_tone_and_a_fault_and_recording_goes_on(tmp_path: Path):
    timeline: list[dict[str, Any]] = []
    identity, _ = play(tmp_path, SET_UP + "70 hold record 2.5\n80 end\n", timeline.append,
                       microphone=microphone_with_a_gap())

    # Recording went on: capture opened once and closed once, at the end; the REC LED lit throughout.
    [(opened, _), (closed, open_after)] = [(entry["t"], entry["open"]) for entry in of(timeline, "capture")]
    assert opened == OPENED and closed == pytest.approx(72.0, abs=PERIOD) and not open_after
    assert [entry["on"] for entry in of(timeline, "led")] == [True, False]
    assert of(timeline, "session")[-1]["end"] == "ended"

    # The alert: silence_alert after the last period heard, to a period; amber code 11, the tone, a fault.
    [fault] = of(timeline, "fault")
    alerted = fault["t"]
    assert SILENT_FROM + POLICY.silence_alert <= alerted < SILENT_FROM + POLICY.silence_alert + PERIOD
    assert fault["problem"] == "microphone silent" and "recording goes on" in fault["detail"]
    assert journal_fields(fault)["STATUS_CODE"] == "11", "journalctl STATUS_CODE=11 finds it"
    shown = [(entry["t"], entry["colour"], entry["rhythm"], entry["count"]) for entry in of(timeline, "status")
             if OPENED <= entry["t"] < closed]
    [ended] = of(timeline, "silence_ended")
    assert shown == [(OPENED, "green", "slow blink", 0), (alerted, "amber", "code", 11),
                     (ended["t"], "green", "slow blink", 0)], "amber while silent, then the recording's pattern"
    assert [entry["t"] for entry in of(timeline, "tone") if entry["tone"] == "silence"] == [alerted]

    # Sound came back: the silence ends, measured from the last period heard to the first heard again.
    assert HEARD_FROM < ended["t"] <= HEARD_FROM + PERIOD + 1e-6
    assert ended["heard"] is True and ended["seconds"] == pytest.approx(HEARD_FROM - SILENT_FROM, abs=1e-3)
    assert describe(ended).endswith("silence over after 30 s: the microphone hears sound again")

    # The ledger: a fault of problem 11, then the end of the silence, while the session records on.
    kinds = [(entry["kind"], entry["fields"]) for entry in ledger_of(tmp_path)
             if entry["kind"] in ("start", "fault", "silence_ended", "pause", "end")]
    assert kinds == [("start", {}), ("fault", {"problem": Problem.MICROPHONE_SILENT.code}),
                     ("silence_ended", {"seconds": ended["seconds"], "heard": True}),
                     ("end", {"reason": "ended", "kept": True})]

    # The export and the audit say where the silence is: in the WAV (10 s in), and on the session's clock.
    outcome, lines, report = exported(tmp_path / "card", tmp_path / "out", identity, tmp_path / "state")
    assert outcome is Outcome.INTACT
    assert ", silent from 0:00:10 for 30 s" in lines, lines
    [stretch] = json.loads(report.read_text())["export"]["silences"]
    assert stretch["start_seconds"] == pytest.approx(10.0, abs=2 * PERIOD)
    assert stretch["seconds"] == pytest.approx(30.0, abs=2 * PERIOD)
    text = audit_text(tmp_path / "card", identity, tmp_path / "state")
    assert f"microphone silent (code 11) at {alerted - 0.1:.1f} s" in text  # the set-up was at 0.1 s
    assert (f"the microphone heard nothing from {SILENT_FROM - 0.1:.1f} s for 30 s (sound came back)"
            in text), text


def test_a_silence_still_going_on_when_capture_closes_ends_there_and_a_resume_watches_afresh(tmp_path: Path):
    # The simulated microphone gives its input from the start at each open, then silence: 30 s of signal.
    timeline: list[dict[str, Any]] = []
    play(tmp_path, SET_UP + "60 tap record\n70 tap record\n95 hold record 2.5\n100 end\n", timeline.append)
    [ended] = of(timeline, "silence_ended")
    paused = [entry["t"] for entry in of(timeline, "capture") if not entry["open"]][0]
    assert ended["t"] == paused and ended["heard"] is False
    shown = [(entry["colour"], entry["rhythm"], entry["count"]) for entry in of(timeline, "status")
             if OPENED <= entry["t"] <= paused]
    assert shown == [("green", "slow blink", 0), ("amber", "code", 11), ("amber", "steady", 0)], \
        "the alert until the pause, then the pause's pattern"
    assert ended["seconds"] == pytest.approx(paused - (OPENED + math.ceil(30 * RATE / POLICY.period_frames) * PERIOD),
                                             abs=1e-3)
    # Resumed at 70.1 s, the signal again for 24.9 s of capture: shorter than its 30 s, so no second alert.
    assert len(of(timeline, "fault")) == 1
    kinds = [entry["kind"] for entry in ledger_of(tmp_path)
             if entry["kind"] in ("fault", "silence_ended", "pause", "resume")]
    assert kinds == ["fault", "pause", "silence_ended", "resume"]


class SilentMicrophone(GeneratedSource):
    """A microphone that opens and gives digital zeros (muted, or its cable out) after the box's self-test."""

    def read(self) -> bytes:
        return bytes(len(super().read()))


def test_a_session_recorded_all_in_silence_is_exported_as_all_silent(tmp_path: Path, identity: X25519Identity):
    rig = BoxRig(tmp_path, identity.recipient, POLICY)
    rig.box.audio = SilentMicrophone(POLICY)
    session = rig.record(28.0)  # the 28 s of zeros
    assert [entry["problem"] for entry in rig.of("fault")] == ["microphone silent"]
    silence = [(entry["kind"], entry["fields"].get("heard")) for entry in rig.entries(session)
               if entry["kind"] in ("fault", "silence_ended")]
    assert silence == [("fault", None), ("silence_ended", False)], "still silent when the session ended"
    rig.box.check_readiness()
    rig.box.pump()
    assert rig.box.status_line() == "IDLE: ready", "code 11 keeps no session from starting"
    rig.box.shut_down()
    outcome, lines, _ = exported(rig.card, tmp_path / "out", identity, rig.state)
    assert outcome is Outcome.INTACT
    assert "exported, end: ended, ALL SILENT: the microphone heard nothing" in lines, lines


def test_the_status_led_shows_the_input_level_for_the_first_seconds_of_each_capture(tmp_path: Path,
                                                                                    monkeypatch: pytest.MonkeyPatch):
    shown: list[tuple[float, float | None]] = []
    show_level = GpioPanel.show_level

    def noted(panel: GpioPanel, dbfs: float | None) -> None:
        shown.append((panel._clock(), dbfs))
        show_level(panel, dbfs)

    monkeypatch.setattr(GpioPanel, "show_level", noted)
    timeline: list[dict[str, Any]] = []
    play(tmp_path, SET_UP + "20 tap record\n30 tap record\n45 hold record 2.5\n50 end\n", timeline.append)
    opened = [entry["t"] for entry in of(timeline, "capture") if entry["open"]]
    assert opened == [OPENED, 30.1]
    for start in opened:
        levels = [(at, dbfs) for at, dbfs in shown if start < at <= start + LEVEL_SHOWN_SECONDS + LEVEL_BLOCK]
        assert levels[0][0] == pytest.approx(start + PERIOD), "from the first period"
        assert all(dbfs is not None and dbfs >= LEVEL_LIT_DBFS for _, dbfs in levels[:-1]), "the signal lights it"
        moments = [start] + [at for at, _ in levels]
        gaps = [later - earlier for earlier, later in zip(moments, moments[1:], strict=False)]
        assert max(gaps) == pytest.approx(LEVEL_BLOCK), "a new level at least every few periods (12 a second)"
        assert len(levels) >= LEVEL_SHOWN_SECONDS / LEVEL_BLOCK, "each block's level, then None"
        assert levels[-1][1] is None and levels[-1][0] >= start + LEVEL_SHOWN_SECONDS, "then the pattern again"
    assert len(shown) == sum(len([at for at, _ in shown if start < at <= start + LEVEL_SHOWN_SECONDS + LEVEL_BLOCK])
                             for start in opened), "nothing shown outside those seconds"
