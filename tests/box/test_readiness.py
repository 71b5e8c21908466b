"""A box that is not ready for a reason only the shell can see refuses to record (docs/status-codes.md):
no recipients installed (code 6), a clock it cannot trust (code 9). The core refuses on any problem
(tests/core/test_not_ready.py); these check that the box finds these two and tells the machine. The
box's own wiring plays a script in virtual time, in this process; tests/system/test_run.py and
tests/system/test_retention.py show the same through `consentbox run` and `consentbox simulate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consentbox.state.clock_floor import firmware_built
from tests.support import simulated

DAY = 86_400
#: Set up, both consent, hold RECORD to start and again to end: on a box that is ready, a session is
#: recorded from 5 s to 12 s. On one that is not, the RECORD tap that would set it up is refused (the two
#: holds that follow are no taps, and in IDLE a longer press does nothing).
SESSION = "0 tap record\n1 tap consent 1\n2 tap consent 2\n4 hold record 1.5\n10 hold record 2.5\n15 end\n"


def play(tmp_path: Path, *, provisioned: bool = True, start_at: int | None = None) -> list[dict[str, Any]]:
    """`SESSION` through a box of two seats (`tests.support.simulated.play`), its clock starting at `start_at`
    (default now); its timeline."""
    timeline: list[dict[str, Any]] = []
    simulated.play(tmp_path, SESSION, timeline.append, seats=2, provisioned=provisioned, start_at=start_at)
    return timeline


def events(timeline: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    return [entry for entry in timeline if entry["event"] in names]


def assert_refused_with(timeline: list[dict[str, Any]], code: int, reason: str) -> None:
    """Nothing was set up, lit or recorded; RECORD was refused for `reason`, the STATUS LED blinking `code`."""
    assert [(e["colour"], e["rhythm"], e["count"]) for e in events(timeline, "status")][-1] == ("red", "code", code)
    assert [e["reason"] for e in events(timeline, "refused")] == [reason], "the RECORD tap was not refused"
    assert events(timeline, "setup", "capture", "file", "session") == [], "a box not ready set up or recorded"
    assert [e for e in events(timeline, "led") if e.get("on")] == [], "the REC LED lit"


def test_the_same_session_is_recorded_on_a_box_that_is_ready(tmp_path: Path):
    timeline = play(tmp_path)
    assert events(timeline, "refused") == []
    assert [(e["end"], e["kept"]) for e in events(timeline, "session")] == [("ended", True)]


def test_a_box_without_recipients_refuses_to_record_with_code_6(tmp_path: Path):
    assert_refused_with(play(tmp_path, provisioned=False), 6, "not provisioned")


def test_a_box_whose_clock_cannot_be_trusted_refuses_to_record_with_code_9(tmp_path: Path):
    # A Pi without a clock battery that never knew the time: its clock starts before the firmware was built.
    assert_refused_with(play(tmp_path, start_at=int(firmware_built()) - 400 * DAY), 9, "clock untrusted")
