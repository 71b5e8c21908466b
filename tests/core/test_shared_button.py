"""The shared CONSENT button (docs/decisions.md): one button passed around, so taps less than
`shared_tap_gap` after the last counted one are the same person's, and count once."""

from __future__ import annotations

import pytest

from consentbox.box.timeline import values
from consentbox.core.policy import Policy

THREE_PARTIES = Policy(default_parties=3)  # the gap is the default, 1 s

# (taps on the shared button in seconds, seats counted, whether the box becomes READY)
TAPS = [
    ([1.0, 1.5], [1], False),  # one person's double tap is one consent, not two
    ([1.0, 1.5, 3.0], [1, 2], False),  # a double tap and one more: the third party is still missing
    ([1.0, 1.99], [1], False),  # just inside the gap
    ([1.0, 2.0], [1, 2], False),  # exactly the gap apart: the next person
    ([1.0, 2.0, 3.0], [1, 2, 3], True),
    ([1.0, 1.5, 2.0, 2.5, 3.0], [1, 2, 3], True),  # each double tap counts once
    ([1.0, 1.6, 2.2], [1, 2], False),  # the gap runs from the last counted tap, not the last tap
]


@pytest.mark.parametrize(("taps", "counted", "ready"), TAPS)
def test_taps_closer_than_the_gap_are_one_consent(play, taps, counted, ready):
    script = "0 tap record\n" + "".join(f"{t} tap consent 1\n" for t in taps)
    timeline = play(script, policy=THREE_PARTIES, seats=1, shared=True)
    assert values(timeline, "consent", "seat") == counted
    assert ("READY" in values(timeline, "state", "state")) is ready


def test_the_gap_is_the_policys(play):
    # With a 2 s gap, taps 1.5 s apart are still one person.
    policy = Policy(default_parties=2, shared_tap_gap=2.0)
    timeline = play("0 tap record\n1 tap consent 1\n2.5 tap consent 1\n", policy=policy, seats=1, shared=True)
    assert values(timeline, "consent", "seat") == [1]
    assert "READY" not in values(timeline, "state", "state")
