"""Fixtures for the ledger tests: fixed device keys, and a real ledger holding every kind of entry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from consentbox.crypto import X25519Identity
from consentbox.crypto.signing import DeviceSigningKey
from tests.support.ledgers import EPOCH, sample_ledger


@pytest.fixture(scope="session")
def device_key() -> DeviceSigningKey:
    """The box's signing key, fixed so that failures reproduce."""
    return DeviceSigningKey.generate(secret=bytes(range(32)))


@pytest.fixture(scope="session")
def other_box_key() -> DeviceSigningKey:
    """Another box's key: its entries must never pass for ours."""
    return DeviceSigningKey.generate(secret=bytes(range(64, 96)))


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory, device_key: DeviceSigningKey) -> bytes:
    """The bytes of a real ledger: two starts of the box (the first cut by a power cut), every kind of entry."""
    directory = tmp_path_factory.mktemp("sample")
    sample_ledger(directory / "ledger.jsonl", None, device_key)
    return (directory / "ledger.jsonl").read_bytes()


@pytest.fixture(scope="session")
def other_sample(tmp_path_factory: pytest.TempPathFactory, other_box_key: DeviceSigningKey) -> bytes:
    """The same story, told by another box."""
    directory = tmp_path_factory.mktemp("other")
    sample_ledger(directory / "ledger.jsonl", None, other_box_key)
    return (directory / "ledger.jsonl").read_bytes()


@pytest.fixture(scope="session")
def sibling_sample(tmp_path_factory: pytest.TempPathFactory, device_key: DeviceSigningKey) -> bytes:
    """Another ledger by the same key, a day later: as if the box's ledger had been lost and begun again."""
    directory = tmp_path_factory.mktemp("sibling")
    sample_ledger(directory / "ledger.jsonl", None, device_key, epoch=EPOCH + timedelta(days=1))
    return (directory / "ledger.jsonl").read_bytes()


@pytest.fixture
def ledger_file(tmp_path: Path, sample: bytes) -> Path:
    """A fresh copy of the sample ledger, to tamper with."""
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(sample)
    return path


@pytest.fixture(scope="session")
def reader() -> X25519Identity:
    """Whom the card's ledger extracts are encrypted to (a supervisor's or an auditor's key), fixed."""
    return X25519Identity.generate(secret=bytes(range(100, 132)))
