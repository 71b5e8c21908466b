"""Every row of the front-panel table (docs/product.md, "Front panel"), played as a script through the
session machine."""

from __future__ import annotations

import pytest

from consentbox.box.timeline import first, values
from consentbox.core.policy import OnWithdrawal, Policy
from consentbox.core.reasons import Problem

SETUP = "0 tap record\n"
TWO_CONSENTS = SETUP + "2 tap consent 1\n3 tap consent 2\n"
RECORDING = TWO_CONSENTS + "5 hold record 1.5\n"  # REC LED on at t = 6


@pytest.mark.fresh_clone
def test_idle_tap_record_opens_setup_with_default_headcount(play):
    timeline = play(SETUP)
    assert values(timeline, "state", "state") == ["IDLE", "COLLECTING", "IDLE"]
    assert first(timeline, "setup")["headcount"] == 2
    assert first(timeline, "flash")["count"] == 2, "the headcount is blinked back"


def test_collecting_tap_record_adds_a_party_and_blinks_the_count(play):
    timeline = play(SETUP + "1 tap record\n2 tap record\n", seats=6)
    assert values(timeline, "headcount", "headcount") == [3, 4]
    assert [f["count"] for f in timeline if f["event"] == "flash" and f["colour"] == "amber"] == [2, 3, 4]


def test_headcount_is_fixed_once_consent_has_begun(play):
    timeline = play(SETUP + "1 tap consent 1\n2 tap record\n")
    assert values(timeline, "headcount", "headcount") == []
    assert first(timeline, "refused")["reason"] == "consent has begun: the headcount is fixed"


def test_headcount_cannot_exceed_the_consent_seats(play):
    timeline = play(SETUP + "1 tap record\n2 tap record\n", seats=3)
    assert values(timeline, "headcount", "headcount") == [3]
    assert first(timeline, "refused")["reason"] == "no more parties than consent seats"


def test_consent_tap_counts_once_per_seat_with_ack(play):
    timeline = play(SETUP + "1 tap consent 2\n2 tap consent 2\n3 tap consent 2\n")
    assert values(timeline, "consent", "seat") == [2]
    assert first(timeline, "flash", colour="green")["count"] == 1
    assert first(timeline, "tone", tone="ack")
    assert "READY" not in values(timeline, "state", "state")


def test_all_consented_makes_ready_with_fast_green_and_tone(play):
    timeline = play(TWO_CONSENTS)
    assert values(timeline, "state", "state")[:3] == ["IDLE", "COLLECTING", "READY"]
    ready = first(timeline, "state", state="READY")
    # A consent counts as the button goes down (however long it is then held).
    assert first(timeline, "tone", tone="all consented")["t"] == ready["t"] == 3.0
    assert first(timeline, "status", colour="green", rhythm="fast blink")["t"] == 3.0


def test_shared_button_counts_taps_at_least_a_gap_apart(play):
    # 0.5 s apart: the same person tapping twice; 1.5 s later: the next party.
    timeline = play(SETUP + "1 tap consent 1\n1.5 tap consent 1\n3 tap consent 1\n", seats=1, shared=True)
    assert values(timeline, "consent", "seat") == [1, 2]
    assert "READY" in values(timeline, "state", "state")


def test_ready_hold_record_turns_rec_led_on_then_opens_capture_at_the_threshold(play):
    timeline = play(RECORDING)
    led_on = first(timeline, "led", led="rec", on=True)
    capture = first(timeline, "capture", open=True)
    assert led_on["t"] == capture["t"] == 6.0, "fires at press + record_hold, not at release"
    assert timeline.index(led_on) < timeline.index(capture)
    assert first(timeline, "state", state="RECORDING")["t"] == 6.0


def test_ready_short_press_does_not_record(play):
    timeline = play(TWO_CONSENTS + "5 hold record 0.5\n")
    assert values(timeline, "capture", "open") == []


def test_collecting_hold_record_is_refused_and_records_nothing(play):
    timeline = play(SETUP + "1 tap consent 1\n2 hold record 1.5\n")
    assert first(timeline, "refused")["reason"] == "not everyone has consented"
    assert first(timeline, "flash", colour="amber", count=1), "refusal code 1, in amber: not a red problem code"
    assert first(timeline, "tone", tone="refused")
    assert first(timeline, "seats", lit=[1], blinking=[2, 3])["t"] == 3.0, "the missing seats blink"
    assert first(timeline, "tone", tone="hold longer")["t"] == 3.5, "released before end_hold: nothing more"
    assert values(timeline, "capture", "open") == []
    assert values(timeline, "led", "on") == []


def test_recording_tap_record_pauses_capture_first_then_led(play):
    timeline = play(RECORDING + "10 tap record\n")
    close = first(timeline, "capture", open=False)
    led_off = first(timeline, "led", led="rec", on=False)
    assert close["t"] == led_off["t"] == 10.1
    assert timeline.index(close) < timeline.index(led_off)
    assert first(timeline, "state", state="PAUSED")["t"] == 10.1


def test_paused_tap_record_resumes_without_new_consent(play):
    timeline = play(RECORDING + "10 tap record\n20 tap record\n")
    assert values(timeline, "capture", "open") == [True, False, True, False]
    assert values(timeline, "state", "state")[-3:] == ["PAUSED", "RECORDING", "IDLE"]


@pytest.mark.parametrize("prefix", [RECORDING, RECORDING + "8 tap record\n"], ids=["recording", "paused"])
def test_a_press_between_thresholds_does_nothing_but_say_hold_longer(play, prefix):
    # Released after record_hold but before end_hold: neither a tap nor the end; it says so, and nothing
    # else changes (in PAUSED, capture never opens after a press longer than a tap).
    timeline = play(prefix + "10 hold record 1.5\n20 end\n")
    after = [entry for entry in timeline if 10.0 <= entry["t"] < 20.0]
    assert [entry["event"] for entry in after] == ["tone"] and after[0]["tone"] == "hold longer"


@pytest.mark.parametrize("prefix", [RECORDING, RECORDING + "10 tap record\n"], ids=["recording", "paused"])
def test_hold_record_two_seconds_ends_the_session_and_forgets_consents(play, prefix):
    timeline = play(prefix + "20 hold record 3\n30 tap record\n31 hold record 2\n")
    end = first(timeline, "session", end="ended")
    assert end["t"] == 22.0 and end["kept"] is True
    assert values(timeline, "capture", "open")[-1] is False
    # The next session starts from nothing: the hold at 31 is refused.
    assert first(timeline, "refused")["t"] == 32.0
    assert values(timeline, "setup", "id") == ["session1", "session2"]


@pytest.mark.parametrize(
    "prefix",
    [TWO_CONSENTS, RECORDING, RECORDING + "10 tap record\n"],
    ids=["ready", "recording", "paused"],
)
def test_hold_consent_withdraws_from_any_consented_state(play, prefix):
    timeline = play(prefix + "20 hold consent 3 2.5\n")
    withdrawn = first(timeline, "state", state="WITHDRAWN")
    assert withdrawn["t"] == 22.0
    assert first(timeline, "session", end="withdrawn")["kept"] is False
    assert values(timeline, "led", "on")[-1:] in ([], [False])
    assert values(timeline, "capture", "open")[-1:] in ([], [False])


def test_withdrawal_stops_capture_in_the_same_step(play):
    timeline = play(RECORDING + "20 hold consent 1 2.5\n")
    at_22 = [entry["event"] for entry in timeline if entry["t"] == 22.0]
    assert at_22[:6] == ["capture", "led", "withdrawal", "flash", "tone", "session"]
    assert first(timeline, "withdrawal")["seat"] == 1


def test_with_a_shared_button_the_box_cannot_say_who_withdrew(play):
    timeline = play("0 tap record\n2 tap consent 1\n4 tap consent 1\n6 hold record 1.5\n10 hold consent 1 2.5\n",
                    seats=1, shared=True)
    assert first(timeline, "withdrawal")["seat"] is None


def test_withdrawal_with_keep_policy_keeps_the_audio_marked(play):
    timeline = play(RECORDING + "20 hold consent 2 2.5\n", policy=Policy(on_withdrawal=OnWithdrawal.KEEP))
    assert first(timeline, "session", end="withdrawn")["kept"] is True


def test_withdrawn_notice_clears_and_a_new_session_needs_new_consent(play):
    timeline = play(RECORDING + "20 hold consent 1 2.5\n24 tap record\n26 hold record 2\n")
    assert values(timeline, "state", "state")[-4:] == ["RECORDING", "WITHDRAWN", "COLLECTING", "IDLE"]
    assert first(timeline, "refused")["reason"] == "not everyone has consented"


@pytest.mark.parametrize("prefix", [SETUP, TWO_CONSENTS], ids=["collecting", "ready"])
def test_no_activity_for_consent_timeout_cancels_the_setup(play, prefix):
    last_press = 3.1 if prefix == TWO_CONSENTS else 0.1
    timeline = play(prefix + "500 end\n")
    end = first(timeline, "session", end="consent timeout")
    assert end["t"] == pytest.approx(last_press + 180)
    assert first(timeline, "state", state="IDLE", t=end["t"])


def test_pause_longer_than_pause_timeout_ends_the_session(play):
    timeline = play(RECORDING + "10 tap record\n4000 end\n")
    assert first(timeline, "session", end="pause timeout")["t"] == pytest.approx(10.1 + 1800)


def test_recording_longer_than_max_session_ends_it(play):
    # 100 s recorded, a pause, then recording resumes: the limit counts captured time only.
    timeline = play(RECORDING + "106 tap record\n200 tap record\n20000 end\n")
    end = first(timeline, "session", end="max session")
    assert end["t"] == pytest.approx(200.1 + 4 * 3600 - 100.1)
    assert values(timeline, "capture", "open")[-1] is False


@pytest.mark.parametrize("problem", list(Problem))
def test_a_box_that_is_not_ready_refuses_to_start_and_says_why(play, problem):
    timeline = play(SETUP, problems=frozenset({problem}))
    assert first(timeline, "refused")["reason"] == problem.text
    assert first(timeline, "flash", colour="red")["count"] == problem.code
    assert first(timeline, "status", colour="red", rhythm="code")["count"] == problem.code
    assert values(timeline, "state", "state") == ["IDLE"]


def test_problem_codes_are_distinct():
    assert len({p.code for p in Problem}) == len({p.text for p in Problem}) == len(Problem)


@pytest.mark.parametrize("fault", ["card remove", "card full", "audio lost"])
def test_a_fault_while_recording_stops_capture_at_once_and_keeps_the_recording(play, fault):
    timeline = play(RECORDING + f"10 {fault}\n")
    at_10 = [entry for entry in timeline if entry["t"] == 10.0]
    assert [entry["event"] for entry in at_10][:3] == ["capture", "led", "session"]
    end = first(timeline, "session")
    assert end["kept"] is True and end["end"] == {"card remove": "card lost"}.get(fault, fault)
    assert first(timeline, "state", state="IDLE", t=10.0)


def test_after_a_fault_a_new_session_is_refused_until_ready_again(play):
    timeline = play(RECORDING + "10 card full\n12 tap record\n")
    assert first(timeline, "refused", reason="card full")["t"] == 12.1


@pytest.mark.parametrize(("script", "tones", "end"), [
    (RECORDING + "8 tap record\n9 tap record\n12 hold record 2.5\n", ["start", "pause", "start", "end"], "ended"),
    (SETUP + "200 end\n", ["end"], "consent timeout"),
    (RECORDING + "8 hold consent 1 2.5\n", ["start", "hold to withdraw", "withdrawn"], "withdrawn"),
    (RECORDING + "8 card full\n", ["start", "fault"], "card full"),
], ids=["start-pause-end", "setup-timeout", "withdrawn", "fault"])
def test_each_moment_of_a_session_sounds_its_tone(play, script, tones, end):
    # docs/status-codes.md, "Flashes and tones": the tones past the consents (ack, all consented: above),
    # each with the end it marks (a script's own end would end a session too: as a shutdown).
    timeline = play(script)
    assert [tone for tone in values(timeline, "tone", "tone") if tone not in ("ack", "all consented")] == tones
    assert values(timeline, "session", "end") == [end]


def test_the_hold_that_starts_a_recording_never_runs_on_into_the_one_that_ends_it(play):
    # Held in READY for 3 s, past end_hold (2 s): one press, one gesture; it starts the recording, no more.
    timeline = play(TWO_CONSENTS + "5 hold record 3\n12 end\n")
    assert values(timeline, "capture", "open") == [True, False]
    assert values(timeline, "session", "end") == ["shutdown"], "the long hold ended the session it started"
