"""Draw docs/session.md from the transition table (`make diagram`); a test keeps the file current."""

from __future__ import annotations

from consentbox.core.table import ROWS, TRANSITIONS, Gesture, State

_HEADER = """\
# The session state machine

Generated from `firmware/consentbox/core/table.py` by `make diagram`; do not edit by hand
(`tests/core/test_docs.py` fails when this file and the table disagree).
A gesture with no arrow from a state is ignored in that state.

How presses become gestures: a **tap** is a press released before `record_hold` (1 s), for every button;
a **hold** completes when its threshold passes with the button still down; **press CONSENT** is the moment
a CONSENT button goes down. Each press completes at most one gesture. A *cue* answers a press without
completing it (the same press can still complete a later gesture). **A press that completes no gesture
triggers none**: released after a tap's length but before its hold, it only sounds the "hold longer" tone,
and only where a hold was there to complete; a press with nothing to complete is ignored.

"""

_BUTTONS = {
    "RECORD": (Gesture.TAP_RECORD, Gesture.HOLD_RECORD, Gesture.LONG_HOLD_RECORD),
    "CONSENT": (Gesture.PRESS_CONSENT, Gesture.TAP_CONSENT, Gesture.HOLD_CONSENT),
}
_HOLDS = (Gesture.HOLD_RECORD, Gesture.LONG_HOLD_RECORD, Gesture.HOLD_CONSENT)


def _presses() -> list[str]:
    """Per state and button: what each press does, and what a press that completes nothing does."""
    lines = ["", "## Presses, state by state", "",
             "| state | button | completes | a longer press that completes none |", "|---|---|---|---|"]
    for state in State:
        for button, gestures in _BUTTONS.items():
            rows = [ROWS[(state, gesture)] for gesture in gestures if (state, gesture) in ROWS]
            done = "; ".join(f"{row.gesture.value}{' (cue)' if row.cue else ''}: "
                             + " / ".join(outcome.when or outcome.target.value for outcome in row.outcomes)
                             for row in rows) or "nothing"
            if any(row.gesture is Gesture.HOLD_RECORD and not row.cue for row in rows):
                unfinished = "(none: every press is a tap or this hold)"
            elif any(row.gesture in _HOLDS for row in rows):
                unfinished = "the \"hold longer\" tone, nothing else"
            else:
                unfinished = "nothing"
            lines.append(f"| {state.value} | {button} | {done} | {unfinished} |")
    return lines


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
    lines += _presses()
    return "\n".join(lines) + "\n"
