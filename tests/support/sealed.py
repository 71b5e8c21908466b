"""A box's ledger beside `SessionFiles`, for tests that record without the whole box: each seal and each
event of a session signed into a real ledger (the box's writer, a device key, the card's extracts), as
the box does, and the trusted boxes file a workstation pins that box with.

The box itself (`box/box.py`) appends the same entries through the same writer; tests of the box's own
wiring record with it (tests/box/test_seals.py, tests/system/conftest.py). This is for the admin tool's
tests, which need exact audio and every policy, and so record with `SessionFiles` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from consentbox.admin.boxes import TrustedBox, trust_box
from consentbox.crypto import X25519Recipient
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import Kind
from consentbox.recording.seal import Seal
from tests.support.ledgers import SteppingClocks, open_ledger


class SealingBox:
    """A box's device key and ledger under `state`, keeping the extracts of its sessions on `card` for
    `readers`. `record` appends an event, `on_seal(session)` is the `on_seal` of a session's files."""

    def __init__(self, state: Path, card: Path, readers: Sequence[X25519Recipient], *,
                 key: DeviceSigningKey | None = None) -> None:
        state.mkdir(parents=True, exist_ok=True)
        self.key = key or DeviceSigningKey.generate()
        self.clocks = SteppingClocks()
        self.ledger = open_ledger(state / "ledger.jsonl", card, self.key, self.clocks, readers=readers)

    def record(self, kind: Kind, session: str, **fields: Any) -> None:
        """Append the entry of one event of `session`, a second after the last."""
        self.clocks.advance(1.0)
        self.ledger.append(kind, session, **fields)

    def on_seal(self, session: str) -> Callable[[Seal], None]:
        """What the box does with each seal of `session`'s files: a signed `seal` entry."""
        return lambda seal: self.ledger.append(Kind.SEAL, session, **asdict(seal))

    def trusted(self, path: Path, label: str = "Room 1") -> Path:
        """The trusted boxes file at `path`, with this box in it (IT's `trust-box`)."""
        trust_box(path, TrustedBox(self.key.public_key, label))
        return path
