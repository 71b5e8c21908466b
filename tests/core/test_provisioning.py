"""The provisioning decisions of the core: refusal codes and words, anti-rollback, the date limit, the panel.

Pure functions, so every boundary is exact: a version one above the installed one, a bundle dated the
limit ahead to the second and one second more.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consentbox.core.commands import Flash, PlayTone
from consentbox.core.errors import ConsentBoxError
from consentbox.core.feedback import Colour, Tone
from consentbox.core.provisioning import BundleRefusal, Refused, check_acceptable, result_feedback
from consentbox.core.timekeeping import floor_ceiling

DOCS = Path(__file__).resolve().parents[2] / "docs"
DAY = 86_400
NOW = 1_795_000_000.0  # 2026-11-18, a time on the box's trusted clock
BUILT = 1_793_491_200.0  # 2026-11-01: the firmware's build date
CEILING = floor_ceiling(BUILT)  # 2031-11-01: the latest date the firmware takes from a stick

#: What IT does about each code (docs/provisioning.md says it in full): the grouping is the contract.
CODES = {
    BundleRefusal.NO_BUNDLE: 1, BundleRefusal.SEVERAL_BUNDLES: 1, BundleRefusal.NOT_A_FILE: 1,
    BundleRefusal.UNREADABLE: 1,
    BundleRefusal.TOO_LARGE: 2, BundleRefusal.NOT_SIGNED: 2, BundleRefusal.BAD_SIGNATURE: 2,
    BundleRefusal.NO_ORG_KEY: 2,
    BundleRefusal.NOT_NEWER: 3,
    BundleRefusal.FROM_THE_FUTURE: 4, BundleRefusal.INVALID: 4,
    BundleRefusal.SESSION_IN_PROGRESS: 5,
}


def accept(**overrides: float) -> None:
    values = {"version": 2, "created": NOW, "installed_version": 1, "trusted_now": NOW, "ahead_limit_days": 366,
              "built": BUILT}
    values.update(overrides)
    check_acceptable(**values)  # type: ignore[arg-type]


def test_every_refusal_has_its_code_and_its_own_words():
    assert {reason: reason.code for reason in BundleRefusal} == CODES
    words = [reason.text for reason in BundleRefusal]
    assert len(set(words)) == len(words), "the ledger tells refusals apart by their words"
    for text in words:
        # The ledger's `reason` is a fixed word list: plain lowercase words, nothing from the stick.
        assert re.fullmatch(r"[a-z][a-z' .-]*[a-z]", text), text


def test_a_refusal_is_a_consentbox_error_saying_its_words_then_the_detail():
    refused = Refused(BundleRefusal.NOT_NEWER, "bundle version 3, installed 3")
    assert isinstance(refused, ConsentBoxError)
    assert str(refused) == "version not newer than the installed one: bundle version 3, installed 3"
    assert str(Refused(BundleRefusal.NO_BUNDLE)) == "no bundle on the stick"
    assert (refused.reason, refused.detail) == (BundleRefusal.NOT_NEWER, "bundle version 3, installed 3")


@pytest.mark.parametrize("version, installed", [(1, 0), (2, 1), (10, 9), (2**53 - 1, 2**53 - 2)])
def test_a_newer_version_is_accepted(version, installed):
    accept(version=version, installed_version=installed)


@pytest.mark.parametrize("version, installed", [(1, 1), (9, 9), (1, 2), (3, 10)], ids=["equal", "equal-9", "older",
                                                                                        "much-older"])
def test_an_equal_or_older_version_is_refused_as_not_newer(version, installed):
    with pytest.raises(Refused) as refused:
        accept(version=version, installed_version=installed)
    assert refused.value.reason is BundleRefusal.NOT_NEWER
    assert refused.value.detail == f"bundle version {version}, installed {installed}"


@pytest.mark.parametrize("ahead", [-10 * 365 * DAY, -1, 0, 1, 30 * DAY, 366 * DAY], ids=[
    "ten-years-old", "a-second-old", "now", "a-second-ahead", "a-month-ahead", "at-the-limit"])
def test_a_bundle_dated_up_to_the_limit_ahead_of_the_box_is_accepted(ahead):
    accept(created=NOW + ahead)


@pytest.mark.parametrize("ahead, limit", [(366 * DAY + 1, 366), (367 * DAY, 366), (2 * DAY, 1), (40 * DAY, 30)])
def test_a_bundle_dated_beyond_the_limit_is_refused_as_from_the_future(ahead, limit):
    with pytest.raises(Refused) as refused:
        accept(created=NOW + ahead, ahead_limit_days=limit)
    assert refused.value.reason is BundleRefusal.FROM_THE_FUTURE
    assert f"the limit is {limit}" in refused.value.detail


def test_a_bundle_dated_up_to_the_firmware_ceiling_is_accepted_and_a_second_later_refused():
    # A policy's own limit lets a bundle be dated ten years ahead; the ceiling holds whatever it says.
    accept(created=CEILING, ahead_limit_days=3650)
    with pytest.raises(Refused) as refused:
        accept(created=CEILING + 1, ahead_limit_days=3650)
    assert refused.value.reason is BundleRefusal.FROM_THE_FUTURE
    assert refused.value.detail == ("created after the latest date this firmware takes from a stick (1826 days "
                                    "after its build), which the box's time has not reached: set the box's "
                                    "clock, or update its firmware")


@pytest.mark.parametrize("trusted_now, accepted", [(CEILING - DAY, False), (CEILING, False), (CEILING + 1, True),
                                                   (CEILING + 400 * DAY, True)],
                         ids=["a-day-before", "at-the-ceiling", "a-second-past", "a-year-past"])
def test_a_bundle_after_the_ceiling_is_accepted_only_once_the_box_s_own_time_is_past_it(trusted_now, accepted):
    values = {"created": CEILING + 30 * DAY, "trusted_now": trusted_now}
    if accepted:
        accept(**values)
        return
    with pytest.raises(Refused) as refused:
        accept(**values)
    assert refused.value.reason is BundleRefusal.FROM_THE_FUTURE


def test_anti_rollback_is_judged_before_the_date():
    with pytest.raises(Refused) as refused:
        accept(version=1, installed_version=1, created=NOW + 1000 * DAY)
    assert refused.value.reason is BundleRefusal.NOT_NEWER


def test_success_is_three_green_flashes_and_the_rising_tone():
    assert result_feedback(None) == (Flash(Colour.GREEN, 3), PlayTone(Tone.ALL_CONSENTED))


@pytest.mark.parametrize("reason", list(BundleRefusal), ids=lambda reason: reason.name)
def test_a_refusal_is_its_code_in_amber_flashes_and_the_low_buzz(reason):
    assert result_feedback(reason) == (Flash(Colour.AMBER, reason.code), PlayTone(Tone.REFUSED))


def test_every_refusal_is_documented_with_its_code_and_words():
    page = (DOCS / "provisioning.md").read_text(encoding="utf-8")
    for reason in BundleRefusal:
        assert f"| {reason.code} | {reason.text} |" in page, f"docs/provisioning.md lacks {reason.name}"
    documented = set(re.findall(r"^\| (\d+) \| ([a-z][^|]*?) \|", page, flags=re.MULTILINE))
    assert documented == {(str(reason.code), reason.text) for reason in BundleRefusal}, "a documented code is stale"
