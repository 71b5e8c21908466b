"""Draw docs/session.md from the transition table (`make diagram`); a test keeps the file current."""

from __future__ import annotations

from consentbox.core.table import TRANSITIONS

_HEADER = """\
# The session state machine

Generated from `firmware/consentbox/core/table.py` by `make diagram`; do not edit by hand
(`tests/core/test_docs.py` fails when this file and the table disagree).
A gesture with no arrow from a state is ignored in that state.

"""


def render() -> str:
    """The Markdown page: a Mermaid state diagram and the same table in words."""
    lines = [_HEADER, "```mermaid", "stateDiagram-v2", "    [*] --> IDLE"]
    for row in TRANSITIONS:
        for outcome in row.outcomes:
            label = row.gesture.value + (f" [{outcome.when}]" if outcome.when else "")
            lines.append(f"    {row.source.value} --> {outcome.target.value} : {label}")
    lines += ["```", "", "| state | gesture | next state | when |", "|---|---|---|---|"]
    for row in TRANSITIONS:
        for outcome in row.outcomes:
            lines.append(f"| {row.source.value} | {row.gesture.value} | {outcome.target.value} | {outcome.when} |")
    return "\n".join(lines) + "\n"
