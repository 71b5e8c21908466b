"""Provisioner.provision, start to end: the session lock, the organisation key, reading, verifying,
judging, installing, the clock floor, the ledger entry and the result the box shows.

Real keys, a real ledger and real files; the wall clock is a parameter, so dates are exact. Every
hostile stick, through the real command, is in tests/system/test_provisioning.py.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from datetime import date
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.core.provisioning import BundleRefusal
from consentbox.core.timekeeping import floor_ceiling
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.ledger import Entry, Kind, Tail, verify
from consentbox.ledger.writer import Ledger, LedgerWriteError
from consentbox.provisioning import provision as provision_module
from consentbox.provisioning.bundle import seal
from consentbox.provisioning.installed import Result
from consentbox.provisioning.provision import Provisioner
from consentbox.retention.index import RetentionIndex
from consentbox.state.clock_floor import ClockFloor, TrustedClock
from consentbox.state.files import INSTALLED_BUNDLE, PROVISIONING_RESULT
from consentbox.state.session_lock import SessionLock

DAY = 86_400
BUILT = float(calendar.timegm((2026, 6, 1, 0, 0, 0)))  # the firmware's build date
CREATED = calendar.timegm((2026, 11, 1, 0, 0, 0))  # the date make_bundle gives (conftest.py)
CEILING = floor_ceiling(BUILT)  # 2031-06-01: the latest date the firmware takes from a stick


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def ledger(state):
    with Ledger.open(state / "ledger.jsonl", None, DeviceSigningKey.generate(secret=bytes(32))) as opened:
        yield opened


@pytest.fixture
def stick(tmp_path: Path) -> Path:
    path = tmp_path / "stick"
    path.mkdir()
    return path


@pytest.fixture
def provisioner(state, org_pub, ledger):
    """`provisioner(wall=…, policy=…)`: the box's provisioning, its wall clock at `wall` (default: the
    bundles' creation day)."""
    def make(*, wall: float = CREATED + DAY, policy: Policy = Policy()) -> Provisioner:
        return Provisioner(state, org_pub, policy, ledger, TrustedClock(state, built=BUILT, wall=lambda: wall),
                           seats=3, shared_consent=False)
    return make


def entries(state: Path) -> list[Entry]:
    assert verify(state / "ledger.jsonl").tail is Tail.COMPLETE
    lines = (state / "ledger.jsonl").read_bytes().splitlines()
    return [Entry.parse(line, f"line {n}") for n, line in enumerate(lines, start=1)]


def put(stick: Path, data: bytes, name: str = "consentbox.cbundle") -> bytes:
    for old in stick.iterdir():
        old.unlink()
    (stick / name).write_bytes(data)
    return data


def test_a_good_bundle_is_installed_recorded_and_reported(provisioner, state, stick, org, make_bundle, identity,
                                                          other_identity):
    data = put(stick, seal(make_bundle(3, recipients=(identity.recipient, other_identity.recipient)), org),
               "consentbox-v3.cbundle")
    result = provisioner().provision(stick)
    assert result == Result(None, "installed 'consentbox-v3.cbundle': version 3, 2 recipient(s)", 3)
    assert (state / INSTALLED_BUNDLE).read_bytes() == data
    assert Result.from_json((state / PROVISIONING_RESULT).read_bytes()) == result
    last = entries(state)[-1]
    assert last.kind is Kind.PROVISIONING and last.session is None
    assert dict(last.fields) == {"bundle_version": 3, "recipients": 2,
                                 "bundle_sha256": hashlib.sha256(data).hexdigest()}


def test_each_newer_version_replaces_the_last(provisioner, state, stick, org, make_bundle):
    for version in (1, 2, 10):
        data = put(stick, seal(make_bundle(version), org))
        assert provisioner().provision(stick).version == version
        assert (state / INSTALLED_BUNDLE).read_bytes() == data
    assert [e.fields["bundle_version"] for e in entries(state) if e.kind is Kind.PROVISIONING] == [1, 2, 10]


@pytest.mark.parametrize("version", [1, 2], ids=["older", "equal"])
def test_an_equal_or_older_version_changes_nothing(provisioner, state, stick, org, make_bundle, version):
    installed = put(stick, seal(make_bundle(2), org))
    provisioner().provision(stick)
    hostile = put(stick, seal(make_bundle(version, policy=Policy(retention_days=3650)), org))
    result = provisioner().provision(stick)
    assert result.refusal is BundleRefusal.NOT_NEWER and result.version is None
    assert (state / INSTALLED_BUNDLE).read_bytes() == installed
    last = entries(state)[-1]
    assert last.kind is Kind.PROVISIONING_REFUSED
    assert dict(last.fields) == {"reason": "version not newer than the installed one",
                                 "bundle_sha256": hashlib.sha256(hostile).hexdigest()}


def test_the_bundles_date_raises_the_clock_floor_and_an_older_one_never_lowers_it(provisioner, state, stick, org,
                                                                                   make_bundle):
    put(stick, seal(make_bundle(1, created=CREATED + 30 * DAY), org))
    provisioner(wall=CREATED).provision(stick)  # the box's clock a month behind IT's workstation
    assert ClockFloor(state).read() == CREATED + 30 * DAY
    put(stick, seal(make_bundle(2, created=CREATED), org))
    assert provisioner(wall=CREATED).provision(stick).refusal is None
    assert ClockFloor(state).read() == CREATED + 30 * DAY


def test_the_date_limit_is_the_policy_in_force_from_the_trusted_time(provisioner, state, stick, org, make_bundle):
    policy = Policy(bundle_ahead_days=30)
    put(stick, seal(make_bundle(1, created=CREATED + 31 * DAY), org))
    result = provisioner(wall=CREATED, policy=policy).provision(stick)
    assert result.refusal is BundleRefusal.FROM_THE_FUTURE and not (state / INSTALLED_BUNDLE).exists()
    assert ClockFloor(state).read() == CREATED, "the box's own clock raised the floor; the refused bundle did not"
    # The floor is trusted over a wall clock that went back (a Pi without a real-time clock).
    ClockFloor(state).raise_to(CREATED + 10 * DAY)
    assert provisioner(wall=BUILT - 400 * DAY, policy=policy).provision(stick).refusal is None


def test_a_box_that_never_had_the_time_judges_the_date_from_the_firmware_build(provisioner, state, stick, org,
                                                                               make_bundle):
    put(stick, seal(make_bundle(1, created=int(BUILT) + 367 * DAY), org))
    assert provisioner(wall=0.0).provision(stick).refusal is BundleRefusal.FROM_THE_FUTURE
    put(stick, seal(make_bundle(1, created=int(BUILT) + 300 * DAY), org))
    assert provisioner(wall=0.0).provision(stick).refusal is None


def test_sticks_cannot_walk_the_clock_floor_past_the_firmware_ceiling(provisioner, state, stick, org, make_bundle):
    # Each signed policy lets the next bundle be dated ten years ahead of the box: two sticks used to take
    # the floor from 2026 to 2046. Whatever the sticks say, it stops at the ceiling (build + 5 years).
    ahead = Policy(bundle_ahead_days=3650)
    steps = [(CREATED + 3650 * DAY, BundleRefusal.FROM_THE_FUTURE),  # the first step of the walk, to 2036
             (CEILING - DAY, None),  # dated before the ceiling: installed, and the floor follows it
             (CEILING - DAY + 3650 * DAY, BundleRefusal.FROM_THE_FUTURE),  # the second step, from there
             (CEILING + 1, BundleRefusal.FROM_THE_FUTURE)]
    for version, (created, refusal) in enumerate(steps, start=1):
        put(stick, seal(make_bundle(version, created=int(created), policy=ahead), org))
        assert provisioner(wall=CREATED + DAY, policy=ahead).provision(stick).refusal is refusal
        assert ClockFloor(state).read() <= CEILING
    assert ClockFloor(state).read() == CEILING - DAY


def test_a_bundle_dated_after_the_ceiling_is_refused_as_from_the_future(provisioner, state, stick, org, make_bundle):
    put(stick, seal(make_bundle(1, created=int(CEILING) + DAY, policy=Policy(bundle_ahead_days=3650)), org))
    result = provisioner(wall=CREATED + DAY, policy=Policy(bundle_ahead_days=3650)).provision(stick)
    assert result.refusal is BundleRefusal.FROM_THE_FUTURE and not (state / INSTALLED_BUNDLE).exists()
    assert "set the box's clock, or update its firmware" in result.detail
    assert ClockFloor(state).read() == CREATED + DAY, "raised by the box's own clock, not by the bundle"
    assert entries(state)[-1].fields["reason"] == "created too far ahead of the box's clock"


def test_a_box_whose_own_clock_is_past_the_ceiling_accepts_a_later_bundle_and_keeps_its_floor(
        provisioner, state, stick, org, make_bundle):
    wall = CEILING + 10 * DAY  # the box's clock, set by IT or NTP, not by a stick
    put(stick, seal(make_bundle(1, created=int(CEILING) + 20 * DAY), org))
    assert provisioner(wall=wall).provision(stick).refusal is None
    assert ClockFloor(state).read() == wall, "a bundle never moves the floor past the ceiling"


def test_a_session_in_progress_refuses_before_the_stick_is_read(provisioner, state, stick, org, make_bundle):
    put(stick, seal(make_bundle(1), org))
    box = SessionLock(state)
    assert box.acquire(wait=False)  # the box, in a session
    try:
        result = provisioner().provision(stick)
    finally:
        box.release()
    assert result.refusal is BundleRefusal.SESSION_IN_PROGRESS
    assert not (state / INSTALLED_BUNDLE).exists()
    assert dict(entries(state)[-1].fields) == {"reason": "a session is in progress", "bundle_sha256": None}
    assert provisioner().provision(stick).refusal is None, "provisioning let go of the lock"


def test_the_session_lock_is_held_while_the_bundle_is_installed(provisioner, state, stick, org, make_bundle,
                                                                monkeypatch):
    seen = []
    real_install = provision_module.install

    def install(state_dir, data):
        box = SessionLock(state_dir)
        seen.append(box.acquire(wait=False))
        box.release()
        real_install(state_dir, data)

    monkeypatch.setattr(provision_module, "install", install)
    put(stick, seal(make_bundle(1), org))
    assert provisioner().provision(stick).refusal is None
    assert seen == [False], "a session could have been set up during the install"
    assert SessionLock(state).acquire(wait=False)


@pytest.mark.parametrize("key_file", ["missing", "empty", "a device key", "not text"])
def test_a_box_without_a_good_organisation_key_refuses(provisioner, state, stick, org, org_pub, make_bundle, key_file):
    put(stick, seal(make_bundle(1), org))
    if key_file == "missing":
        org_pub.unlink()
    elif key_file == "empty":
        org_pub.write_text("# nothing here\n")
    elif key_file == "a device key":
        org_pub.write_text(DeviceSigningKey.generate(secret=bytes(32)).public_key.to_string() + "\n")
    else:
        org_pub.write_bytes(b"\xff\xfe\x00")
    result = provisioner().provision(stick)
    assert result.refusal is BundleRefusal.NO_ORG_KEY and not (state / INSTALLED_BUNDLE).exists()
    assert entries(state)[-1].fields["reason"] == "box has no organisation key installed"


def test_an_installed_bundle_that_no_longer_verifies_is_replaced_by_any_bundle_that_does(
        provisioner, state, stick, org, other_org, make_bundle):
    # The organisation key was replaced: the old bundle holds no version to keep to.
    (state / INSTALLED_BUNDLE).write_bytes(seal(make_bundle(9), other_org))
    data = put(stick, seal(make_bundle(1), org))
    assert provisioner().provision(stick).refusal is None
    assert (state / INSTALLED_BUNDLE).read_bytes() == data


def test_a_ledger_that_cannot_be_written_does_not_undo_the_install(provisioner, state, stick, org, make_bundle,
                                                                   ledger, monkeypatch):
    def full(*args, **kwargs):
        raise LedgerWriteError("cannot write the box's ledger: No space left on device")

    monkeypatch.setattr(ledger, "append", full)
    data = put(stick, seal(make_bundle(1), org))
    result = provisioner().provision(stick)
    assert result.refusal is None and (state / INSTALLED_BUNDLE).read_bytes() == data
    assert result.detail.endswith(
        "; not recorded in the ledger: cannot write the box's ledger: No space left on device")
    assert json.loads((state / PROVISIONING_RESULT).read_bytes())["detail"] == result.detail


def test_a_ledger_that_cannot_take_the_expiry_entries_leaves_the_bundle_s_shorter_expiries_in_force(
        provisioner, state, stick, org, make_bundle, ledger, monkeypatch):
    # The index is changed before the `expiry` entries: without them the shorter expiry still holds.
    index = RetentionIndex(state)
    index.add("00000000000000aa", CREATED - 20 * DAY, 30)
    append = ledger.append

    def failing(kind, session=None, /, **fields):
        if kind is Kind.EXPIRY:
            raise LedgerWriteError("cannot write the box's ledger: No space left on device")
        return append(kind, session, **fields)

    monkeypatch.setattr(ledger, "append", failing)
    put(stick, seal(make_bundle(1, policy=Policy(retention_days=14)), org))
    result = provisioner().provision(stick)
    assert result.refusal is None and result.detail.endswith("; not recorded in the ledger: cannot write the box's "
                                                             "ledger: No space left on device")
    assert index.entries()["00000000000000aa"].expires == CREATED - 6 * DAY
    assert [e for e in entries(state) if e.kind is Kind.EXPIRY] == []


@pytest.mark.parametrize("reason, read", [
    (BundleRefusal.NO_BUNDLE, False), (BundleRefusal.NOT_A_FILE, False), (BundleRefusal.NOT_SIGNED, True),
    (BundleRefusal.BAD_SIGNATURE, True), (BundleRefusal.INVALID, True),
], ids=lambda value: value.name if isinstance(value, BundleRefusal) else None)
def test_a_refusal_records_the_digest_of_what_was_read_and_nothing_else(provisioner, state, stick, org, other_org,
                                                                        make_bundle, sign, reason, read):
    data = {BundleRefusal.NOT_SIGNED: b"hello", BundleRefusal.BAD_SIGNATURE: seal(make_bundle(1), other_org),
            BundleRefusal.INVALID: sign(b"{}")}.get(reason)
    if data is not None:
        put(stick, data)
    elif reason is BundleRefusal.NOT_A_FILE:
        (stick / "x.cbundle").mkdir()
    result = provisioner().provision(stick)
    assert result.refusal is reason
    assert entries(state)[-1].fields["bundle_sha256"] == (hashlib.sha256(data).hexdigest() if read else None)


def test_a_bundle_shortens_the_retention_of_recordings_already_made_and_never_lengthens_it(
        provisioner, state, stick, org, make_bundle):
    index = RetentionIndex(state)
    index.add("00000000000000aa", CREATED - 20 * DAY, 30)  # expires in 10 days
    index.add("00000000000000bb", CREATED - 2 * DAY, 30)  # expires in 28 days
    put(stick, seal(make_bundle(1, policy=Policy(retention_days=365)), org))
    assert provisioner().provision(stick).refusal is None
    assert {s: e.expires for s, e in index.entries().items()} == {
        "00000000000000aa": CREATED + 10 * DAY, "00000000000000bb": CREATED + 28 * DAY}, "never lengthened"
    put(stick, seal(make_bundle(2, policy=Policy(retention_days=14)), org))
    assert provisioner().provision(stick).refusal is None
    assert {s: e.expires for s, e in index.entries().items()} == {
        "00000000000000aa": CREATED - 6 * DAY, "00000000000000bb": CREATED + 12 * DAY}
    put(stick, seal(make_bundle(3, policy=Policy(retention_days=14), existing_days=1), org))
    assert provisioner().provision(stick).refusal is None
    assert {s: e.expires for s, e in index.entries().items()} == {
        "00000000000000aa": CREATED - 19 * DAY, "00000000000000bb": CREATED - DAY}
    # The ledger says each move, as the date it moved to, just before the entry of the bundle that made it.
    recorded = [(e.kind, e.session, dict(e.fields)) for e in entries(state)
                if e.kind in (Kind.EXPIRY, Kind.PROVISIONING)]
    assert [(kind, session, fields.get("expires")) for kind, session, fields in recorded] == [
        (Kind.PROVISIONING, None, None),  # version 1 moved nothing
        (Kind.EXPIRY, "00000000000000aa", _date(CREATED - 6 * DAY)),
        (Kind.EXPIRY, "00000000000000bb", _date(CREATED + 12 * DAY)),
        (Kind.PROVISIONING, None, None),
        (Kind.EXPIRY, "00000000000000aa", _date(CREATED - 19 * DAY)),
        (Kind.EXPIRY, "00000000000000bb", _date(CREATED - DAY)),
        (Kind.PROVISIONING, None, None)]
    assert {fields["reason"] for kind, _, fields in recorded if kind is Kind.EXPIRY} == {"bundle"}


def _date(seconds: float) -> str:
    """The date an expiry at `seconds` falls on, in the box's time zone, as the ledger gives it."""
    return date.fromtimestamp(seconds).isoformat()


def test_a_refused_bundle_shortens_nothing(provisioner, state, stick, org, make_bundle):
    index = RetentionIndex(state)
    index.add("00000000000000aa", CREATED - 20 * DAY, 30)
    before = (state / "retention.json").read_bytes()
    put(stick, seal(make_bundle(1, policy=Policy(retention_days=1), created=CREATED + 400 * DAY), org))
    assert provisioner().provision(stick).refusal is BundleRefusal.FROM_THE_FUTURE
    assert (state / "retention.json").read_bytes() == before
    assert [e for e in entries(state) if e.kind is Kind.EXPIRY] == []
