"""The shell performs every command of the core and refuses one it does not know, rather than dropping it.

Three places take the machine's commands: the box (performs them), the panel (shows the LED and tone
ones) and the timeline (describes them). Each ends its chain in `assert_never`, so mypy proves it
covers `core.commands.Command`; these tests pin the run-time half: a stranger raises.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest

from consentbox.box.box import Box, Report
from consentbox.box.clock import VirtualClock
from consentbox.box.config import load_config
from consentbox.box.timeline import command_entry
from consentbox.box.wiring import assemble_box
from consentbox.core.commands import (
    CloseCapture,
    Command,
    EndSession,
    Flash,
    HoldBackAudio,
    OpenCapture,
    OpenSession,
    PlayTone,
    RecLed,
    RecordConsent,
    RecordWithdrawal,
    Refuse,
    SeatLights,
    SetHeadcount,
    ShowStatus,
    WithdrawFinished,
    WriteHeldAudio,
)
from consentbox.core.events import Tick
from consentbox.core.feedback import Colour, Pattern, Rhythm, Tone
from consentbox.core.reasons import EndReason, Refusal
from consentbox.crypto import X25519Identity
from consentbox.hw.gpio import GpioPanel
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.simulate import simulated_config


@dataclass(frozen=True)
class Beep:
    """A command the core never gives."""


@dataclass(frozen=True)
class LookalikeRecLed:
    """Shaped like `RecLed(True)`, but not one: going by shape, a shell would light the REC LED for it."""

    on: bool = True


STRANGERS = [Beep(), LookalikeRecLed()]

ONE_OF_EACH = [
    RecLed(True), OpenCapture(), CloseCapture(), ShowStatus(Pattern(Colour.GREEN, Rhythm.STEADY)),
    Flash(Colour.AMBER, 2), PlayTone(Tone.ACK), OpenSession(2), SetHeadcount(3), RecordConsent(1),
    RecordWithdrawal(None), Refuse(Refusal.NOT_EVERYONE_CONSENTED), EndSession(EndReason.ENDED, True),
    SeatLights(frozenset({1}), frozenset({2})), HoldBackAudio(), WriteHeldAudio(), WithdrawFinished(2, keep=False),
]


def simulated_box(tmp_path: Path, report: Report = lambda entry: None) -> Box:
    """A box of the shipped configuration on mock pins, a card directory and virtual time; its timeline
    to `report`."""
    (tmp_path / "card").mkdir()
    config = simulated_config(load_config(None), card=tmp_path / "card",
                              recipients=[X25519Identity.generate().recipient], seats=2, shared_consent=False,
                              state_dir=tmp_path / "state")
    clock = VirtualClock()
    return assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now), audio_device="null",
                        report=report)


@pytest.mark.parametrize("stranger", STRANGERS, ids=lambda command: type(command).__name__)
def test_the_box_refuses_a_command_it_does_not_perform(tmp_path: Path, monkeypatch, stranger):
    box = simulated_box(tmp_path)
    monkeypatch.setattr(box.machine, "handle", lambda event: (stranger,))
    box.post(Tick(box.clock.now()))
    with pytest.raises(AssertionError, match=type(stranger).__name__) as caught:
        box.pump()
    # The timeline would refuse it too, after the box had let it pass: it must be the box that refused.
    assert any(entry.name == "_perform" for entry in caught.traceback[-2:]), "refused by Box._perform"
    monkeypatch.undo()
    box.shut_down()


@pytest.mark.parametrize("stranger", STRANGERS, ids=lambda command: type(command).__name__)
def test_the_panel_refuses_a_command_it_does_not_show(stranger):
    config = dataclasses.replace(load_config().panel, pin_factory="mock")
    panel = GpioPanel(config, pin_factory=SimulatedFactory(lambda: 0.0), clock=lambda: 0.0, on_event=print)
    try:
        with pytest.raises(AssertionError, match=type(stranger).__name__):
            panel.show(stranger)
        assert not panel.rec_led.value, "a lookalike lights nothing"
    finally:
        panel.close()


@pytest.mark.parametrize("stranger", STRANGERS, ids=lambda command: type(command).__name__)
def test_the_timeline_refuses_a_command_it_does_not_describe(stranger):
    with pytest.raises(AssertionError, match=type(stranger).__name__):
        command_entry(0.0, stranger, "")


def test_every_command_of_the_core_has_its_timeline_entry():
    assert {type(command) for command in ONE_OF_EACH} == set(get_args(Command)), "one of each, no more"
    for command in ONE_OF_EACH:
        assert command_entry(1.0, command, "0123456789abcdef")["t"] == 1.0


def test_the_box_shows_seat_lights_on_the_panel_and_in_the_timeline(tmp_path: Path, monkeypatch):
    entries: list[dict] = []
    box = simulated_box(tmp_path, entries.append)
    monkeypatch.setattr(box.machine, "handle",
                        lambda event: (SeatLights(lit=frozenset({2}), blinking=frozenset({1})),))
    box.post(Tick(box.clock.now()))
    box.pump()
    monkeypatch.undo()
    assert isinstance(box.panel, GpioPanel) and box.panel.seat_leds is not None
    assert box.panel.seat_leds[1].is_lit, "seat 2's LED is lit"
    assert box.panel.seat_leds.source is not None, "seat 1's LED blinks"
    assert [{key: value for key, value in entry.items() if key != "t"} for entry in entries
            if entry["event"] == "seats"] == [{"event": "seats", "lit": [2], "blinking": [1]}]
    box.shut_down()
