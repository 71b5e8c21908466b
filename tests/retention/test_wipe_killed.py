"""A wipe killed between shredding a session and writing its receipt (a power cut, SIGKILL) is finished by
the next run, with exactly one receipt that counts every file the session had.

What retention/wipe.py guarantees for it: before the first file is touched, the index marks the session
`destroying` with its count of files; the manifest is shredded last and only emptied, not removed, until
the receipt is in the ledger, so the manifest left on the card marks a destruction begun on this card
and not yet receipted. The next run overwrites what is left again, appends the one `destruction` entry
with the count from the mark (not the files it finds, by then only the manifest), removes the manifest
and drops the session from the index. tests/system/test_retention.py kills a whole `consentbox wipe`
with SIGKILL at every call that changes a disk; these kill it, fast, at the two places in between.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consentbox.ledger import Kind
from consentbox.ledger.writer import Ledger
from consentbox.recording.manifest import manifest_name
from consentbox.retention import wipe as wipe_module

from .conftest import DAY, NOW, Box
from .test_wipe import NO_DISCARD, destroyed, retention

A = "a0000000000000aa"
STARTED = NOW - 40 * DAY  # expired ten days ago


class _Killed(BaseException):
    """The wipe's process dying at the point where this is raised."""


def _at_the_receipt(patch: pytest.MonkeyPatch) -> None:
    """Killed once every file is shredded, the manifest emptied, the directory synced: at the receipt."""
    append = Ledger.append

    def dying(ledger, kind, session=None, /, **fields):
        if kind is Kind.DESTRUCTION:
            raise _Killed
        return append(ledger, kind, session, **fields)

    patch.setattr(Ledger, "append", dying)


def _at_the_manifest(patch: pytest.MonkeyPatch) -> None:
    """Killed once the segments are overwritten and removed, before the manifest is touched."""
    shred_at = wipe_module.shred_at

    def dying(directory, name, may_continue, **options):
        if name == manifest_name(A):
            raise _Killed
        return shred_at(directory, name, may_continue, **options)

    patch.setattr(wipe_module, "shred_at", dying)


KILLS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "at the receipt": _at_the_receipt,
    "at the manifest": _at_the_manifest,
}


@pytest.mark.parametrize("kill", KILLS.values(), ids=KILLS.keys())
def test_a_wipe_killed_between_shredding_and_its_receipt_is_receipted_once_by_the_next_run(box: Box, monkeypatch,
                                                                                            kill):
    box.record(A, started=STARTED, segments=2)  # two segments and the manifest
    with monkeypatch.context() as patch:
        kill(patch)
        with pytest.raises(_Killed):
            box.wipe()
    assert list(box.files()) == [manifest_name(A)], "the manifest must stay as the mark until the receipt"
    assert box.index.entries()[A].destroying == 3 and box.receipts() == {}

    assert box.wipe() == [destroyed(A, 3), NO_DISCARD]
    assert box.files() == {} and box.index.entries() == {}
    assert box.receipts() == {A: [retention(3, STARTED)]}, "one receipt, for all three files"

    assert box.wipe() == ["nothing has expired"]
    assert box.receipts() == {A: [retention(3, STARTED)]}
