"""Any press during set-up pushes the consent timeout back (docs/product.md, "Front panel": COLLECTING /
READY with no activity for `consent_timeout` is cancelled). The timeout runs from the last press or
release, not from set-up or the last change of state: a room still gathering consents, or a therapist
still counting heads, is never cut off while someone is at the panel. tests/system/test_simulate.py
shows the same through the whole box.
"""

from __future__ import annotations

import pytest

from consentbox.box.timeline import first

TIMEOUT = 180.0  # the default policy's consent_timeout

# (script, the last activity before the timeout): every step's button is let go 0.1 s after its press,
# or after the hold it gives.
ACTIVITY = {
    "a consent that leaves one missing": ("0 tap record\n100 tap consent 1\n", 100.1),
    "a party added": ("0 tap record\n100 tap record\n", 100.1),
    "a consent given again, when ready": ("0 tap record\n1 tap consent 1\n2 tap consent 2\n100 tap consent 1\n",
                                          100.1),
    "RECORD held too early, refused": ("0 tap record\n100 hold record 1.5\n", 101.5),
    "a button held across the timeout": ("0 tap record\n179 hold consent 1 5\n", 184.0),
}


@pytest.mark.parametrize(("script", "last"), ACTIVITY.values(), ids=ACTIVITY.keys())
def test_each_press_pushes_the_consent_timeout_back(play, script, last):
    timeline = play(script + "1000 end\n")
    end = first(timeline, "session", end="consent timeout")
    assert end["t"] == pytest.approx(last + TIMEOUT), "the set-up was cancelled by another clock than the last press"
    assert first(timeline, "state", state="IDLE", t=end["t"])
