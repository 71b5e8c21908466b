"""Scenario scripts parse into timed button edges and faults, and bad lines name themselves."""

from __future__ import annotations

import pytest

from consentbox.core.events import RECORD, ConsentButton, Pressed, Released
from consentbox.sim.script import AdvanceStep, EndStep, FaultStep, ScriptError, ScriptFault, parse_script


def test_every_step_kind_parses():
    steps = parse_script(
        "# comment\n"
        "0 tap record\n"
        "1.5 hold consent 2 2.5   # trailing comment\n"
        "2 press record\n"
        "3 release record\n"
        "4 card remove\n4 card full\n4 audio lost\n"
        "5 advance 31d\n6 advance 2h\n7 advance 20m\n"
        "9 end\n"
    )
    assert steps == [
        Pressed(RECORD, 0.0), Released(RECORD, 0.1),
        Pressed(ConsentButton(2), 1.5),
        Pressed(RECORD, 2.0), Released(RECORD, 3.0),
        Released(ConsentButton(2), 4.0),
        FaultStep(ScriptFault.CARD_REMOVE, 4.0), FaultStep(ScriptFault.CARD_FULL, 4.0),
        FaultStep(ScriptFault.AUDIO_LOST, 4.0),
        AdvanceStep(31 * 86_400, 5.0, line=9), AdvanceStep(2 * 3_600, 6.0, line=10), AdvanceStep(20 * 60, 7.0, line=11),
        EndStep(9.0),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x tap record", "time 'x' is not a number"),
        ("-1 tap record", "must be zero or more"),
        ("1 tap", "expected a button"),
        ("1 tap consent zero", "seat 'zero' is not a number"),
        ("1 tap consent 0", "seat '0' is not a number from 1"),
        ("1 hold record", "hold needs a duration"),
        ("1 tap record now", "unexpected 'now'"),
        ("1 card eject", "unknown step 'card eject'"),
        ("nan end", "time 'nan' must be zero or more"),
        ("1 advance", "advance needs one length"),
        ("1 advance 30", "length '30' is not a whole number of days, hours or minutes"),
        ("1 advance 1.5d", "length '1.5d' is not a whole number"),
        ("1 advance 0d", "length '0d' is not a whole number"),
        ("1 advance -1d", "length '-1d' is not a whole number"),
        ("1 advance 1y", "length '1y' is not a whole number"),
        ("1 advance 3651d", "length '3651d' is more than 3650 days"),
    ],
)
def test_bad_lines_are_one_line_errors_with_the_line_number(line, message):
    with pytest.raises(ScriptError) as caught:
        parse_script("0 tap record\n" + line, source="demo.txt")
    assert str(caught.value).startswith("demo.txt line 2: ")
    assert message in str(caught.value) and "\n" not in str(caught.value)
