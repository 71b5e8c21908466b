"""deploy/wiring.svg and the pin table in deploy/README.md: up to date, and true to the configured pins.

Where each pin sits on the header is taken from gpiozero's own board data, not from deploy/wiring.py's
map, so a wrong map cannot pass by agreeing with itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "deploy" / "wiring.py"
SVG = REPO / "deploy" / "wiring.svg"
README = REPO / "deploy" / "README.md"
DEFAULTS = REPO / "firmware" / "consentbox" / "box" / "defaults.toml"
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def board():
    """The 40-pin header as gpiozero knows it (any 40-pin model has the same J8)."""
    factory = MockFactory()
    try:
        yield factory.board_info
    finally:
        factory.close()


def header_pin(board, name: str) -> int:
    """The physical J8 pin gpiozero finds for `name` (GPIO17, BCM17, 17, BOARD11, J8:11)."""
    found = [(header.name, pin.number) for header, pin in board.find_pin(name)]
    assert len(found) == 1 and found[0][0] == "J8", f"{name}: {found}"
    return found[0][1]


def run_wiring(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run deploy/wiring.py as `make wiring` does, writing into tmp_path."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=tmp_path)


def regenerate(tmp_path: Path, *args: str) -> tuple[Path, Path]:
    """A fresh SVG and a fresh copy of the README's table, from the shipped pins (plus `args`)."""
    readme = tmp_path / "README.md"
    shutil.copyfile(README, readme)
    svg = tmp_path / "wiring.svg"
    result = run_wiring(tmp_path, "--svg", str(svg), "--readme", str(readme), *args)
    assert result.returncode == 0, result.stderr
    return svg, readme


def header_groups(svg: Path) -> dict[int, ET.Element]:
    """Each header pin's group in the drawing, by physical pin number."""
    groups = {int(g.get("data-pin")): g for g in ET.parse(svg).getroot().iter(f"{SVG_NS}g") if g.get("data-pin")}
    assert sorted(groups) == list(range(1, 41))
    return groups


def expected_parts(panel: dict) -> dict[str, str]:
    """What the drawing must show on each configured pin: {pin name as configured: part}."""
    parts = {panel["record_pin"]: "RECORD button"}
    if panel["consent_mode"] == "shared":
        parts[panel["consent_pins"][0]] = "CONSENT button (shared)"
        if panel["seat_led_pins"]:
            parts[panel["seat_led_pins"][0]] = "seat LED (green), shared CONSENT"
    else:
        for seat, pin in enumerate(panel["consent_pins"], start=1):
            parts[pin] = f"CONSENT button, seat {seat}"
        for seat, pin in enumerate(panel["seat_led_pins"][:len(panel["consent_pins"])], start=1):
            parts[pin] = f"seat LED (green), seat {seat}"
    parts[panel["rec_led_pin"]] = "REC LED (red)"
    if panel["status_leds"] == "rgb":
        names = ("STATUS LED (RGB), red", "STATUS LED (RGB), green", "STATUS LED (RGB), blue")
    else:
        names = ("STATUS LED, green", "STATUS LED, amber", "STATUS LED, red")
    parts.update(zip(panel["status_pins"], names, strict=True))
    if panel["buzzer_pin"]:
        parts[panel["buzzer_pin"]] = "buzzer"
    return parts


def check_drawing(svg: Path, panel: dict, board) -> None:
    """Every configured pin is drawn, named as on the board, at its physical header pin; nothing else is."""
    groups = header_groups(svg)
    header = board.headers["J8"].pins
    for configured, part in expected_parts(panel).items():
        number = header_pin(board, configured)
        group = groups[number]
        assert group.get("data-part") == part, f"{configured} (pin {number})"
        labels = [t.text for t in group.iter(f"{SVG_NS}text")]
        assert header[number].name in labels, f"pin {number} should read {header[number].name}, reads {labels}"
    others = {n: g.get("data-part") for n, g in groups.items() if g.get("data-part")}
    for number, part in others.items():
        if part == "ground rail":
            assert header[number].name == "GND"
        elif part == "buzzer supply":
            assert header[number].name == "5V"
            assert panel["buzzer_pin"]
    assert "ground rail" in others.values()


def shipped_panel() -> dict:
    """The [panel] table of the shipped defaults."""
    with open(DEFAULTS, "rb") as src:
        return tomllib.load(src)["panel"]


def test_the_committed_diagram_and_table_are_up_to_date(tmp_path):
    svg, readme = regenerate(tmp_path)
    assert svg.read_bytes() == SVG.read_bytes(), "deploy/wiring.svg is stale: run `make wiring` and commit it"
    assert readme.read_text() == README.read_text(), "the pin table in deploy/README.md is stale: run `make wiring`"


def test_the_same_pins_give_the_same_bytes(tmp_path):
    first, _ = regenerate(tmp_path)
    again = tmp_path / "again"
    again.mkdir()
    second, _ = regenerate(again)
    assert first.read_bytes() == second.read_bytes()


def test_every_shipped_pin_is_drawn_at_its_header_pin(board):
    check_drawing(SVG, shipped_panel(), board)


def test_the_drawn_header_is_the_raspberry_pi_header(board):
    header = board.headers["J8"].pins
    for number, group in header_groups(SVG).items():
        assert group.get("data-name") == header[number].name, f"pin {number}"


def wiring_table(readme: Path) -> str:
    """The generated pin table of `readme`, between its markers."""
    text = readme.read_text()
    return text[text.index("<!-- wiring table"):text.index("<!-- end of wiring table -->")]


def test_the_readme_table_gives_each_shipped_pin_its_header_pin(board):
    table = wiring_table(README)
    rows = {cells[0]: cells for line in table.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    for configured, part in expected_parts(shipped_panel()).items():
        number = header_pin(board, configured)
        assert rows[part][1:3] == [board.headers["J8"].pins[number].name, str(number)], part
    grounds = [int(n) for n in re.findall(r"\d+", rows["ground rail"][2].split("(")[0])]
    assert grounds and all(board.headers["J8"].pins[n].name == "GND" for n in grounds)


def test_another_panel_is_drawn_where_it_is_wired(tmp_path, board):
    config = tmp_path / "config.toml"
    config.write_text('[panel]\nconsent_mode = "shared"\nconsent_pins = ["BCM4"]\nrecord_pin = "BOARD22"\n'
                      'rec_led_pin = "GPIO24"\nstatus_leds = "three"\nstatus_pins = ["GPIO12", "16", "J8:38"]\n'
                      'buzzer_pin = ""\nseat_led_pins = ["BOARD8"]\n')
    svg, _ = regenerate(tmp_path, "--config", str(config), "--no-readme")
    panel = shipped_panel() | tomllib.loads(config.read_text())["panel"]
    check_drawing(svg, panel, board)
    assert not any(g.get("data-part") == "buzzer supply" for g in header_groups(svg).values())


def test_a_panel_without_seat_leds_is_drawn_without_them(tmp_path, board):
    config = tmp_path / "config.toml"
    config.write_text("[panel]\nseat_led_pins = []\n")
    svg, readme = regenerate(tmp_path, "--config", str(config))
    panel = shipped_panel() | tomllib.loads(config.read_text())["panel"]
    check_drawing(svg, panel, board)
    parts = [g.get("data-part") or "" for g in header_groups(svg).values()]
    assert not any(part.startswith("seat LED") for part in parts)
    assert "seat LED" not in wiring_table(readme) and "seat LED" in wiring_table(README)


@pytest.mark.parametrize(("panel", "message"), [
    ('rec_led_pin = "GPIO17"', "key panel.rec_led_pin: GPIO17 is already panel.record_pin"),
    ('seat_led_pins = ["GPIO24", "GPIO5", "GPIO12"]', "key panel.rec_led_pin: GPIO5 is already panel.seat_led_pins[2]"),
    ('seat_led_pins = ["GPIO24"]', "key panel.seat_led_pins: 1 pin(s) for 3 CONSENT buttons"),
    ('buzzer_pin = "GPIO2"', "key panel.buzzer_pin: GPIO2 (pin 3) is the I2C bus"),
    ('record_pin = "BOARD6"', "key panel.record_pin: 'BOARD6' is not a GPIO pin"),
    ("pull_up = false", "key panel.pull_up:"),
    ('recordpin = "GPIO4"', "key panel.recordpin: unknown key"),
])
def test_pins_that_cannot_be_wired_are_refused_naming_the_key(tmp_path, panel, message):
    config = tmp_path / "config.toml"
    config.write_text(f"[panel]\n{panel}\n")
    result = run_wiring(tmp_path, "--config", str(config), "--svg", str(tmp_path / "out.svg"), "--no-readme")
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.svg").exists()
