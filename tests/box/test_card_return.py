"""A card back in the slot gets the ledger entries it missed at the next readiness check, not at the next entry."""

from __future__ import annotations

from pathlib import Path

from consentbox.box.clock import VirtualClock
from consentbox.box.config import load_config
from consentbox.box.wiring import assemble_box
from consentbox.crypto import X25519Identity
from consentbox.ledger import Kind
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.simulate import simulated_config


def test_the_card_s_ledger_catches_up_as_soon_as_the_card_is_back(tmp_path: Path):
    card = tmp_path / "card"
    config = simulated_config(load_config(None), card=card, recipients=[X25519Identity.generate().recipient],
                              seats=2, shared_consent=False, state_dir=tmp_path / "state")
    clock = VirtualClock()
    box = assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now), audio_device="null",
                       report=lambda entry: None)
    box.check_readiness()  # no card
    box.ledger.append(Kind.FAULT, problem=1)  # written while the card is out
    card.mkdir()
    assert not (card / "ledger.jsonl").exists()
    box.check_readiness()
    assert (card / "ledger.jsonl").read_bytes() == (config.state_dir / "ledger.jsonl").read_bytes()
    box.shut_down()
