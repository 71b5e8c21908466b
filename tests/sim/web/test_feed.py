"""What the page is fed: the lights read from the pins, the status in words, the timeline, the card."""

from __future__ import annotations

import dataclasses
import time

import pytest

from consentbox.box.config import load_config
from consentbox.core.commands import RecLed, SeatLights, ShowStatus
from consentbox.core.events import RECORD, ConsentButton, Pressed, Released
from consentbox.core.feedback import Colour, Pattern, Rhythm
from consentbox.core.policy import OnWithdrawal, Policy
from consentbox.core.table import State
from consentbox.hw.gpio import GpioPanel
from consentbox.hw.ports import StatusLeds
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.web import feed
from consentbox.sim.web.buttons import PanelButtons
from consentbox.sim.web.feed import Timeline, card_files, read_lights, seat_patterns, status_colours, status_words


@pytest.fixture
def make_panel():
    made = []

    def build(**changes):
        config = dataclasses.replace(load_config().panel, pin_factory="mock", **changes)
        events = []
        panel = GpioPanel(config, pin_factory=SimulatedFactory(time.monotonic), clock=time.monotonic,
                          on_event=events.append)
        made.append(panel)
        return panel, events

    yield build
    for panel in made:
        panel.close()


@pytest.mark.parametrize("leds", list(StatusLeds))
@pytest.mark.parametrize("colour", [Colour.GREEN, Colour.AMBER, Colour.RED])
def test_the_status_colour_is_read_back_from_the_pins(make_panel, leds, colour):
    panel, _ = make_panel(status_leds=leds)
    panel.show(ShowStatus(Pattern(colour, Rhythm.STEADY)))
    panel.show(RecLed(True))
    lights = read_lights(panel, status_colours(panel))
    assert lights["status"]["colour"] == colour.value
    pins = panel.rec_led.pin_factory.pin
    assert lights["status"]["levels"] == [int(pins(name).state) for name in load_config().panel.status_pins]
    assert lights["rec"] is True and lights["buzzer"] is False


def test_the_seat_leds_are_read_from_their_pins(make_panel):
    panel, _ = make_panel()
    panel.show(SeatLights(lit=frozenset({1, 3})))
    assert read_lights(panel, status_colours(panel))["seats"] == {
        "consent-1": True, "consent-2": False, "consent-3": True}
    faces = PanelButtons(panel, pull_up=True, bounce_time=0.02, shared_consent=False).faces
    assert [face.led for face in faces] == [False, True, True, True]  # RECORD has none


def test_a_panel_without_seat_leds_has_none_on_the_page(make_panel):
    panel, _ = make_panel(seat_led_pins=())
    panel.show(SeatLights(lit=frozenset({1})))
    assert read_lights(panel, status_colours(panel))["seats"] == {}
    faces = PanelButtons(panel, pull_up=True, bounce_time=0.02, shared_consent=False).faces
    assert not any(face.led for face in faces)


def test_what_each_seat_led_shows_comes_from_the_latest_seats_entry():
    timeline = Timeline()
    assert seat_patterns(timeline.seats, 3) == {"consent-1": "dark", "consent-2": "dark", "consent-3": "dark"}
    timeline.add({"t": 1.0, "event": "seats", "lit": [1], "blinking": [2, 3]})
    timeline.add({"t": 1.0, "event": "tone", "tone": "refused"})
    assert seat_patterns(timeline.seats, 3) == {"consent-1": "lit", "consent-2": "blinking",
                                                "consent-3": "blinking"}
    timeline.add({"t": 2.0, "event": "seats", "lit": [1, 2], "blinking": []})
    assert seat_patterns(timeline.seats, 3) == {"consent-1": "lit", "consent-2": "lit", "consent-3": "dark"}
    assert seat_patterns({"lit": [1], "blinking": [1]}, 1) == {"consent-1": "blinking"}  # as the LED shows it


def test_a_panel_without_a_buzzer_says_so(make_panel):
    panel, _ = make_panel(buzzer_pin="")
    assert read_lights(panel, status_colours(panel))["buzzer"] is None


def test_the_buttons_are_read_from_their_pins(make_panel):
    panel, _ = make_panel()
    panel.buttons[ConsentButton(2)].pin.drive_low()
    assert read_lights(panel, status_colours(panel))["buttons"] == {
        "record": False, "consent-1": False, "consent-2": True, "consent-3": False}


def test_a_click_quicker_than_the_bounce_time_still_reaches_the_box_as_a_press_and_a_release(make_panel):
    panel, events = make_panel()
    buttons = PanelButtons(panel, pull_up=True, bounce_time=0.02, shared_consent=False)
    buttons.drive("record", True)
    buttons.drive("record", False)  # at once: a real pin would drop this edge as bounce
    assert [type(event) for event in events] == [Pressed, Released]
    assert events[1].at - events[0].at >= 0.02
    assert all(event.button == RECORD for event in events)


@pytest.mark.parametrize(("state", "pattern", "words"), [
    (State.IDLE, Pattern(Colour.GREEN, Rhythm.STEADY), "ready: tap RECORD to set up a session"),
    (State.IDLE, Pattern(Colour.RED, Rhythm.CODE, 1), "cannot record: code 1, no card"),
    (State.IDLE, Pattern(Colour.RED, Rhythm.CODE, 9), "cannot record: code 9, clock untrusted"),
    (State.COLLECTING, Pattern(Colour.AMBER, Rhythm.CODE, 2), "setting up: 2 consents still missing"),
    (State.COLLECTING, Pattern(Colour.AMBER, Rhythm.CODE, 1), "setting up: 1 consent still missing"),
    (State.READY, Pattern(Colour.GREEN, Rhythm.FAST), "everyone has consented: hold RECORD 1 s to record"),
    (State.RECORDING, Pattern(Colour.GREEN, Rhythm.SLOW), "recording: tap RECORD to pause"),
    (State.RECORDING, Pattern(Colour.AMBER, Rhythm.CODE, 11), "the microphone hears nothing (code 11)"),
    (State.PAUSED, Pattern(Colour.AMBER, Rhythm.STEADY), "paused: tap RECORD to resume, hold it 2 s"),
    (State.WITHDRAWN, Pattern(Colour.RED, Rhythm.SLOW), "the session's audio destroyed"),
])
def test_the_status_in_words(state, pattern, words):
    entry = {"event": "status", "colour": pattern.colour.value, "rhythm": pattern.rhythm.value,
             "count": pattern.count}
    assert words in status_words(state, entry, Policy())


def test_a_kept_withdrawal_says_so():
    assert "kept, marked withdrawn" in status_words(State.WITHDRAWN, None, Policy(on_withdrawal=OnWithdrawal.KEEP))


def test_the_timeline_is_kept_in_words_and_read_from_where_a_page_left_off(monkeypatch):
    monkeypatch.setattr(feed, "TIMELINE_KEPT", 3)
    timeline = Timeline()
    for at in range(5):
        timeline.add({"t": float(at), "event": "consent", "seat": at})
    lines, count = timeline.since(0)
    assert count == 5 and [line.split()[-2] for line in lines] == ["2", "3", "4"]  # "seat N consents"
    assert timeline.since(4) == (lines[-1:], 5)
    assert timeline.since(5) == ([], 5)
    timeline.add({"t": 5.0, "event": "tone", "tone": "ack"})
    assert timeline.tone == {"t": 5.0, "event": "tone", "tone": "ack"}


def test_the_card_lists_its_files_by_name(tmp_path):
    (tmp_path / "b.age").write_bytes(b"12345")
    (tmp_path / "a.age").write_bytes(b"")
    (tmp_path / ".hidden.tmp").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert card_files(tmp_path) == [["a.age", 0], ["b.age", 5]]
    assert card_files(tmp_path / "gone") is None
