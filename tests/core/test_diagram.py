"""docs/session.md is drawn from the transition table and must match it."""

from __future__ import annotations

from pathlib import Path

from consentbox.core.diagram import render
from consentbox.core.table import TRANSITIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "session.md"


def test_committed_diagram_is_current():
    assert DOC.read_text(encoding="utf-8") == render(), "docs/session.md is stale: run `make diagram`"


def test_every_transition_appears_in_the_diagram():
    page = render()
    for row in TRANSITIONS:
        for outcome in row.outcomes:
            assert f"{row.source.value} --> {outcome.target.value} : {row.gesture.value}" in page
