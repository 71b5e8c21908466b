"""Which problem the STATUS LED shows when there are several (docs/status-codes.md, "Blink codes")."""

from __future__ import annotations

import itertools

import pytest

from consentbox.core.reasons import Problem, worst

#: The order the person at the panel sees them in, first shown first, as docs/status-codes.md's table lists
#: them: the lowest code first. Written out, not derived from the codes, so that a renumbering fails here.
SHOWN_FIRST = [
    Problem.NO_CARD,
    Problem.CARD_READ_ONLY,
    Problem.CARD_FULL,
    Problem.CARD_LOST,
    Problem.CARD_WRITE_ERROR,
    Problem.NOT_PROVISIONED,
    Problem.NO_AUDIO_DEVICE,
    Problem.AUDIO_LOST,
    Problem.CLOCK_UNTRUSTED,
    Problem.CARD_WRONG_FORMAT,
    Problem.MICROPHONE_SILENT,
]

PAIRS = list(itertools.combinations(SHOWN_FIRST, 2))  # each with the one shown first first


def test_the_table_covers_every_problem_and_is_the_lowest_code_first():
    assert sorted(SHOWN_FIRST, key=lambda p: p.name) == sorted(Problem, key=lambda p: p.name)
    assert [p.code for p in SHOWN_FIRST] == sorted(p.code for p in Problem)


@pytest.mark.parametrize(("shown", "hidden"), PAIRS, ids=[f"{a.code}-over-{b.code}" for a, b in PAIRS])
def test_of_two_problems_the_lower_code_is_shown(shown, hidden):
    assert worst(frozenset({shown, hidden})) is shown


def test_no_card_is_shown_over_a_full_card_and_an_untrusted_clock():
    assert worst(frozenset({Problem.CARD_FULL, Problem.NO_CARD, Problem.CLOCK_UNTRUSTED})) is Problem.NO_CARD


@pytest.mark.parametrize("problem", SHOWN_FIRST, ids=lambda p: p.name)
def test_one_problem_is_shown_as_itself(problem):
    assert worst(frozenset({problem})) is problem
