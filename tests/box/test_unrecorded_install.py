"""A bundle installed without its ledger entry (a power cut came between the two) is recorded at the next start."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from consentbox.box.clock import VirtualClock
from consentbox.box.config import load_config
from consentbox.box.wiring import assemble_box
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.crypto.signing import OrgSigningKey
from consentbox.ledger import verify
from consentbox.provisioning.bundle import Bundle, seal
from consentbox.provisioning.installed import install
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.simulate import simulated_config


def start_and_stop(config) -> None:
    clock = VirtualClock()
    box = assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now), audio_device="null",
                       report=lambda entry: None)
    box.shut_down()


def test_the_next_start_records_an_install_the_ledger_lacks_and_only_once(tmp_path: Path):
    org = OrgSigningKey.generate()
    (tmp_path / "org.pub").write_text(org.public_key.to_string() + "\n")
    (tmp_path / "card").mkdir()
    config = simulated_config(load_config(None), card=tmp_path / "card",
                              recipients=[X25519Identity.generate().recipient], seats=3, shared_consent=False,
                              state_dir=tmp_path / "state", org_key=tmp_path / "org.pub")
    start_and_stop(config)
    data = seal(Bundle(4, 1_790_000_000, (X25519Identity.generate().recipient,), Policy()), org)
    install(config.state_dir, data)  # ...and the power went before the job's ledger entry
    start_and_stop(config)
    start_and_stop(config)
    ledger = config.state_dir / "ledger.jsonl"
    verify(ledger)  # the chain holds
    entries = [entry for entry in map(json.loads, ledger.read_bytes().splitlines()) if entry["kind"] == "provisioning"]
    assert [entry["fields"] for entry in entries] == [
        {"bundle_version": 4, "recipients": 1, "bundle_sha256": hashlib.sha256(data).hexdigest()}]
