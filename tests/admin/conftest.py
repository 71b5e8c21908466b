"""Fixtures of the admin tool's tests: a box's ledger beside the recordings, and the workstation's trust in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentbox.crypto import X25519Identity
from tests.support.sealed import SealingBox


@pytest.fixture
def box_ledger(tmp_path: Path, card: Path, identity: X25519Identity) -> SealingBox:
    """The ledger of the box that records `card`: it signs each session's seals and events."""
    return SealingBox(tmp_path / "box", card, [identity.recipient])


@pytest.fixture
def trusted_boxes(tmp_path: Path, box_ledger: SealingBox) -> Path:
    """The supervisor's trusted boxes file, with that box in it."""
    return box_ledger.trusted(tmp_path / "boxes")
