"""The page in a real browser (Debian's chromium, driven by Playwright): a session clicked through
with the mouse and with touch, the lights on the page checked against the box's pins at each step.

Screenshots of each step go to build/screenshots/ (not committed). A missing chromium fails the test.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, CDPSession, Page, expect, sync_playwright

from consentbox.sim.web.simulator import PanelSimulator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
TAP = 0.15  # seconds a finger rests on a button for a tap
#: How long the page may lag the pins: the pins are sampled every 20 ms, then an event and a repaint.
FOLLOW_SECONDS = 3.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless: never a browser Playwright downloads."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is not installed: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, simulator: PanelSimulator) -> Iterator[Page]:
    """The panel's page, with a touch screen as well as a mouse."""
    context = browser.new_context(viewport={"width": 1000, "height": 900}, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(simulator.url)
    expect(page.locator("#connection")).to_contain_text("live")
    yield page
    context.close()
    assert not errors, f"the page's script failed: {errors}"


# -- what the pins say, and what the page says ------------------------------------------------------

def pin_lights(simulator: PanelSimulator) -> dict[str, str]:
    """The REC LED and the STATUS LED's pin levels, read from the box's own mock pins by name."""
    panel = simulator.feed.panel
    factory = panel.rec_led.pin_factory
    pins = simulator.config.panel
    return {"rec": str(bool(factory.pin(pins.rec_led_pin).state)).lower(),
            "status": ",".join(str(int(factory.pin(name).state)) for name in pins.status_pins)}


def page_lights(page: Page) -> dict[str, str]:
    """The REC LED and the STATUS LED as the page shows them."""
    return page.evaluate("""() => ({rec: document.getElementById("rec").dataset.on,
                                    status: document.getElementById("status").dataset.levels})""")


def follows(page: Page, simulator: PanelSimulator, *, status_lit: bool | None = None) -> None:
    """Wait until the page's lights equal the pins (with the STATUS LED lit or dark, if given)."""
    deadline = time.monotonic() + FOLLOW_SECONDS
    while True:
        pins = pin_lights(simulator)
        shown = page_lights(page)
        lit = "1" in pins["status"]
        if shown == pins and (status_lit is None or lit == status_lit):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the page shows {shown} but the pins are {pins} (STATUS lit wanted: {status_lit})")
        time.sleep(0.01)


def follows_blinking(page: Page, simulator: PanelSimulator) -> None:
    """The page follows a blinking STATUS LED through both its phases."""
    follows(page, simulator, status_lit=True)
    follows(page, simulator, status_lit=False)


def shows(page: Page, *, state: str, rec: bool, colour: str, words: str | re.Pattern[str] = "") -> None:
    """The page shows `state`, the REC LED on or off, and the STATUS LED in `colour` whenever it is lit."""
    expect(page.locator("#state")).to_have_text(state)
    expect(page.locator("#rec")).to_have_attribute("data-on", str(rec).lower())
    expect(page.locator("#rec-text")).to_have_text("on: capturing audio" if rec else "off")
    expect(page.locator("#status")).to_have_attribute("data-colour", colour)
    expect(page.locator("#status-text")).to_have_text(f"{colour} (lit)")
    if words:
        expect(page.locator("#words")).to_contain_text(words)


# -- fingers ----------------------------------------------------------------------------------------

def centre(page: Page, button: str) -> tuple[float, float]:
    box = page.locator(f"#button-{button}").bounding_box()
    assert box is not None, f"no {button} button on the page"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def mouse_press(page: Page, button: str, seconds: float = TAP) -> None:
    """Press `button` with the mouse for `seconds` (mouse down, wait, mouse up)."""
    page.mouse.move(*centre(page, button))
    page.mouse.down()
    time.sleep(seconds)
    page.mouse.up()


def touch_press(page: Page, touch: CDPSession, button: str, seconds: float) -> None:
    """Press `button` with a finger for `seconds` (touchstart, wait, touchend)."""
    x, y = centre(page, button)
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    time.sleep(seconds)
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def snap(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def card_names(simulator: PanelSimulator) -> list[str]:
    return sorted(path.name for path in simulator.config.card_path.iterdir())


def page_files(page: Page) -> Callable[[], list[str]]:
    return lambda: sorted(page.locator("#files td:first-child").all_inner_texts())


def expect_files(page: Page, simulator: PanelSimulator, present: list[str], absent: list[str] = ()) -> None:
    """The page lists exactly the card's files, among them every name in `present` and none in `absent`."""
    deadline = time.monotonic() + FOLLOW_SECONDS
    while True:
        shown, real = page_files(page)(), card_names(simulator)
        if shown == real and all(n in shown for n in present) and not any(n in shown for n in absent):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the page lists {shown}; the card holds {real}; wanted {present}, not {absent}")
        time.sleep(0.05)


# -- the scenario -----------------------------------------------------------------------------------

def test_a_session_clicked_through_with_mouse_and_touch(page: Page, simulator: PanelSimulator):
    touch = page.context.new_cdp_session(page)
    timeline = page.locator("#lines")
    consent = ["record", "consent-1", "consent-2", "consent-3"]
    expect(page.locator("#buttons button")).to_have_text(["RECORD", "CONSENT 1", "CONSENT 2", "CONSENT 3"])
    assert [page.locator(f"#button-{name}").bounding_box()["width"] >= 80 for name in consent] == [True] * 4

    # Ready, idle: steady green.
    shows(page, state="IDLE", rec=False, colour="green", words="ready")
    follows(page, simulator, status_lit=True)
    snap(page, "01-idle")

    # Set-up with the mouse: amber, blinking the two consents still missing.
    mouse_press(page, "record")
    shows(page, state="COLLECTING", rec=False, colour="amber", words="2 consents still missing")
    follows_blinking(page, simulator)
    expect(timeline).to_contain_text("set up for 2 parties")
    snap(page, "02-collecting")

    mouse_press(page, "consent-1")
    expect(page.locator("#words")).to_contain_text("1 consent still missing")
    expect(timeline).to_contain_text("seat 1 consents")

    # The second consent by touch (a tap of the touch screen): everyone has consented, green fast blink.
    page.touchscreen.tap(*centre(page, "consent-2"))
    shows(page, state="READY", rec=False, colour="green", words="hold RECORD 1 s to record")
    follows_blinking(page, simulator)
    expect(timeline).to_contain_text("seat 2 consents")
    snap(page, "03-ready")

    # Hold RECORD past record_hold: REC on, the files appear on the card and on the page, the meter moves.
    mouse_press(page, "record", 1.3)
    shows(page, state="RECORDING", rec=True, colour="green", words="tap RECORD to pause")
    follows_blinking(page, simulator)
    expect(timeline).to_contain_text("REC LED on")
    session = re.search(r"session (\w+) set up", timeline.inner_text())[1]
    first_files = [f"{session}.manifest.age", f"{session}.000.wav.age"]
    expect_files(page, simulator, first_files)
    # The beeps sound a quarter of each second; expect() looks too seldom (at last once a second, which can land
    # in the gaps every time), so the page is watched every 20 ms.
    page.wait_for_function("() => /peak -1[23] dBFS/.test(document.getElementById('level-text').textContent)",
                           polling=20, timeout=FOLLOW_SECONDS * 1000)
    snap(page, "04-recording")

    # Tap RECORD: paused, REC off (capture stopped first), steady amber; the meter is off.
    mouse_press(page, "record")
    shows(page, state="PAUSED", rec=False, colour="amber", words="tap RECORD to resume")
    follows(page, simulator, status_lit=True)
    expect(page.locator("#level-text")).to_have_text("not recording")
    snap(page, "05-paused")

    # Tap again: recording again, in a new segment.
    mouse_press(page, "record")
    shows(page, state="RECORDING", rec=True, colour="green")
    follows(page, simulator)
    expect(timeline).to_contain_text("capture opened")
    expect_files(page, simulator, [*first_files, f"{session}.001.wav.age"])

    # Hold RECORD past end_hold: the session ends, its files stay on the card.
    mouse_press(page, "record", 2.5)
    shows(page, state="IDLE", rec=False, colour="green", words="ready")
    follows(page, simulator, status_lit=True)
    expect(timeline).to_contain_text(f"session {session} ended (ended), recording kept")
    expect_files(page, simulator, first_files)
    snap(page, "06-ended")

    # A second session, consents by touch, recorded, then seat 1 holds CONSENT (a touch hold) to withdraw.
    mouse_press(page, "record")
    expect(page.locator("#state")).to_have_text("COLLECTING")
    touch_press(page, touch, "consent-1", TAP)
    page.touchscreen.tap(*centre(page, "consent-3"))
    expect(page.locator("#state")).to_have_text("READY")
    mouse_press(page, "record", 1.3)
    shows(page, state="RECORDING", rec=True, colour="green")
    second = re.findall(r"session (\w+) set up", timeline.inner_text())[0]  # newest first
    assert second != session
    expect_files(page, simulator, [f"{second}.000.wav.age"])
    touch_press(page, touch, "consent-1", 2.3)
    shows(page, state="WITHDRAWN", rec=False, colour="red", words="consent withdrawn")
    follows_blinking(page, simulator)
    expect(timeline).to_contain_text("consent withdrawn at seat 1")
    expect(timeline).to_contain_text(f"session {second} ended (withdrawn), recording destroyed")
    expect_files(page, simulator, first_files, absent=[f"{second}.manifest.age", f"{second}.000.wav.age"])
    snap(page, "07-withdrawn")


def seat_follows(page: Page, simulator: PanelSimulator, seat: int, *, lit: bool) -> None:
    """Wait until seat `seat`'s lamp on the page is its LED's pin, and that pin is `lit`."""
    pin_name = simulator.config.panel.seat_leds[seat - 1]
    pin = simulator.feed.panel.rec_led.pin_factory.pin(pin_name)
    deadline = time.monotonic() + FOLLOW_SECONDS
    while True:
        shown = page.locator(f"#seat-consent-{seat}").get_attribute("data-on")
        if shown == str(pin.state).lower() == str(lit).lower():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"seat {seat}: the page shows {shown}, the pin is {pin.state}, wanted lit={lit}")
        time.sleep(0.01)


def seat_shows(page: Page, seat: int, shows: str, words: str) -> None:
    """Seat `seat`'s LED is said to be `shows` (lit, blinking, dark), in `words`."""
    expect(page.locator(f"#seat-consent-{seat}")).to_have_attribute("data-shows", shows)
    expect(page.locator(f"#seat-consent-{seat}-text")).to_have_text(words)


#: RECORD's end_hold for the seat LED test: the missing seats blink from record_hold until then, time to watch.
SLOW_END_HOLD = 6.0


@pytest.mark.parametrize("simulator", [{"end_hold": SLOW_END_HOLD}], indirect=True)
def test_each_seat_led_shows_its_consent_and_the_missing_ones_blink(page: Page, simulator: PanelSimulator):
    expect(page.locator(".seat")).to_have_count(3)
    policy = simulator.box.policy
    hint = page.locator("#hint")
    for words in [  # every gesture, with the policy's times
        f"A tap is a press let go within {policy.record_hold:g} s", 'sound "hold longer"',
        "tap again to add a party", f"hold it {policy.record_hold:g} s to record, or tap it to cancel the set-up",
        "the seats still missing blink",
        f"held on to {SLOW_END_HOLD:g} s it lowers the headcount to the consents so far, or with none cancels",
        f"tap RECORD to pause, hold it {SLOW_END_HOLD:g} s to end", "a late arrival taps a CONSENT button",
        f'any press sounds "hold to withdraw": hold {policy.withdraw_hold:g} s to withdraw',
        f"After a session ends, for {policy.withdraw_window / 60:g} min and until the next set-up",
    ]:
        expect(hint).to_contain_text(words)
    mouse_press(page, "record")
    expect(page.locator("#state")).to_have_text("COLLECTING")
    for seat in (1, 2, 3):
        seat_shows(page, seat, "dark", "dark")
        seat_follows(page, simulator, seat, lit=False)

    mouse_press(page, "consent-1")
    seat_shows(page, 1, "lit", "lit: consented")
    seat_follows(page, simulator, 1, lit=True)
    seat_shows(page, 2, "dark", "dark")

    # RECORD held too early: refused, and the seats still missing blink, on the pins and on the page.
    page.mouse.move(*centre(page, "record"))
    page.mouse.down()
    seat_shows(page, 2, "blinking", "blinking: consent missing")
    seat_shows(page, 3, "blinking", "blinking: consent missing")
    snap(page, "08-missing-seats-blink")
    for _ in range(2):
        seat_follows(page, simulator, 2, lit=True)
        seat_follows(page, simulator, 2, lit=False)
    seat_follows(page, simulator, 1, lit=True)
    # Held on past end_hold: the headcount is lowered to the one consent, and nothing blinks any more.
    expect(page.locator("#state")).to_have_text("READY", timeout=(SLOW_END_HOLD + FOLLOW_SECONDS) * 1000)
    page.mouse.up()
    seat_shows(page, 1, "lit", "lit: consented")
    seat_shows(page, 2, "dark", "dark")
    seat_follows(page, simulator, 2, lit=False)
    seat_follows(page, simulator, 1, lit=True)

    # A tap of RECORD when everyone has consented cancels the set-up: every seat LED goes dark.
    mouse_press(page, "record")
    expect(page.locator("#state")).to_have_text("IDLE")
    seat_shows(page, 1, "dark", "dark")
    seat_follows(page, simulator, 1, lit=False)


def test_the_page_says_when_the_box_has_stopped(page: Page, simulator: PanelSimulator):
    simulator.stop()
    expect(page.locator("#connection")).to_contain_text("the box has stopped")
    expect(page.locator("#rec")).to_have_attribute("data-on", "unknown")
    expect(page.locator("#status")).to_have_attribute("data-colour", "unknown")
    expect(page.locator("#seat-consent-1")).to_have_attribute("data-on", "unknown")


def test_a_button_held_with_the_keyboard_is_held_on_the_box(page: Page, simulator: PanelSimulator):
    page.focus("#button-record")
    page.keyboard.down("Space")
    expect(page.locator("#button-record")).to_have_attribute("data-pressed", "true")  # the pin is down
    time.sleep(TAP)
    page.keyboard.up("Space")
    shows(page, state="COLLECTING", rec=False, colour="amber", words="2 consents still missing")
    expect(page.locator("#button-record")).to_have_attribute("data-pressed", "false")
