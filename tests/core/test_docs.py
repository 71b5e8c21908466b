"""The docs drawn from or about the core agree with it: the state diagram and the blink codes."""

from __future__ import annotations

from pathlib import Path

from consentbox.core.diagram import render
from consentbox.core.provisioning import BundleRefusal
from consentbox.core.reasons import Problem
from consentbox.core.table import TRANSITIONS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_committed_diagram_is_current():
    assert (DOCS / "session.md").read_text(encoding="utf-8") == render(), "docs/session.md is stale: run `make diagram`"


def test_every_transition_appears_in_the_diagram():
    page = render()
    for row in TRANSITIONS:
        for outcome in row.outcomes:
            assert f"{row.source.value} --> {outcome.target.value} : {row.gesture.value}" in page


def test_every_blink_code_is_documented_with_its_words():
    page = (DOCS / "status-codes.md").read_text(encoding="utf-8")
    for problem in Problem:
        assert f"| {problem.code} | {problem.text} |" in page


def test_every_provisioning_code_is_documented_with_its_words():
    page = (DOCS / "status-codes.md").read_text(encoding="utf-8")
    for refusal in BundleRefusal:
        assert f"| {refusal.code} | {refusal.text} |" in page
