"""The box enters a session in the expiry index before anything else of its recording: before the ledger's
`expiry` entry (a ledger that cannot be written never keeps a recording longer) and before its first file
on the card (no file escapes the wipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consentbox.ledger import Kind
from consentbox.ledger.writer import Ledger, LedgerWriteError
from consentbox.retention.index import RetentionIndex
from consentbox.state.files import LEDGER
from tests.support.simulated import play

RECORDED = "0 tap record\n1 tap consent 1\n2 tap consent 2\n4 hold record 1.2\n8 hold record 2.5\n"


def _session_files(card: Path) -> list[str]:
    return sorted(path.name for path in card.iterdir() if path.name != "consentbox-card.id")


def test_the_index_entry_comes_before_the_expiry_entry_and_both_before_the_first_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    card = tmp_path / "card"
    steps: list[tuple[Any, ...]] = []  # what happened, with the session's files on the card at the time
    add, append = RetentionIndex.add, Ledger.append

    def indexed(index: RetentionIndex, session: str, *args: Any, **kwargs: Any) -> Any:
        steps.append(("index", session, _session_files(card)))
        return add(index, session, *args, **kwargs)

    def appended(ledger: Ledger, kind: Kind, session: str | None = None, /, **kwargs: Any) -> Any:
        if kind is Kind.EXPIRY:
            indexed_now = session in RetentionIndex(tmp_path / "state").entries()
            steps.append(("ledger", session, _session_files(card), indexed_now))
        return append(ledger, kind, session, **kwargs)

    monkeypatch.setattr(RetentionIndex, "add", indexed)
    monkeypatch.setattr(Ledger, "append", appended)
    play(tmp_path, RECORDED, lambda entry: None)
    [session] = {name[:16] for name in _session_files(card)}
    assert steps == [("index", session, []), ("ledger", session, [], True)]


def test_a_ledger_that_cannot_take_the_expiry_entry_leaves_the_session_in_the_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    append = Ledger.append

    def failing(ledger: Ledger, kind: Kind, session: str | None = None, /, **kwargs: Any) -> Any:
        if kind is Kind.EXPIRY:
            raise LedgerWriteError("cannot write the box's ledger: No space left on device")
        return append(ledger, kind, session, **kwargs)

    monkeypatch.setattr(Ledger, "append", failing)
    timeline: list[dict[str, Any]] = []
    play(tmp_path, RECORDED, timeline.append)
    [setup] = [entry for entry in timeline if entry["event"] == "setup"]
    assert any(entry["event"] == "ledger" for entry in timeline), "the failure was not reported"
    assert '"kind":"expiry"' not in (tmp_path / "state" / LEDGER).read_text()
    assert list(RetentionIndex(tmp_path / "state").entries()) == [setup["id"]]
