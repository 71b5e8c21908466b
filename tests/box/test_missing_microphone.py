"""A microphone gone between the start-up self-test and the session: the box finds it when capture opens
(the device is opened only once everyone has consented) and ends the session as a fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consentbox.core.reasons import Problem
from consentbox.hw.alsa import AlsaSource
from consentbox.hw.errors import AudioUnavailable
from tests.support.simulated import play


def test_a_microphone_missing_when_capture_opens_ends_the_session_like_a_fault(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch):
    opened = AlsaSource.open
    opens = 0

    def unplugged_after_the_self_test(source: AlsaSource) -> None:
        nonlocal opens
        opens += 1
        if opens > 1:
            raise AudioUnavailable("cannot open audio device 'mic' for capture: No such device")
        opened(source)

    monkeypatch.setattr(AlsaSource, "open", unplugged_after_the_self_test)
    timeline: list[dict[str, Any]] = []
    play(tmp_path, "0 tap record\n1 tap consent 1\n2 tap consent 2\n4 hold record 1.2\n10 end\n", timeline.append)

    at_capture = [(entry["event"], entry.get("on", entry.get("problem", entry.get("end"))))
                  for entry in timeline if entry["t"] == 5.0 and entry["event"] in ("led", "fault", "session")]
    assert at_capture == [("led", True), ("fault", Problem.NO_AUDIO_DEVICE.text), ("led", False),
                          ("session", "no audio device")]  # the REC LED on for a moment, the end a fault's
    assert [entry["count"] for entry in timeline if entry["event"] == "status" and entry["colour"] == "red"] == [7]
    assert sorted(path.name for path in (tmp_path / "card").iterdir()) == ["consentbox-card.id"]  # nothing captured
