"""A card back in the slot gets the ledger extracts it missed at the next readiness check, not at the next entry."""

from __future__ import annotations

from pathlib import Path

from consentbox.admin.extracts import load_extract
from consentbox.box.clock import VirtualClock
from consentbox.box.config import load_config
from consentbox.box.wiring import assemble_box
from consentbox.core.reasons import EndReason
from consentbox.crypto import X25519Identity
from consentbox.ledger import Kind, verify
from consentbox.recording.manifest import extract_name, manifest_name
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.simulate import simulated_config

SESSION = "0123456789abcdef"


def test_the_card_s_extracts_catch_up_as_soon_as_the_card_is_back(tmp_path: Path):
    card, away = tmp_path / "card", tmp_path / "away"
    supervisor = X25519Identity.generate()
    config = simulated_config(load_config(None), card=card, recipients=[supervisor.recipient], seats=2,
                              shared_consent=False, state_dir=tmp_path / "state")
    card.mkdir()
    clock = VirtualClock()
    box = assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now), audio_device="null",
                       report=lambda entry: None)
    box.check_readiness()
    box.ledger.append(Kind.SETUP, SESSION, headcount=1, policy_sha256="0" * 64)
    (card / manifest_name(SESSION)).write_bytes(b"age ciphertext")  # the session's files are on the card
    box.ledger.append(Kind.START, SESSION)
    card.rename(away)  # the card is pulled out
    box.check_readiness()
    box.ledger.append(Kind.END, SESSION, reason=EndReason.CARD_LOST, kept=True)  # written while the card is out
    away.rename(card)
    path = card / extract_name(SESSION)
    assert load_extract(path, [supervisor], session=SESSION).entries[-1].kind is Kind.START
    box.check_readiness()
    ledger = config.state_dir / "ledger.jsonl"
    assert load_extract(path, [supervisor], session=SESSION).entries == verify(ledger, session=SESSION).selected
    box.shut_down()
