"""Provisioning decisions: why a bundle is refused, whether a verified one may replace the installed
configuration, and what the STATUS LED and buzzer say about it.

Pure: the caller reads the stick, the clock and the installed version, and hands them in.
docs/provisioning.md lists every refusal with what the box does.
"""

from __future__ import annotations

import enum

from consentbox.core.commands import Flash, PlayTone
from consentbox.core.errors import ConsentBoxError
from consentbox.core.feedback import Colour, Tone
from consentbox.core.timekeeping import FLOOR_CEILING_DAYS, floor_ceiling


class BundleRefusal(enum.Enum):
    """Why the box refused a provisioning stick, with its amber blink code and its words.

    Codes group causes by what IT does about them: 1 fix the stick, 2 sign with the right key,
    3 raise the version, 4 fix the bundle's contents, 5 try again when the box is idle.
    """

    NO_BUNDLE = (1, "no bundle on the stick")
    SEVERAL_BUNDLES = (1, "more than one bundle on the stick")
    NOT_A_FILE = (1, "bundle is not a regular file")
    UNREADABLE = (1, "stick cannot be read")
    TOO_LARGE = (2, "bundle too large")
    NOT_SIGNED = (2, "not a signed bundle")
    BAD_SIGNATURE = (2, "signature does not verify with the organisation key")
    NO_ORG_KEY = (2, "box has no organisation key installed")
    NOT_NEWER = (3, "version not newer than the installed one")
    FROM_THE_FUTURE = (4, "created too far ahead of the box's clock")
    INVALID = (4, "invalid contents")
    SESSION_IN_PROGRESS = (5, "a session is in progress")

    def __init__(self, code: int, text: str) -> None:
        self.code = code
        self.text = text


class Refused(ConsentBoxError):
    """A provisioning stick was refused; `reason` is why, `detail` the one-line specifics."""

    def __init__(self, reason: BundleRefusal, detail: str = "") -> None:
        super().__init__(f"{reason.text}: {detail}" if detail else reason.text)
        self.reason = reason
        self.detail = detail


_DAY = 86_400

#: How often a refused stick's code is shown again while it stays in, and for how long at most (a stick
#: whose removal is never seen must not keep the job, and the panel's flashes, going for ever).
REMIND_EVERY_SECONDS = 10.0
REMIND_FOR_SECONDS = 30 * 60.0


def check_acceptable(*, version: int, created: int, installed_version: int, trusted_now: float,
                     ahead_limit_days: int, built: float) -> None:
    """Raise `Refused` unless a verified bundle may replace the installed configuration.

    Times are POSIX seconds. Anti-rollback: the version must be above the installed one. The bundle
    may be dated after the box's clock (a Pi without a real-time clock often runs behind), but not
    by more than `ahead_limit_days`: its date raises the box's clock floor, and a date far ahead
    would expire every recording at once. Nor may it be dated after the ceiling of the firmware
    built at `built` (core/timekeeping.py) while the box's time has not passed that ceiling: the
    limit above is set by the signed policies themselves, so only a fixed ceiling stops a run of
    sticks from walking the floor forward.
    """
    if version <= installed_version:
        raise Refused(BundleRefusal.NOT_NEWER, f"bundle version {version}, installed {installed_version}")
    ahead = created - trusted_now
    if ahead > ahead_limit_days * _DAY:
        raise Refused(BundleRefusal.FROM_THE_FUTURE,
                      f"created {ahead / _DAY:.1f} days after the box's time; the limit is {ahead_limit_days}")
    ceiling = floor_ceiling(built)
    if created > ceiling >= trusted_now:
        raise Refused(BundleRefusal.FROM_THE_FUTURE,
                      f"created after the latest date this firmware takes from a stick ({FLOOR_CEILING_DAYS} "
                      "days after its build), which the box's time has not reached: set the box's clock, "
                      "or update its firmware")


def result_feedback(refusal: BundleRefusal | None) -> tuple[Flash, PlayTone]:
    """What the panel shows for a provisioning result: three green flashes and a rising tone when a
    bundle was installed; its code in amber flashes and the refusal buzz when one was refused."""
    if refusal is None:
        return Flash(Colour.GREEN, 3), PlayTone(Tone.ALL_CONSENTED)
    return Flash(Colour.AMBER, refusal.code), PlayTone(Tone.REFUSED)
