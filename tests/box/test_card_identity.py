"""The box gives each card it uses an id (issue 15, item 5): at start, and when a card comes back.

The expiry index then says which card each session was recorded on, so that the wipe can tell a
session gone from its card from a session on another card (tests/retention/test_gone.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consentbox.box.clock import VirtualClock
from consentbox.box.config import load_config
from consentbox.box.wiring import assemble_box
from consentbox.crypto import X25519Identity
from consentbox.recording.card_id import CARD_ID_NAME, read_card_id
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.simulate import simulated_config


def _box(tmp_path: Path, card: Path, report: list[dict[str, Any]]):
    config = simulated_config(load_config(None), card=card, recipients=[X25519Identity.generate().recipient],
                              seats=2, shared_consent=False, state_dir=tmp_path / "state")
    clock = VirtualClock()
    return assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now), audio_device="null",
                        report=report.append)


def test_a_card_gets_an_id_at_start_and_each_card_that_comes_back_gets_its_own(tmp_path: Path):
    card, report = tmp_path / "card", []
    card.mkdir()
    box = _box(tmp_path, card, report)
    box.check_readiness()
    first = read_card_id(card)
    assert first is not None, "the card in the slot at start got no id"

    card.rename(tmp_path / "first-card")
    box.check_readiness()  # no card
    card.mkdir()  # another card
    box.check_readiness()
    second = read_card_id(card)
    assert second is not None and second != first

    card.rename(tmp_path / "second-card")
    (tmp_path / "first-card").rename(card)  # the first card back keeps its id
    box.check_readiness()
    assert read_card_id(card) == first
    box.shut_down()
    assert [entry for entry in report if entry["event"] == "card"] == []


def test_a_damaged_id_is_reported_and_left_alone(tmp_path: Path):
    card, report = tmp_path / "card", []
    card.mkdir()
    (card / CARD_ID_NAME).write_bytes(b"not an id\n")
    box = _box(tmp_path, card, report)
    box.check_readiness()
    box.shut_down()
    [problem] = [entry for entry in report if entry["event"] == "card"]
    assert problem["error"].startswith(f"the card's id {card / CARD_ID_NAME} is not 16 hex digits")
    assert (card / CARD_ID_NAME).read_bytes() == b"not an id\n"
