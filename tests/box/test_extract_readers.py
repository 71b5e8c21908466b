"""The card's ledger extracts are encrypted to the recipients and the auditors the box records under now."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentbox.admin.extracts import load_extract
from consentbox.box.clock import VirtualClock
from consentbox.box.config import load_config
from consentbox.box.wiring import assemble_box
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.crypto.signing import OrgSigningKey
from consentbox.ledger import Kind
from consentbox.ledger.extract import ExtractError
from consentbox.provisioning.bundle import Bundle, seal
from consentbox.provisioning.installed import install
from consentbox.recording.manifest import extract_name, manifest_name
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.simulate import simulated_config

SESSION = "0123456789abcdef"
SUPERVISOR, AUDITOR, NEW_AUDITOR, STRANGER = (X25519Identity.generate(secret=bytes([n]) * 32) for n in range(1, 5))


def test_extracts_go_to_the_recipients_and_the_auditors_of_the_bundle_in_force(tmp_path: Path):
    org = OrgSigningKey.generate()
    (tmp_path / "org.pub").write_text(org.public_key.to_string() + "\n")
    card = tmp_path / "card"
    card.mkdir()
    config = simulated_config(load_config(None), card=card, recipients=[STRANGER.recipient], seats=2,
                              shared_consent=False, state_dir=tmp_path / "state", org_key=tmp_path / "org.pub")
    config.state_dir.mkdir()
    install(config.state_dir, seal(Bundle(1, 1_790_000_000, (SUPERVISOR.recipient,), Policy(),
                                          auditors=(AUDITOR.recipient,)), org))
    clock = VirtualClock()
    box = assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now), audio_device="null",
                       report=lambda entry: None)
    box.check_readiness()
    box.ledger.append(Kind.SETUP, SESSION, headcount=1, policy_sha256="0" * 64)
    (card / manifest_name(SESSION)).write_bytes(b"age ciphertext")  # the session's files are on the card
    box.ledger.append(Kind.START, SESSION)
    extract = card / extract_name(SESSION)
    for reader in (SUPERVISOR, AUDITOR):
        assert [entry.kind for entry in load_extract(extract, [reader], session=SESSION).entries] == [
            Kind.SETUP, Kind.START]
    with pytest.raises(ExtractError, match="none of the identities"):
        load_extract(extract, [STRANGER])  # the configuration's recipient: the installed bundle alone decides

    # A new bundle, taken up while the box is idle: the next extract is for its auditor, not the old one's.
    install(config.state_dir, seal(Bundle(2, 1_790_000_001, (SUPERVISOR.recipient,), Policy(),
                                          auditors=(NEW_AUDITOR.recipient,)), org))
    box.check_readiness()
    assert box.auditors == (NEW_AUDITOR.recipient,)
    box.ledger.append(Kind.DESTRUCTION, SESSION, files=1, cause="withdrawn", due="2026-06-05")
    assert load_extract(extract, [NEW_AUDITOR], session=SESSION).entries[-1].kind is Kind.DESTRUCTION
    with pytest.raises(ExtractError, match="none of the identities"):
        load_extract(extract, [AUDITOR])
    box.shut_down()
