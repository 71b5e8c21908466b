"""`consentbox provision`: the job systemd starts when a USB stick appears, beside the running box.

It runs as root only to mount the stick: it takes the session lock as the owner of the box's state
directory, mounts and reads the stick as root, and once the bundle's bytes are read (or the box was
found in a session, so the stick is not read at all), it becomes that owner for good, so everything it
writes there (lock, ledger, installed bundle, index, floor, result) is the box's own.

A refused stick's code is shown again while the stick stays in (`remind_until_removed`): with SSH off,
the panel is the only place IT reads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from consentbox.box.config import Config
from consentbox.box.settings import load_settings
from consentbox.box.wiring import open_card, open_ledger
from consentbox.core.policy import Policy
from consentbox.core.provisioning import REMIND_EVERY_SECONDS, REMIND_FOR_SECONDS, Refused
from consentbox.provisioning.installed import Result, write_result
from consentbox.provisioning.provision import Provisioner
from consentbox.provisioning.stick import read_bundle
from consentbox.state.clock_floor import TrustedClock
from consentbox.state.session_lock import SessionLock


def provision_from(config: Config, source: Path) -> Result:
    """Provision the box of `config` from `source`; its ledger records the attempt (and no boot)."""
    config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = SessionLock(config.state_dir)
    stick: tuple[str, bytes] | Refused | None = None
    with acting_as_owner_of(config.state_dir):
        taken = lock.acquire(wait=False)
    if taken:
        try:
            stick = read_bundle(source)
        except Refused as refused:
            stick = refused
    become_owner_of(config.state_dir)

    def read() -> tuple[str, bytes]:
        if isinstance(stick, Refused):
            raise stick
        assert stick is not None, "read only when the lock was taken, and then the stick was read"
        return stick

    settings = load_settings(config)
    card = open_card(config, settings.policy)
    clock = TrustedClock(config.state_dir)
    ledger = open_ledger(config, card, clock, monotonic=time.monotonic, boot=False,
                         readers=lambda: settings.ledger_readers)
    try:
        # An installed bundle that no longer verifies is not obeyed, and the configuration never stands in
        # for it: the firmware's own defaults decide how far ahead a new bundle may be dated.
        policy = Policy() if settings.problem else settings.policy
        provisioner = Provisioner(config.state_dir, config.org_key, policy, ledger, clock,
                                  seats=config.panel.seats, shared_consent=config.panel.shared_consent)
        return provisioner.provision_with(read, lock)
    finally:
        ledger.close(shutdown=False)


def remind_until_removed(state_dir: Path, source: Path, result: Result, *, every: float = REMIND_EVERY_SECONDS,
                         cap: float = REMIND_FOR_SECONDS, monotonic: Callable[[], float] = time.monotonic,
                         sleep: Callable[[float], None] = time.sleep) -> None:
    """Write `result` again as a reminder every `every` seconds, for the running box to flash its code
    again, until `source` is gone (a stick's device node goes when it is pulled out) or `cap` seconds
    have passed."""
    reminder = dataclasses.replace(result, reminder=True)
    end = monotonic() + cap
    while True:
        sleep(every)
        if not os.path.lexists(source) or monotonic() >= end:
            return
        write_result(state_dir, reminder)


@contextlib.contextmanager
def acting_as_owner_of(directory: Path) -> Iterator[None]:
    """Open files in `directory` as its owner, then be root again. The unit's root has no CAP_DAC_OVERRIDE,
    so it cannot enter the box's own state directory (mode 0700) as root."""
    owner = os.stat(directory)
    if os.geteuid() != 0 or owner.st_uid == 0:
        yield
        return
    os.setegid(owner.st_gid)
    os.seteuid(owner.st_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def become_owner_of(directory: Path) -> None:
    """Drop root for the owner of `directory` (its user, group, and no others), for good."""
    owner = os.stat(directory)
    if os.geteuid() != 0 or owner.st_uid == 0:
        return
    os.setgroups([])
    os.setgid(owner.st_gid)
    os.setuid(owner.st_uid)
