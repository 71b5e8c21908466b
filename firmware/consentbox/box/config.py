"""The box's configuration: the shipped defaults.toml, overridden key by key by one TOML file.

Everything is parsed here, once, into frozen values; anything unknown or out of range is a one-line
`PolicyError` that names the file and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from consentbox.core.errors import PolicyError
from consentbox.core.policy import Policy
from consentbox.crypto import KeyFormatError, Recipient, check_compatible, parse_recipient
from consentbox.crypto.exposure import shown
from consentbox.hw.ports import PanelConfig, StatusLeds


@dataclass(frozen=True)
class Config:
    """Everything the box needs to know before it starts."""

    policy: Policy
    panel: PanelConfig
    audio_device: str
    card_path: Path
    require_mount: bool
    card_file_systems: frozenset[str]  # the types a required card mount may have (exfat, vfat as deployed)
    recipients: tuple[Recipient, ...]  # until a provisioning bundle is installed
    org_key: Path  # the organisation's public key file: provisioning bundles must verify with it
    state_dir: Path  # the box's own files (ledger, device key, journal, installed bundle), never on the card
    web_port: int  # `consentbox panel`: the simulated front panel's page, on 127.0.0.1 only


_SECTIONS = ("policy", "panel", "audio", "card", "keys", "box", "web")


def load_config(path: Path | None = None) -> Config:
    """Read the defaults, then `path` over them (if given), and validate everything."""
    values = tomllib.loads(files("consentbox.box").joinpath("defaults.toml").read_text(encoding="utf-8"))
    source = "defaults.toml"
    if path is not None:
        source = str(path)
        try:
            override = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise PolicyError(f"{source}: not valid TOML: {error}") from None
        _merge(values, override, source)
    return _build(values, source)


def _merge(values: dict[str, Any], override: dict[str, Any], source: str) -> None:
    for section, table in override.items():
        if section not in _SECTIONS:
            raise PolicyError(f"{source}: unknown section [{section}] (known: {', '.join(_SECTIONS)})")
        if not isinstance(table, dict):
            raise PolicyError(f"{source}: [{section}] must be a table")
        if section != "policy":  # Policy.from_mapping names unknown policy keys itself
            for key in table:
                if key not in values[section]:
                    raise PolicyError(f"{source}: unknown key {section}.{key}")
        values[section].update(table)


def _build(values: dict[str, Any], source: str) -> Config:
    panel = values["panel"]
    get = _Getter(source)
    status_pins = get.strings(panel, "panel.status_pins")
    if len(status_pins) != 3:
        raise PolicyError(f"{source} key panel.status_pins: needs exactly 3 pins, got {len(status_pins)}")
    consent_pins = get.strings(panel, "panel.consent_pins")
    if not consent_pins:
        raise PolicyError(f"{source} key panel.consent_pins: needs at least one CONSENT button pin")
    mode = get.choice(panel, "panel.consent_mode", ("separate", "shared"))
    seat_led_pins = get.strings(panel, "panel.seat_led_pins")
    seats = 1 if mode == "shared" else len(consent_pins)
    if seat_led_pins and len(seat_led_pins) < seats:  # a seat without its LED would look like one not consenting
        raise PolicyError(f"{source} key panel.seat_led_pins: {len(seat_led_pins)} pin(s) for {seats} CONSENT "
                          "buttons: give one per seat, or [] for a panel wired without seat LEDs")
    leds = get.choice(panel, "panel.status_leds", tuple(s.value for s in StatusLeds))
    bounce = panel["bounce_time"]
    if isinstance(bounce, bool) or not isinstance(bounce, (int, float)) or not 0 <= bounce <= 0.5:
        raise PolicyError(f"{source} key panel.bounce_time: expected 0 to 0.5 seconds, got {shown(bounce)}")
    recipients = []
    for text in get.strings(values["keys"], "keys.recipients"):
        try:
            recipients.append(parse_recipient(text))
        except KeyFormatError as error:
            raise PolicyError(f"{source} key keys.recipients: {error}") from None
    try:
        check_compatible(recipients)
    except KeyFormatError as error:
        raise PolicyError(f"{source} key keys.recipients: {error}") from None
    panel_config = PanelConfig(
        pin_factory=get.choice(panel, "panel.pin_factory", ("default", "mock")),
        record_pin=get.string(panel, "panel.record_pin"),
        consent_pins=consent_pins,
        seat_led_pins=seat_led_pins,
        shared_consent=mode == "shared",
        pull_up=get.boolean(panel, "panel.pull_up"),
        bounce_time=float(bounce),
        rec_led_pin=get.string(panel, "panel.rec_led_pin"),
        status_leds=StatusLeds(leds),
        status_pins=(status_pins[0], status_pins[1], status_pins[2]),
        buzzer_pin=get.string(panel, "panel.buzzer_pin", allow_empty=True),
    )
    _refuse_shared_pins(panel_config, source)
    return Config(
        policy=Policy.from_mapping(values["policy"], source=source),
        panel=panel_config,
        audio_device=get.string(values["audio"], "audio.device"),
        card_path=Path(get.string(values["card"], "card.path")),
        require_mount=get.boolean(values["card"], "card.require_mount"),
        card_file_systems=_file_systems(get, values["card"]),
        recipients=tuple(recipients),
        org_key=Path(get.string(values["keys"], "keys.org_key")),
        state_dir=Path(get.string(values["box"], "box.state_dir")),
        web_port=_web_port(values["web"]["port"], source),
    )


def _refuse_shared_pins(panel: PanelConfig, source: str) -> None:
    # gpiozero would refuse the second part on a pin only as the box starts, naming no key.
    used: dict[str, str] = {}
    for key, pin in _panel_pins(panel):
        name = _pin_name(pin)
        if name in used:
            raise PolicyError(f"{source} key {key}: {pin} is already {used[name]}; give each part a pin of its own")
        used[name] = key


def _panel_pins(panel: PanelConfig) -> Iterator[tuple[str, str]]:
    """(key, pin) of every pin the panel uses."""
    yield "panel.record_pin", panel.record_pin
    for index, pin in enumerate(panel.consent_pins[:panel.seats], start=1):
        yield f"panel.consent_pins[{index}]", pin
    for index, pin in enumerate(panel.seat_leds, start=1):
        yield f"panel.seat_led_pins[{index}]", pin
    yield "panel.rec_led_pin", panel.rec_led_pin
    for index, pin in enumerate(panel.status_pins, start=1):
        yield f"panel.status_pins[{index}]", pin
    if panel.buzzer_pin:
        yield "panel.buzzer_pin", panel.buzzer_pin


def _pin_name(pin: str) -> str:
    """One name for the ways gpiozero spells a BCM number (GPIO17, BCM17, 17); any other spelling as written."""
    match = re.fullmatch(r"(?:GPIO|BCM)?(\d+)", pin.strip().upper())
    return f"GPIO{int(match[1])}" if match else pin.strip().upper()


def _file_systems(get: _Getter, card: dict[str, Any]) -> frozenset[str]:
    names = get.strings(card, "card.file_systems")
    if not names:  # no type would refuse every card; naming the accepted ones keeps the choice explicit
        raise get.fail("card.file_systems", "at least one file system type, such as 'exfat'", names)
    return frozenset(names)


def _web_port(port: Any, source: str) -> int:
    # 0 lets the system choose a free port (the page's address is printed at start).
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise PolicyError(f"{source} key web.port: expected a TCP port, 0 to 65535, got {shown(port)}")
    return port


class _Getter:
    """Typed reads of config values whose errors name the file and the dotted key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _value(self, table: dict[str, Any], key: str) -> Any:
        return table[key.split(".")[-1]]

    def fail(self, key: str, expected: str, value: Any) -> PolicyError:
        # A secret key pasted into the file (recipients = "AGE-SECRET-KEY-1…", say) is never shown.
        return PolicyError(f"{self.source} key {key}: expected {expected}, got {shown(value)}")

    def string(self, table: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
        value = self._value(table, key)
        if not isinstance(value, str) or (not value and not allow_empty):
            raise self.fail(key, "a non-empty string", value)
        return value

    def strings(self, table: dict[str, Any], key: str) -> tuple[str, ...]:
        value = self._value(table, key)
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise self.fail(key, "a list of strings", value)
        return tuple(value)

    def boolean(self, table: dict[str, Any], key: str) -> bool:
        value = self._value(table, key)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def choice(self, table: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
        value = self._value(table, key)
        if value not in choices:
            raise self.fail(key, " or ".join(repr(c) for c in choices), value)
        return str(value)
