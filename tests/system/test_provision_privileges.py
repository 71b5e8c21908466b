"""`consentbox provision` runs as root only to read the stick, then as the state directory's owner.

So everything it writes into the box's state directory belongs to the box's user (`consentbox` on a
box), who must read and replace those files later; and nothing after the stick runs as root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.crypto.signing import OrgSigningKey
from consentbox.provisioning.bundle import Bundle, seal
from tests.conftest import required_tool

BIN = Path(sys.executable).parent
BOX_USER, BOX_GROUP = 4321, 4322  # no such user needs to exist


@pytest.fixture
def place() -> Path:
    # pytest's own temporary tree is root's alone (0700): the box user could not reach into it.
    base = Path(tempfile.mkdtemp(prefix="consentbox-privileges-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def test_everything_provisioning_writes_belongs_to_the_box_user(place: Path):
    org = OrgSigningKey.generate()
    (place / "org.pub").write_text(org.public_key.to_string() + "\n")
    stick = place / "stick"
    stick.mkdir(mode=0o700)  # root's alone: it can only be read before root is dropped
    bundle = Bundle(1, 1_790_000_000, (X25519Identity.generate().recipient,), Policy())
    (stick / "consentbox-v1.cbundle").write_bytes(seal(bundle, org))
    state, card = place / "state", place / "card"
    for directory in (state, card):
        directory.mkdir(mode=0o700)
        os.chown(directory, BOX_USER, BOX_GROUP)
    (place / "config.toml").write_text(f'[keys]\norg_key = "{place / "org.pub"}"\n[box]\nstate_dir = "{state}"\n'
                                       f'[card]\npath = "{card}"\nrequire_mount = false\n')
    # With only the capabilities its unit leaves root, as systemd starts it: no CAP_DAC_OVERRIDE, so root
    # cannot enter the state directory (the VM test found provisioning failing so under systemd).
    done = subprocess.run([required_tool("setpriv"), f"--bounding-set=-all,{unit_capabilities()}",
                           BIN / "consentbox", "provision", "--config", place / "config.toml", stick],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    owners = {path.name: (path.stat().st_uid, path.stat().st_gid) for path in [*state.iterdir(), *card.iterdir()]}
    written = {"device.key", "ledger.jsonl", "provisioned.cbundle", "provisioning-result.json", "clock-floor"}
    assert written <= set(owners)
    # The lock file too: it is taken (as the box user) before the stick is read.
    assert "session.lock" in owners and set(owners.values()) == {(BOX_USER, BOX_GROUP)}


def unit_capabilities() -> str:
    """The provisioning unit's CapabilityBoundingSet, as setpriv's list: +sys_admin,+setuid,…"""
    unit = (Path(__file__).resolve().parents[2] / "systemd/consentbox-provision@.service").read_text()
    (line,) = re.findall(r"^CapabilityBoundingSet=(.+)$", unit, re.MULTILINE)
    return ",".join("+" + name.removeprefix("CAP_").lower() for name in line.split())
