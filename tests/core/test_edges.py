"""Consent at the session's edges (issue 17): withdrawal after the session, presses that complete nothing,
set-up cancelled or lowered, late arrivals, seat lights, refusal codes and reminder tones, one row each."""

from __future__ import annotations

import pytest

from consentbox.box.timeline import first, values
from consentbox.core.policy import OnWithdrawal, Policy

SETUP = "0 tap record\n"
TWO_CONSENTS = SETUP + "2 tap consent 1\n3 tap consent 2\n"
RECORDING = TWO_CONSENTS + "5 hold record 1.5\n"  # capture opens at t = 6
ENDED = RECORDING + "20 hold record 2.5\n"  # the session ends at t = 22
KEEP = Policy(on_withdrawal=OnWithdrawal.KEEP)


def after(timeline, start, end=10_000.0):
    return [entry for entry in timeline if start <= entry["t"] < end]


# -- withdrawal after the session ----------------------------------------------------------------

@pytest.mark.parametrize(("policy", "kept", "colour", "tone"), [
    (Policy(), False, "red", "withdrawn"),
    (KEEP, True, "amber", "withdrawn, kept"),
], ids=["destroy", "keep"])
def test_a_consent_hold_soon_after_the_session_withdraws_it(play, policy, kept, colour, tone):
    timeline = play(ENDED + "100 hold consent 2 2.5\n200 end\n", policy=policy)
    withdrawal = first(timeline, "withdrawal", after=True)
    assert (withdrawal["t"], withdrawal["seat"], withdrawal["kept"]) == (102.0, 2, kept)
    assert first(timeline, "tone", tone="hold to withdraw")["t"] == 100.0, "the press is answered at once"
    assert first(timeline, "flash", colour=colour, count=3)["t"] == 102.0
    assert first(timeline, "tone", tone=tone)["t"] == 102.0
    assert first(timeline, "status", rhythm="slow blink", colour=colour)["t"] == 102.0
    assert first(timeline, "state", state="WITHDRAWN")["t"] == 102.0


@pytest.mark.parametrize("script", [
    ENDED + f"{22 + 900 + 0.1} hold consent 1 2.5\n",  # the window has closed
    ENDED + "921 hold consent 1 2.5\n",  # the press began in time, but the hold completes after the window
    ENDED + "100 hold consent 3 2.5\n",  # seat 3 did not consent to it
    ENDED + "100 tap record\n110 hold consent 1 2.5\n",  # the next set-up has begun
    SETUP + "2 tap consent 1\n3 tap consent 2\n10 tap record\n20 hold consent 1 2.5\n",  # cancelled: no audio
    RECORDING + "20 hold consent 1 2.5\n40 hold consent 2 2.5\n",  # withdrawn already
], ids=["after the window", "completed after the window", "another seat", "next set-up", "nothing recorded",
        "already withdrawn"])
def test_no_withdrawal_after_the_window_by_others_or_of_nothing(play, script):
    timeline = play(script + "2000 end\n")
    assert [entry for entry in timeline if entry["event"] == "withdrawal" and entry.get("after")] == []


def test_withdrawal_after_the_session_can_be_turned_off(play):
    timeline = play(ENDED + "30 hold consent 1 2.5\n100 end\n", policy=Policy(withdraw_window=0))
    assert values(timeline, "withdrawal", "seat") == []
    assert values(timeline, "tone", "tone")[-1] == "end", "no cue offers what cannot be done"


def test_a_shared_button_withdraws_after_the_session_without_a_seat(play):
    script = SETUP + "1 tap consent 1\n3 tap consent 1\n5 hold record 1.5\n20 hold record 2.5\n60 hold consent 1 3\n"
    timeline = play(script, seats=1, shared=True)
    assert first(timeline, "withdrawal", after=True)["seat"] is None


# -- withdrawal during the session: answered at once, nothing kept of the hold --------------------

def test_a_consent_press_while_recording_is_answered_and_holds_the_audio_back(play):
    timeline = play(RECORDING + "10 tap consent 1\n12 hold consent 2 1.5\n20 end\n")
    assert values(timeline, "tone", "tone").count("hold to withdraw") == 2
    assert [(e["t"], e["held"]) for e in timeline if e["event"] == "held"] == [
        (10.0, True), (10.1, False), (12.0, True), (13.5, False)]
    assert first(timeline, "tone", tone="hold longer")["t"] == 13.5, "1.5 s: longer than a tap, short of a hold"
    assert values(timeline, "session", "end") == ["shutdown"], "no withdrawal"


@pytest.mark.parametrize(("policy", "kept"), [(Policy(), False), (KEEP, True)], ids=["destroy", "keep"])
def test_a_withdrawal_while_recording_drops_the_audio_since_its_press(play, policy, kept):
    timeline = play(RECORDING + "20 hold consent 1 2.5\n", policy=policy)
    at_20 = after(timeline, 20.0, 20.1)
    assert first(timeline, "held", held=True)["t"] == 20.0
    assert [e["event"] for e in at_20 if e["event"] in ("held", "tone")] == ["tone", "held"]
    assert values(timeline, "held", "held") == [True], "the held audio is never written"
    assert first(timeline, "session", end="withdrawn")["kept"] is kept


def test_a_press_still_down_when_capture_resumes_holds_the_audio_back(play):
    timeline = play(RECORDING + "10 tap record\n20 press consent 1\n20.5 tap record\n21 release consent 1\n")
    assert [(e["t"], e["held"]) for e in timeline if e["event"] == "held"] == [(20.6, True), (21.0, False)]


# -- set-up: consent, cancel, lower the headcount -------------------------------------------------

def test_a_firm_press_while_consenting_consents_and_is_never_a_withdrawal(play):
    timeline = play(SETUP + "2 hold consent 1 3\n4 hold consent 2 5\n20 end\n")
    assert values(timeline, "consent", "seat") == [1, 2]
    assert values(timeline, "withdrawal", "seat") == []
    assert first(timeline, "state", state="READY")["t"] == 4.0


@pytest.mark.parametrize(("script", "headcount", "state"), [
    (SETUP + "2 tap consent 1\n5 hold record 2.5\n", 1, "READY"),
    (SETUP + "1 tap record\n2 tap record\n3 tap consent 2\n4 tap consent 3\n5 hold record 2.5\n", 2, "READY"),
], ids=["one of two came", "two of four came"])
def test_holding_record_to_end_hold_lowers_the_headcount_to_the_consents(play, script, headcount, state):
    timeline = play(script + "10 hold record 1.5\n20 end\n", seats=4)
    assert values(timeline, "headcount", "headcount")[-1] == headcount
    assert first(timeline, "state", state=state)["t"] == 7.0
    assert first(timeline, "capture", open=True)["t"] == 11.0, "and the lowered session records"


@pytest.mark.parametrize("script", [
    SETUP + "5 hold record 2.5\n",  # nobody has consented yet
    TWO_CONSENTS + "5 tap record\n",  # everyone has: a tap in READY
], ids=["collecting", "ready"])
def test_set_up_can_be_cancelled_without_a_withdrawal(play, script):
    timeline = play(script + "20 end\n")
    assert first(timeline, "session", end="cancelled")["kept"] is True
    assert values(timeline, "withdrawal", "seat") == []
    assert first(timeline, "state", state="IDLE", t=first(timeline, "session")["t"])


# -- late arrival ---------------------------------------------------------------------------------

def test_a_late_arrival_joins_while_paused_and_recording_resumes_with_them(play):
    timeline = play(RECORDING + "10 tap record\n12 tap consent 3\n14 tap record\n20 end\n")
    assert first(timeline, "headcount", headcount=3)["t"] == 12.1
    assert first(timeline, "consent", seat=3)["t"] == 12.1
    assert first(timeline, "seats", lit=[1, 2, 3])["t"] == 12.1
    assert values(timeline, "capture", "open")[:3] == [True, False, True]


def test_a_seat_that_consented_tapping_while_paused_is_not_a_late_arrival(play):
    timeline = play(RECORDING + "10 tap record\n12 tap consent 1\n20 end\n")
    assert values(timeline, "headcount", "headcount") == []
    assert first(timeline, "tone", tone="hold to withdraw")["t"] == 12.0


def test_a_late_arrival_is_refused_beyond_max_parties(play):
    timeline = play(RECORDING + "10 tap record\n12 tap consent 3\n20 end\n", policy=Policy(max_parties=2))
    assert first(timeline, "refused")["reason"] == "no more parties than consent seats"
    assert first(timeline, "flash", colour="amber", count=2, t=12.1)


# -- what a press that completes nothing does -----------------------------------------------------

@pytest.mark.parametrize(("script", "quiet_from"), [
    ("1 hold record 1.5\n", 1.0),  # IDLE: a long press is no tap
    (RECORDING + "10 hold consent 1 1.5\n", 10.1),  # not yet a withdrawal
], ids=["idle record", "recording consent"])
def test_a_press_longer_than_a_tap_that_completes_nothing_changes_nothing(play, script, quiet_from):
    timeline = play(script + "30 end\n")
    changes = [e for e in after(timeline, quiet_from, 30.0) if e["event"] not in ("tone", "held", "status", "seats")]
    assert changes == []


# -- seats, refusal codes, reminders --------------------------------------------------------------

def test_seat_lights_follow_consent_and_the_missing_seats_blink(play):
    timeline = play(SETUP + "2 tap consent 2\n4 hold record 1.2\n6 tap consent 1\n20 end\n")
    seats = [(e["t"], e["lit"], e["blinking"]) for e in timeline if e["event"] == "seats"]
    assert seats == [(2.0, [2], []), (5.0, [2], [1, 3]), (6.0, [1, 2], []), (20.0, [], [])]


@pytest.mark.parametrize(("script", "seats", "code"), [
    (SETUP + "2 tap consent 1\n4 hold record 1.2\n", 3, 1),
    (SETUP + "1 tap record\n", 2, 2),
    (SETUP + "1 tap consent 1\n2 tap record\n", 3, 3),
], ids=["not everyone consented", "more parties than seats", "headcount fixed"])
def test_each_refusal_flashes_its_own_amber_code(play, script, seats, code):
    timeline = play(script + "20 end\n", seats=seats)
    assert first(timeline, "flash", colour="amber", count=code, t=first(timeline, "refused")["t"])
    assert [e for e in timeline if e["event"] == "flash" and e["colour"] == "red"] == []


def test_reminder_tones_sound_every_cue_every_minutes_while_recording_only(play):
    script = RECORDING + "130 tap record\n200 tap record\n300 end\n"
    timeline = play(script, policy=Policy(cue_every=1))
    assert [e["t"] for e in timeline if e["event"] == "tone" and e["tone"] == "reminder"] == [66.0, 126.0, 260.1]
    assert values(play(script), "tone", "tone").count("reminder") == 0, "off by default"
