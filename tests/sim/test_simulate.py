"""`consentbox simulate` (sim/simulate.py, cli/consentbox.py): how a script ends, `--seats` and its seat LEDs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from consentbox.box.config import load_config
from consentbox.cli.consentbox import main
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.hw.gpio import GpioPanel
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.simulate import simulated_config
from consentbox.testing.signal import position_pcm, write_wav
from tests.support.simulated import play

RECORDING = "0 tap record\n1 tap consent 1\n2 tap consent 2\n4 hold record 1.2\n"


def _after_capture(timeline: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """(time, event) of every entry from the one that opened capture on."""
    opened = next(n for n, entry in enumerate(timeline) if entry["event"] == "capture" and entry["open"])
    return [(entry["t"], entry["event"]) for entry in timeline[opened:]]


def test_a_script_without_end_ends_after_its_last_step_as_on_shutdown(tmp_path: Path):
    # Its last step is the release of RECORD at 5.2 s, while recording: the session ends there, as an
    # `end` step at that moment ends it (the box shut down, what was open finalised).
    (tmp_path / "without").mkdir()
    (tmp_path / "with").mkdir()
    without: list[dict[str, Any]] = []
    play(tmp_path / "without", RECORDING, without.append)
    with_end: list[dict[str, Any]] = []
    play(tmp_path / "with", RECORDING + "5.2 end\n", with_end.append)
    [session] = [entry for entry in without if entry["event"] == "session"]
    assert (session["end"], session["kept"]) == ("shutdown", True)
    assert 5.2 <= session["t"] < 5.2 + Policy().period_seconds  # while recording, time moves a period at a time
    assert _after_capture(without) == _after_capture(with_end)
    assert sorted(path.name for path in (tmp_path / "without" / "card").iterdir()) == sorted(
        [f"{session['id']}.{name}" for name in ("000.wav.age", "manifest.age", "ledger.age")] + ["consentbox-card.id"])


def _simulate(tmp_path: Path, script: str, *options: str) -> int:
    (tmp_path / "card").mkdir(parents=True)
    write_wav(tmp_path / "input.wav", position_pcm(0, 10 * Policy().rate, Policy()), Policy())
    (tmp_path / "script.txt").write_text(script)
    return main(["simulate", "--script", str(tmp_path / "script.txt"), "--audio", str(tmp_path / "input.wav"),
                 "--card", str(tmp_path / "card"), "--recipient", X25519Identity.generate().recipient.to_string(),
                 "--state", str(tmp_path / "state"), *options])


FOUR_PARTIES = ("0 tap record\n0.5 tap record\n1 tap record\n"
                "2 tap consent 1\n2.5 tap consent 2\n3 tap consent 3\n3.5 tap consent 4\n5 hold record 1.2\n")


def test_seats_sets_the_separate_consent_buttons(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert _simulate(tmp_path / "four", FOUR_PARTIES, "--seats", "4") == 0
    timeline = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [entry["seat"] for entry in timeline if entry["event"] == "consent"] == [1, 2, 3, 4]
    assert "RECORDING" in [entry["state"] for entry in timeline if entry["event"] == "state"]

    assert _simulate(tmp_path / "three", FOUR_PARTIES, "--seats", "3") == 1
    assert capsys.readouterr().err == "consentbox: script uses consent 4, but the panel has 3 consent seat(s)\n"


def test_in_real_time_the_script_starts_once_the_box_is_up(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch):
    # Start-up takes real time (on a Pi Zero, far more than here; made 0.3 s below). Counted from before it,
    # a tap at 0 came overdue: its press and release were driven at once, closer than the pins' debounce,
    # which dropped the release, and the box set up no session (the record benchmark recorded nothing).
    from consentbox.sim import simulate

    def slow_assemble_box(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return assemble_box(*args, **kwargs)

    assemble_box = simulate.assemble_box
    monkeypatch.setattr(simulate, "assemble_box", slow_assemble_box)
    assert _simulate(tmp_path, "0 tap record\n0.2 tap consent 1\n0.4 tap consent 2\n1.5 end\n", "--realtime") == 0
    timeline = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [entry["seat"] for entry in timeline if entry["event"] == "consent"] == [1, 2]
    # The `script` entry says when that was: the script's times count from it (the benchmark's latencies do).
    [script] = [entry["t"] for entry in timeline if entry["event"] == "script"]
    selftest = next(entry["t"] for entry in timeline if entry["event"] == "selftest")
    setup = next(entry["t"] for entry in timeline if entry["event"] == "setup")
    assert 0.3 < selftest <= script < setup


@pytest.mark.parametrize("seats", range(1, 13))
def test_each_simulated_seat_has_its_led_on_a_pin_of_its_own_up_to_nine_seats(seats: int):
    panel = simulated_config(load_config(), card=Path("card"), recipients=[], seats=seats, shared_consent=False,
                             state_dir=Path("state")).panel
    assert len(panel.seat_leds) == (seats if seats <= 9 else 0)
    pins = [panel.record_pin, *panel.consent_pins, *panel.seat_leds, panel.rec_led_pin, *panel.status_pins,
            panel.buzzer_pin]
    assert len(set(pins)) == len(pins), f"a pin used twice: {pins}"
    built = GpioPanel(panel, pin_factory=SimulatedFactory(lambda: 0.0), clock=lambda: 0.0, on_event=print)
    built.close()  # every pin is one of the header's: gpiozero's mock board refuses any other
