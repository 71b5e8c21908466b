"""Provisioning by a signed USB stick (issue 7, docs/product.md, "Provisioning by USB"), as IT and the box meet it.

Through the real commands: `consentbox provision --config FILE SOURCE` on stick directories and on
loop-attached ext4 stick images, `consentbox simulate` with `usb` steps, `consentbox-admin export` and
the real `age` on what the box recorded afterwards. Real Ed25519 and X25519 keys, real files, as root.

- Every hostile stick of the issue (the table in docs/provisioning.md names each case here) is refused
  with its code: exit 2, one line on stderr; the installed configuration is byte-identical (or still
  absent), and the ledger, which still verifies, ends with a `provisioning_refused` entry giving the
  refusal's words and the digest of the bundle read, if one was read.
- A stick's block device is set read-only and mounted ro,nosuid,nodev,noexec,nosymfollow (the kernel's
  own mount table is read at the moment of unmounting), read, and unmounted; its image is unchanged.
  The kernel here has ext4 but not vfat, so the images are ext4 (docs/provisioning.md says so).
- Power cuts during an install (a forked child killed at each of its writes, syncs and renames, and at
  random ones): the installed bundle is the old one or the new one, whole; a box started afterwards
  takes up one of the two; the expiry index is never longer than the installed policy allows; the
  ledger verifies (a torn tail is cut and recorded as a gap at the next start).
- A good bundle changes the recipients of the next session, not the one in progress; the new
  identity opens what was recorded after it, the old identity what was recorded before.
- A refused stick left in: the job (`--until-removed`) has the running box (mock pins) flash its code
  again, without the buzz and never over a session, until the stick is gone; then it ends.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import hashlib
import json
import mmap
import multiprocessing
import os
import random
import re
import shutil
import socket
import stat
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.figures import check_quoted
from consentbox.box.config import Config, load_config
from consentbox.box.settings import load_settings
from consentbox.core.policy import Policy
from consentbox.core.provisioning import REMIND_EVERY_SECONDS, BundleRefusal
from consentbox.crypto import X25519Identity, identity_file_text
from consentbox.crypto.signing import DeviceSigningKey, OrgSigningKey
from consentbox.jobs.provision import provision_from
from consentbox.ledger import Entry, Kind, Tail, verify
from consentbox.ledger.writer import Ledger
from consentbox.provisioning.bundle import HEADER_BYTES, MAX_BUNDLE_BYTES, Bundle, seal
from consentbox.provisioning.installed import Result, write_result
from consentbox.recording.card_id import CARD_ID_NAME
from consentbox.retention.index import RetentionIndex
from consentbox.state.files import CLOCK_FLOOR, INSTALLED_BUNDLE, LEDGER, PROVISIONING_RESULT
from consentbox.state.session_lock import SessionLock
from consentbox.storage.ids import is_session_id
from consentbox.testing.signal import position_pcm, write_wav
from tests.support.bundles import signed_bundle
from tests.support.cards import loop_devices
from tests.support.notify_socket import NotifySocket
from tests.support.power_cuts import cut_power_at
from tests.support.simulated import BoxRig

from .conftest import BIN, SimulatedBox, Timeline

CONSENTBOX, ADMIN = str(BIN / "consentbox"), str(BIN / "consentbox-admin")
DAY = 86_400
ORG = OrgSigningKey.generate(secret=bytes(range(64, 96)))
OTHER_ORG = OrgSigningKey.generate(secret=bytes(range(160, 192)))
INSTALLED_VERSION = 5  # the version every hostile stick meets on the box
SECRET = "AGE-SECRET-KEY-1XDW3JMN8TX7PZSADTTXQ0MQGJ8J4KZWUKPK7YHY7GME95PZ5MPKQCF8MU8"
#: Any of a secret key's data in a message (a message may name the form, "AGE-SECRET-KEY-1…").
ECHOED_SECRET = re.compile(r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]|" + SECRET[16:26], re.IGNORECASE)
#: State files a refused stick may touch: the ledger, the last result, the lock files, and the clock floor,
#: which the box's own clock raises whenever it is read (never to a refused bundle's date: checked apart).
CHANGED_BY_ANY_ATTEMPT = {LEDGER, PROVISIONING_RESULT, "session.lock", "clock-floor.lock", CLOCK_FLOOR}
#: Refusals that come after the bundle's bytes were read: the ledger records their digest.
READ_REFUSALS = {BundleRefusal.NOT_SIGNED, BundleRefusal.BAD_SIGNATURE, BundleRefusal.INVALID,
                 BundleRefusal.NOT_NEWER, BundleRefusal.FROM_THE_FUTURE}


def signed(payload: bytes, key: OrgSigningKey = ORG) -> bytes:
    """A bundle file of any payload, validly signed: the layout of docs/formats.md."""
    return signed_bundle(payload, key)


def run(*args: str | Path, timeout: float = 30, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)


@dataclasses.dataclass(frozen=True)
class Keys:
    """The supervisors' keys: the one the box encrypts to now, and the one a bundle brings."""

    old: X25519Identity
    new: X25519Identity

    def bundle(self, version: int = INSTALLED_VERSION + 1, *, created: int | None = None, key: OrgSigningKey = ORG,
               policy: Policy = Policy(), existing_days: int | None = None, to_old: bool = False) -> bytes:
        """A sealed bundle to the new key (or the old), dated now unless `created` is given."""
        recipient = (self.old if to_old else self.new).recipient
        return seal(Bundle(version, int(time.time()) if created is None else created, (recipient,), policy,
                           existing_days), key)

    def payload(self, change: Callable[[dict], object]) -> bytes:
        """A good bundle's payload, changed by `change` (which edits the parsed JSON), signed by ORG."""
        value = json.loads(self.bundle(existing_days=5)[HEADER_BYTES:])
        change(value)
        return signed(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())


@pytest.fixture(scope="module")
def keys(identity: X25519Identity, other_identity: X25519Identity) -> Keys:
    return Keys(old=identity, new=other_identity)


class Box:
    """A box's files: state directory, card, organisation key and config.toml, under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state, self.card, self.org_pub = root / "state", root / "card", root / "org.pub"
        self.config = root / "config.toml"

    @classmethod
    def new(cls, root: Path) -> Box:
        box = cls(root)
        box.card.mkdir(parents=True)
        box.org_pub.write_text(f"# ConsentBox organisation public key\n{ORG.public_key.to_string()}\n")
        box.write_config()
        return box

    def copy(self, root: Path) -> Box:
        shutil.copytree(self.root, root, symlinks=True)
        box = Box(root)
        box.write_config()
        return box

    def write_config(self) -> None:
        self.config.write_text(f'[keys]\norg_key = "{self.org_pub}"\n[box]\nstate_dir = "{self.state}"\n'
                               f'[card]\npath = "{self.card}"\nrequire_mount = false\n')

    def load_config(self) -> Config:
        return load_config(self.config)

    def provision(self, source: Path, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return run(CONSENTBOX, "provision", "--config", self.config, source, timeout=20, env=env)

    def installed(self) -> bytes | None:
        path = self.state / INSTALLED_BUNDLE
        return path.read_bytes() if path.exists() else None

    def files(self) -> dict[str, bytes]:
        """Every file of the state directory that a refused stick must leave as it was."""
        return {p.name: p.read_bytes() for p in self.state.rglob("*")
                if p.is_file() and p.name not in CHANGED_BY_ANY_ATTEMPT}

    def entries(self) -> list[Entry]:
        """The ledger's entries, after checking the whole ledger, and that the card holds none of them but in
        sessions' extracts (provisioning is in no session: it stays on the box)."""
        assert verify(self.state / LEDGER).tail is Tail.COMPLETE
        lines = (self.state / LEDGER).read_bytes().splitlines()
        others = [name for name in os.listdir(self.card)
                  if name != CARD_ID_NAME and not is_session_id(name.removeprefix(".")[:16])]
        assert others == [], "the card holds a file of no session"
        return [Entry.parse(line, f"line {n}") for n, line in enumerate(lines, start=1)]

    def result(self) -> Result:
        return Result.from_json((self.state / PROVISIONING_RESULT).read_bytes())

    def floor(self) -> int:
        return int((self.state / CLOCK_FLOOR).read_text())


def new_stick(root: Path, name: str = "stick") -> Path:
    path = root / name
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory, keys: Keys) -> Box:
    """A box that IT provisioned with version 5 (to the old key) through the real command."""
    root = tmp_path_factory.mktemp("provisioned")
    box = Box.new(root / "box")
    stick = new_stick(root)
    (stick / "consentbox-v5.cbundle").write_bytes(keys.bundle(INSTALLED_VERSION, to_old=True))
    done = box.provision(stick)
    assert done.returncode == 0, done.stderr
    return box


@pytest.fixture
def box(provisioned: Box, tmp_path: Path) -> Box:
    """A copy of the provisioned box, for one test to change."""
    return provisioned.copy(tmp_path / "box")


# -- the hostile sticks -----------------------------------------------------------------------------


def _truncated(at: Callable[[int], int]) -> Callable[[Keys, Path], None]:
    def make(keys: Keys, stick: Path) -> None:
        data = keys.bundle()
        (stick / "consentbox-v6.cbundle").write_bytes(data[:at(len(data))])
    return make


def _flipped(position: Callable[[bytes], int]) -> Callable[[Keys, Path], None]:
    def make(keys: Keys, stick: Path) -> None:
        data = bytearray(keys.bundle())
        data[position(bytes(data))] ^= 0x01
        (stick / "consentbox-v6.cbundle").write_bytes(bytes(data))
    return make


def _signature_flipped(keys: Keys, stick: Path) -> None:
    data = keys.bundle()
    start = len(b"consentbox-bundle/v1\nsignature: ")
    signature = bytearray(base64.b64decode(data[start:start + 88]))
    signature[10] ^= 0x40
    (stick / "consentbox-v6.cbundle").write_bytes(data[:start] + base64.b64encode(bytes(signature)) + data[start + 88:])


def _file(make_bytes: Callable[[Keys], bytes], name: str = "consentbox-v6.cbundle") -> Callable[[Keys, Path], None]:
    def make(keys: Keys, stick: Path) -> None:
        (stick / name).write_bytes(make_bytes(keys))
    return make


def _over_the_cap_by_one_byte(keys: Keys) -> bytes:
    payload = keys.bundle()[HEADER_BYTES:]
    return signed(b" " * (MAX_BUNDLE_BYTES - HEADER_BYTES + 1 - len(payload)) + payload)  # JSON allows the spaces


def _oversized(keys: Keys, stick: Path) -> None:
    path = stick / "consentbox-v6.cbundle"
    path.write_bytes(keys.bundle())
    os.truncate(path, 64 << 30)  # sparse: 64 GiB, 10⁶ × the cap; read whole it would take minutes


def _set(path: str, new: object) -> Callable[[dict], None]:
    def change(value: dict) -> None:
        *parents, last = path.split(".")
        for name in parents:
            value = value[name]
        value[last] = new
    return change


def _payload(change: Callable[[dict], object]) -> Callable[[Keys, Path], None]:
    return _file(lambda keys: keys.payload(change))


def _symlink_to_good_bundle(keys: Keys, stick: Path) -> None:
    elsewhere = stick.parent / "elsewhere" / "consentbox-v6.cbundle"  # a valid, newer bundle off the stick
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(keys.bundle())
    os.symlink(elsewhere, stick / "consentbox-v6.cbundle")


def _relative_symlink(keys: Keys, stick: Path) -> None:
    (stick / "data").mkdir()
    (stick / "data" / "bundle").write_bytes(keys.bundle())
    os.symlink("data/bundle", stick / "consentbox-v6.cbundle")


def _fifo(keys: Keys, stick: Path) -> None:
    os.mkfifo(stick / "consentbox-v6.cbundle")


def _device(kind: int, major: int, minor: int) -> Callable[[Keys, Path], None]:
    def make(keys: Keys, stick: Path) -> None:
        os.mknod(stick / "consentbox-v6.cbundle", 0o666 | kind, os.makedev(major, minor))
    return make


def _socket(keys: Keys, stick: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(stick / "consentbox-v6.cbundle"))
    server.close()


def _directory(keys: Keys, stick: Path) -> None:
    (stick / "consentbox-v6.cbundle").mkdir()
    (stick / "consentbox-v6.cbundle" / "consentbox-v6.cbundle").write_bytes(keys.bundle())


def _two_bundles(keys: Keys, stick: Path) -> None:
    (stick / "consentbox-v6.cbundle").write_bytes(keys.bundle(6))
    (stick / "consentbox-v7.cbundle").write_bytes(keys.bundle(7))


def _bundle_and_directory(keys: Keys, stick: Path) -> None:
    (stick / "consentbox-v6.cbundle").write_bytes(keys.bundle(6))
    (stick / "old.CBUNDLE").mkdir()


def _nothing(keys: Keys, stick: Path) -> None:
    pass


def _below_the_top_only(keys: Keys, stick: Path) -> None:
    (stick / "bundles").mkdir()
    (stick / "bundles" / "consentbox-v6.cbundle").write_bytes(keys.bundle())
    (stick / "README.txt").write_text("the bundle is in bundles/\n")


def _dot_files_only(keys: Keys, stick: Path) -> None:
    (stick / "._consentbox-v6.cbundle").write_bytes(keys.bundle())  # what macOS leaves beside a copied file
    (stick / ".consentbox-v6.cbundle").write_bytes(keys.bundle())


@dataclasses.dataclass(frozen=True)
class Hostile:
    """A hostile stick: what is on it, and the refusal it must meet."""

    make: Callable[[Keys, Path], None]
    reason: BundleRefusal
    session_open: bool = False  # the box is in a session (it holds the session lock)


#: The issue's hostile sticks, each refused with its reason. docs/provisioning.md lists them by these ids.
HOSTILE = {
    # Not signed, or not by the organisation.
    "unsigned-json": Hostile(_file(lambda keys: keys.bundle()[HEADER_BYTES:]), BundleRefusal.NOT_SIGNED),
    "unsigned-empty-signature": Hostile(_file(lambda keys: b"consentbox-bundle/v1\nsignature: \n\n"
                                              + keys.bundle()[HEADER_BYTES:]), BundleRefusal.NOT_SIGNED),
    "signed-by-another-org-key": Hostile(_file(lambda keys: keys.bundle(key=OTHER_ORG)), BundleRefusal.BAD_SIGNATURE),
    "signature-byte-flipped": Hostile(_signature_flipped, BundleRefusal.BAD_SIGNATURE),
    "payload-first-byte-flipped": Hostile(_flipped(lambda data: HEADER_BYTES), BundleRefusal.BAD_SIGNATURE),
    "payload-middle-byte-flipped": Hostile(_flipped(lambda data: data.index(b'"retention_days":30') + 18),
                                           BundleRefusal.BAD_SIGNATURE),
    "payload-last-byte-flipped": Hostile(_flipped(lambda data: len(data) - 1), BundleRefusal.BAD_SIGNATURE),
    # Cut short, or too large.
    "truncated-to-nothing": Hostile(_truncated(lambda n: 0), BundleRefusal.NOT_SIGNED),
    "truncated-in-the-magic": Hostile(_truncated(lambda n: 10), BundleRefusal.NOT_SIGNED),
    "truncated-in-the-signature": Hostile(_truncated(lambda n: 80), BundleRefusal.NOT_SIGNED),
    "truncated-after-the-header": Hostile(_truncated(lambda n: HEADER_BYTES), BundleRefusal.BAD_SIGNATURE),
    "truncated-in-the-payload": Hostile(_truncated(lambda n: n // 2), BundleRefusal.BAD_SIGNATURE),
    "truncated-by-one-byte": Hostile(_truncated(lambda n: n - 1), BundleRefusal.BAD_SIGNATURE),
    "oversized-sparse-64GiB": Hostile(_oversized, BundleRefusal.TOO_LARGE),
    "oversized-by-one-byte": Hostile(_file(_over_the_cap_by_one_byte), BundleRefusal.TOO_LARGE),
    # Signed, but not to be installed.
    "version-equal": Hostile(_file(lambda keys: keys.bundle(INSTALLED_VERSION)), BundleRefusal.NOT_NEWER),
    "version-older": Hostile(_file(lambda keys: keys.bundle(1)), BundleRefusal.NOT_NEWER),
    "from-the-future": Hostile(_file(lambda keys: keys.bundle(created=int(time.time()) + 368 * DAY)),
                               BundleRefusal.FROM_THE_FUTURE),
    # Signed, but the contents are not a valid configuration.
    "malformed-json": Hostile(_file(lambda keys: signed(b'{"version": 6, "created": "2026-11-01T00:00:00Z", ')),
                              BundleRefusal.INVALID),
    "json-not-an-object": Hostile(_file(lambda keys: signed(b"[6]")), BundleRefusal.INVALID),
    "json-field-repeated": Hostile(_file(lambda keys: signed(keys.bundle()[HEADER_BYTES:].replace(
        b'{"created"', b'{"version":99,"created"'))), BundleRefusal.INVALID),
    "json-nested-too-deep": Hostile(_file(lambda keys: signed(b"[" * 30_000 + b"]" * 30_000)), BundleRefusal.INVALID),
    "json-integer-too-long": Hostile(_file(lambda keys: signed(b'{"version":' + b"9" * 5000 + b"}")),
                                     BundleRefusal.INVALID),
    "toml-inside": Hostile(_file(lambda keys: signed(
        b'version = 6\ncreated = 2026-11-01T00:00:00Z\nrecipients = ["age1..."]\n[policy]\nretention_days = 7\n')),
        BundleRefusal.INVALID),
    "garbage-inside": Hostile(_file(lambda keys: signed(bytes(random.Random(7).randbytes(2000)))),
                              BundleRefusal.INVALID),
    "unknown-field-top-level": Hostile(_payload(_set("upload_to", "https://example.org/")), BundleRefusal.INVALID),
    "unknown-field-in-policy": Hostile(_payload(_set("policy.record_without_consent", True)), BundleRefusal.INVALID),
    "unknown-field-in-retention": Hostile(_payload(_set("retention.keep_forever", True)), BundleRefusal.INVALID),
    "recipient-not-age1": Hostile(_payload(_set("recipients", ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"])),
                                  BundleRefusal.INVALID),
    "recipient-bad-checksum": Hostile(_payload(_set("recipients", ["age1" + "q" * 58])), BundleRefusal.INVALID),
    "recipients-empty": Hostile(_payload(_set("recipients", [])), BundleRefusal.INVALID),
    "recipient-a-secret-key": Hostile(_payload(_set("recipients", [SECRET])), BundleRefusal.INVALID),
    "recipients-a-secret-key-not-a-list": Hostile(_payload(_set("recipients", SECRET)), BundleRefusal.INVALID),
    "policy-retention-zero": Hostile(_payload(_set("policy.retention_days", 0)), BundleRefusal.INVALID),
    "policy-retention-over-ten-years": Hostile(_payload(_set("policy.retention_days", 3651)), BundleRefusal.INVALID),
    "policy-bundle-ahead-days-zero": Hostile(_payload(_set("policy.bundle_ahead_days", 0)), BundleRefusal.INVALID),
    "policy-value-wrong-type": Hostile(_payload(_set("policy.rate", "48000")), BundleRefusal.INVALID),
    "policy-on-withdrawal-unknown": Hostile(_payload(_set("policy.on_withdrawal", "publish")), BundleRefusal.INVALID),
    "retention-existing-days-negative": Hostile(_payload(_set("retention.existing_days", -1)), BundleRefusal.INVALID),
    # Valid on its own, but not on this box: 4 parties cannot consent on its 3 separate CONSENT buttons.
    "policy-more-parties-than-consent-buttons": Hostile(
        _file(lambda keys: keys.bundle(policy=Policy(default_parties=4))), BundleRefusal.INVALID),
    # Not a regular file, or not exactly one bundle.
    "symlink-to-a-valid-bundle": Hostile(_symlink_to_good_bundle, BundleRefusal.NOT_A_FILE),
    "relative-symlink-to-a-valid-bundle": Hostile(_relative_symlink, BundleRefusal.NOT_A_FILE),
    "fifo": Hostile(_fifo, BundleRefusal.NOT_A_FILE),
    "character-device-node": Hostile(_device(stat.S_IFCHR, 1, 5), BundleRefusal.NOT_A_FILE),  # /dev/zero: endless
    "block-device-node": Hostile(_device(stat.S_IFBLK, 7, 0), BundleRefusal.NOT_A_FILE),
    "socket": Hostile(_socket, BundleRefusal.NOT_A_FILE),
    "directory-named-x.cbundle": Hostile(_directory, BundleRefusal.NOT_A_FILE),
    "two-bundles": Hostile(_two_bundles, BundleRefusal.SEVERAL_BUNDLES),
    "bundle-and-directory-named-x.cbundle": Hostile(_bundle_and_directory, BundleRefusal.SEVERAL_BUNDLES),
    "empty-stick": Hostile(_nothing, BundleRefusal.NO_BUNDLE),
    "bundle-only-in-a-subdirectory": Hostile(_below_the_top_only, BundleRefusal.NO_BUNDLE),
    "only-dot-files": Hostile(_dot_files_only, BundleRefusal.NO_BUNDLE),
    # A good bundle at the wrong moment.
    "session-in-progress": Hostile(_file(lambda keys: keys.bundle()), BundleRefusal.SESSION_IN_PROGRESS,
                                   session_open=True),
}


def the_bundle_read(stick: Path) -> bytes | None:
    """The bytes of the stick's one regular *.cbundle file (what the box reads), if there is one."""
    found = [p for p in stick.iterdir() if p.name.lower().endswith(".cbundle") and not p.name.startswith(".")]
    if len(found) == 1 and stat.S_ISREG(os.lstat(found[0]).st_mode):
        return found[0].read_bytes()
    return None


@contextlib.contextmanager
def session_open(box: Box, held: bool) -> Iterator[None]:
    """The box in a session: it holds the session lock, as the running box does from set-up to end."""
    lock = SessionLock(box.state)
    if held:
        assert lock.acquire(wait=False)
    try:
        yield
    finally:
        lock.release()


def assert_refused_and_nothing_changed(box: Box, done: subprocess.CompletedProcess, reason: BundleRefusal,
                                       before: dict[str, bytes], entries_before: int, digest: str | None) -> None:
    """Exit 2 with one line; every state file as it was; the ledger intact and ending with the refusal."""
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.endswith("\n") and done.stderr[:-1].isprintable(), f"not one printable line: {done.stderr!r}"
    assert done.stderr.startswith(f"consentbox: provisioning refused (code {reason.code}): {reason.text}")
    assert box.files() == before, "a refused stick changed the box's state"
    entries = box.entries()
    assert len(entries) == entries_before + 1
    assert entries[-1].kind is Kind.PROVISIONING_REFUSED and entries[-1].session is None
    assert dict(entries[-1].fields) == {"reason": reason.text, "bundle_sha256": digest}
    result = box.result()
    assert result.refusal is reason and result.version is None
    assert box.floor() <= time.time() + 1, "a refused bundle's date raised the clock floor"
    for text in (done.stderr, (box.state / PROVISIONING_RESULT).read_text(), (box.state / LEDGER).read_text()):
        assert not ECHOED_SECRET.search(text), f"a secret key was echoed: {text}"


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_stick_is_refused_and_changes_nothing(box, keys, tmp_path, case):
    hostile = HOSTILE[case]
    stick = new_stick(tmp_path)
    hostile.make(keys, stick)
    read = the_bundle_read(stick) if hostile.reason in READ_REFUSALS else None
    installed, before, entries_before = box.installed(), box.files(), len(box.entries())
    assert installed is not None
    with session_open(box, hostile.session_open):
        done = box.provision(stick)  # its timeout fails a stick read whole (64 GiB would take minutes), not by size
    assert box.installed() == installed
    assert_refused_and_nothing_changed(box, done, hostile.reason, before, entries_before,
                                       None if read is None else hashlib.sha256(read).hexdigest())


@pytest.mark.parametrize("case", ["signed-by-another-org-key", "malformed-json", "from-the-future",
                                  "symlink-to-a-valid-bundle", "two-bundles", "session-in-progress"])
def test_a_hostile_stick_leaves_an_unprovisioned_box_unprovisioned(keys, tmp_path, case):
    box = Box.new(tmp_path / "box")
    hostile = HOSTILE[case]
    stick = new_stick(tmp_path)
    hostile.make(keys, stick)
    box.state.mkdir(mode=0o700)
    with session_open(box, hostile.session_open):
        done = box.provision(stick)
    assert done.returncode == 2 and done.stderr.startswith(f"consentbox: provisioning refused (code "
                                                           f"{hostile.reason.code}): {hostile.reason.text}")
    assert box.installed() is None and not (box.state / f".{INSTALLED_BUNDLE}.tmp").exists()
    assert [e.kind for e in box.entries()] == [Kind.BOOT, Kind.PROVISIONING_REFUSED]


@pytest.mark.parametrize("name", [
    "evil\nconsentbox: installed consentbox-v9.cbundle: version 9, 1 recipient(s)\nx.cbundle",
    "\x1b[2J\x1b[Hconsentbox-v6.cbundle",
    b"\xff\xfeconsentbox-v6.cbundle",
], ids=["newline-forging-a-log-line", "terminal-escape", "not-utf-8"])
def test_a_hostile_file_name_is_refused_on_one_line_and_recorded(box, keys, tmp_path, name):
    # ext2/3/4 sticks may carry any byte but '/' and NUL in a name; the name reaches stderr (the journal)
    # and provisioning-result.json. A FIFO is refused without being opened, by name alone.
    stick = new_stick(tmp_path)
    os.mkfifo(os.path.join(os.fsencode(stick), name if isinstance(name, bytes) else os.fsencode(name)))
    installed, before, entries_before = box.installed(), box.files(), len(box.entries())
    done = box.provision(stick)
    assert box.installed() == installed
    assert_refused_and_nothing_changed(box, done, BundleRefusal.NOT_A_FILE, before, entries_before, None)


def test_the_hostile_sticks_are_the_table_in_the_docs():
    page = (Path(__file__).resolve().parents[2] / "docs" / "provisioning.md").read_text(encoding="utf-8")
    documented = re.findall(r"`test_a_hostile_stick_is_refused_and_changes_nothing\[([^\]]+)\]`", page)
    assert sorted(documented) == sorted(HOSTILE), "docs/provisioning.md and HOSTILE list different sticks"
    for case, hostile in HOSTILE.items():
        row = next(line for line in page.splitlines() if f"[{case}]`" in line)
        assert f"| {hostile.reason.code} |" in row and hostile.reason.text in row, row


# -- good bundles -----------------------------------------------------------------------------------


def test_a_good_bundle_installs_and_the_box_takes_up_its_recipients_and_policy(box, keys, tmp_path):
    stick = new_stick(tmp_path)
    created = int(time.time()) + 3 * DAY  # IT's workstation is ahead of the box: the floor follows it
    data = keys.bundle(6, created=created, policy=Policy(retention_days=7))
    (stick / "consentbox-v6.cbundle").write_bytes(data)
    (stick / "._consentbox-v6.cbundle").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # ignored
    before = len(box.entries())
    done = box.provision(stick)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "consentbox: installed 'consentbox-v6.cbundle': version 6, 1 recipient(s)\n"
    assert box.installed() == data
    entries = box.entries()
    assert len(entries) == before + 1 and entries[-1].kind is Kind.PROVISIONING
    assert dict(entries[-1].fields) == {"bundle_version": 6, "recipients": 1,
                                        "bundle_sha256": hashlib.sha256(data).hexdigest()}
    assert box.result() == Result(None, "installed 'consentbox-v6.cbundle': version 6, 1 recipient(s)", 6)
    assert box.floor() == created
    settings = load_settings(box.load_config())
    assert (settings.recipients, settings.policy, settings.version) == (
        (keys.new.recipient,), Policy(retention_days=7), 6)
    verified = run(ADMIN, "verify-ledger", box.state / LEDGER)
    assert verified.returncode == 0 and "provisioning" in verified.stdout, verified.stderr


def test_the_first_bundle_on_a_new_box_starts_its_ledger(keys, tmp_path):
    box = Box.new(tmp_path / "box")
    stick = new_stick(tmp_path)
    (stick / "clinic.CBUNDLE").write_bytes(keys.bundle(1))
    done = box.provision(stick)
    assert done.returncode == 0, done.stderr
    assert [e.kind for e in box.entries()] == [Kind.BOOT, Kind.PROVISIONING]
    assert stat.S_IMODE(box.state.stat().st_mode) == 0o700


def test_the_date_limit_is_the_installed_policys(keys, tmp_path):
    box = Box.new(tmp_path / "box")
    stick = new_stick(tmp_path)
    (stick / "clinic.cbundle").write_bytes(keys.bundle(1, policy=Policy(bundle_ahead_days=30)))
    assert box.provision(stick).returncode == 0
    (stick / "clinic.cbundle").write_bytes(keys.bundle(2, created=int(time.time()) + 31 * DAY))
    done = box.provision(stick)
    assert done.returncode == 2 and "(code 4): created too far ahead of the box's clock" in done.stderr
    (stick / "clinic.cbundle").write_bytes(keys.bundle(2, created=int(time.time()) + 29 * DAY))
    assert box.provision(stick).returncode == 0


@pytest.mark.parametrize("problem", ["missing", "another organisation's"])
def test_a_box_without_the_organisation_key_refuses_every_stick(box, keys, tmp_path, problem):
    stick = new_stick(tmp_path)
    data = keys.bundle()
    (stick / "consentbox-v6.cbundle").write_bytes(data)
    if problem == "missing":
        box.org_pub.unlink()
    else:
        box.org_pub.write_text(OTHER_ORG.public_key.to_string() + "\n")
    installed, before, entries_before = box.installed(), box.files(), len(box.entries())
    done = box.provision(stick)
    assert box.installed() == installed
    reason = BundleRefusal.NO_ORG_KEY if problem == "missing" else BundleRefusal.BAD_SIGNATURE
    assert_refused_and_nothing_changed(box, done, reason, before, entries_before,
                                       None if problem == "missing" else hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("source", ["missing", "the bundle file itself"])
def test_a_source_that_is_not_a_stick_is_unreadable(box, keys, tmp_path, source):
    path = tmp_path / "consentbox-v6.cbundle"
    if source != "missing":
        path.write_bytes(keys.bundle())
    installed, before, entries_before = box.installed(), box.files(), len(box.entries())
    done = box.provision(path)
    assert box.installed() == installed
    assert_refused_and_nothing_changed(box, done, BundleRefusal.UNREADABLE, before, entries_before, None)


# -- loop-attached stick images ---------------------------------------------------------------------

#: A `umount` ahead of the real one on PATH: it records the kernel's own line for the mount point and
#: whether the device is read-only at that moment, so the test sees how the stick really was mounted,
#: then unmounts it.
UMOUNT_SHIM = """#!/bin/sh
for last; do :; done
line=$(awk -v where="$last" '$5 == where' /proc/self/mountinfo)
device=$(printf '%s\\n' "$line" | awk '{ for (i = 1; i < NF; i++) if ($i == "-") { print $(i + 2); exit } }')
printf '%s device-read-only=%s\\n' "$line" "$(blockdev --getro "$device")" >> "$CONSENTBOX_TEST_MOUNTS"
exec /usr/bin/umount "$@"
"""


@dataclasses.dataclass
class StickImages:
    root: Path
    env: dict[str, str]
    mounts: Path
    scratch: Path
    images: list[Path] = dataclasses.field(default_factory=list)

    def attach(self, contents: Callable[[Path], None] | None, size: int = 8 << 20) -> tuple[Path, Path]:
        """An ext4 image holding what `contents` puts in its top directory (None: no file system), attached
        to a new loop device; the device and the image."""
        number = len(self.images)
        image = self.root / f"stick{number}.img"
        with open(image, "xb") as file:
            file.truncate(size)
        if contents is not None:
            top = self.root / f"top{number}"
            top.mkdir()
            contents(top)
            made = run("mkfs.ext4", "-q", "-F", "-m", "0", "-d", top, image)
            assert made.returncode == 0, made.stderr
        self.images.append(image)
        attached = run("losetup", "--find", "--show", image)
        assert attached.returncode == 0, f"cannot attach a loop device: {attached.stderr}"
        return Path(attached.stdout.strip()), image

    def mounted_lines(self) -> list[list[str]]:
        return [line.split() for line in self.mounts.read_text().splitlines()] if self.mounts.exists() else []


@pytest.fixture
def stick_images(tmp_path: Path) -> Iterator[StickImages]:
    """Stick images on loop devices (detached afterwards), and the environment to provision them in."""
    if os.geteuid() != 0:
        pytest.fail("these tests attach and mount loop devices, which needs root: run them as root, as CI does")
    for tool in ("mkfs.ext4", "losetup", "blkid", "blockdev", "mount", "umount", "awk"):
        if shutil.which(tool) is None:
            pytest.fail(f"the `{tool}` command is not installed: install e2fsprogs, util-linux and mawk")
    if not re.search(r"\sext4$", Path("/proc/filesystems").read_text(), flags=re.MULTILINE):
        pytest.fail("the kernel cannot mount ext4: the stick images are ext4")
    shim, scratch = tmp_path / "shim", tmp_path / "tmp"
    shim.mkdir()
    scratch.mkdir()
    (shim / "umount").write_text(UMOUNT_SHIM)
    (shim / "umount").chmod(0o755)
    mounts = tmp_path / "mounts.log"
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "CONSENTBOX_TEST_MOUNTS": str(mounts),
           "TMPDIR": str(scratch)}
    images = StickImages(tmp_path, env, mounts, scratch)
    try:
        yield images
    finally:
        for image in images.images:
            for device in loop_devices(image):
                subprocess.run(["umount", device], capture_output=True, check=False)
                subprocess.run(["losetup", "--detach", device], capture_output=True, check=False)
            assert loop_devices(image) == [], f"{image} is still attached"


def sha256_file(path: Path) -> str:
    with open(path, "rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()


def assert_mounted_safely_and_gone(images: StickImages, device: Path, image: Path, image_digest: str) -> None:
    """The stick was mounted once, its device read-only, the mount ro, nosuid, nodev, noexec, nosymfollow, on
    a private directory that is gone; it is not mounted now, its device is as it was found (read-write, as
    attached) and its image not changed by a byte."""
    lines = images.mounted_lines()
    assert len(lines) == 1, lines
    line = lines[0]
    options, source = set(line[5].split(",")), line[line.index("-") + 2]
    assert {"ro", "nosuid", "nodev", "noexec", "nosymfollow"} <= options, line
    assert source == str(device) and line[-1] == "device-read-only=1", line
    assert not os.path.exists(line[4]) and list(images.scratch.iterdir()) == [], "the mount point was left behind"
    mounted = [row.split() for row in Path("/proc/self/mountinfo").read_text().splitlines()]
    assert not [row for row in mounted if row[row.index("-") + 2] == str(device)], f"{device} is still mounted"
    assert run("blockdev", "--getro", device).stdout.strip() == "0", "the device was not left as it was found"
    assert sha256_file(image) == image_digest, "the stick's image changed"


def test_a_stick_image_is_mounted_read_only_read_and_unmounted(box, keys, stick_images):
    data = keys.bundle(6)
    device, image = stick_images.attach(lambda top: (top / "consentbox-v6.cbundle").write_bytes(data))
    digest = sha256_file(image)
    done = box.provision(device, env=stick_images.env)
    assert done.returncode == 0, done.stderr
    assert box.installed() == data
    assert_mounted_safely_and_gone(stick_images, device, image, digest)


def _on_image(make: Callable[[Keys, Path], None]) -> Callable[[Keys, Path, Path], None]:
    return lambda keys, top, outside: make(keys, top)


def _image_symlink_to_a_bundle_on_the_box(keys: Keys, top: Path, outside: Path) -> None:
    (outside / "consentbox-v6.cbundle").write_bytes(keys.bundle())  # valid and newer, where the link points
    os.symlink(outside / "consentbox-v6.cbundle", top / "consentbox-v6.cbundle")


IMAGE_HOSTILE = {
    "symlink-to-a-valid-bundle-on-the-box": (_image_symlink_to_a_bundle_on_the_box, BundleRefusal.NOT_A_FILE),
    "fifo": (_on_image(_fifo), BundleRefusal.NOT_A_FILE),
    "character-device-node": (_on_image(HOSTILE["character-device-node"].make), BundleRefusal.NOT_A_FILE),
    "directory-named-x.cbundle": (_on_image(_directory), BundleRefusal.NOT_A_FILE),
    "two-bundles": (_on_image(_two_bundles), BundleRefusal.SEVERAL_BUNDLES),
    "empty-file-system": (_on_image(_nothing), BundleRefusal.NO_BUNDLE),
    "signed-by-another-org-key": (_on_image(HOSTILE["signed-by-another-org-key"].make), BundleRefusal.BAD_SIGNATURE),
}


@pytest.mark.parametrize("case", IMAGE_HOSTILE)
def test_a_hostile_stick_image_is_refused_read_only_and_unmounted(box, keys, stick_images, tmp_path, case):
    make, reason = IMAGE_HOSTILE[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    tops = []
    device, image = stick_images.attach(lambda top: (make(keys, top, outside), tops.append(top)))
    read = the_bundle_read(tops[0]) if reason in READ_REFUSALS else None
    digest = sha256_file(image)
    installed, before, entries_before = box.installed(), box.files(), len(box.entries())
    done = box.provision(device, env=stick_images.env)
    assert box.installed() == installed
    assert_refused_and_nothing_changed(box, done, reason, before, entries_before,
                                       None if read is None else hashlib.sha256(read).hexdigest())
    assert_mounted_safely_and_gone(stick_images, device, image, digest)


def test_a_stick_without_a_file_system_is_refused_unmounted(box, stick_images):
    device, image = stick_images.attach(None)
    digest = sha256_file(image)
    installed, before, entries_before = box.installed(), box.files(), len(box.entries())
    done = box.provision(device, env=stick_images.env)
    assert box.installed() == installed
    assert_refused_and_nothing_changed(box, done, BundleRefusal.UNREADABLE, before, entries_before, None)
    assert "no known file system" in done.stderr
    assert stick_images.mounted_lines() == [] and sha256_file(image) == digest


# -- power cuts during an install -------------------------------------------------------------------

WRAPPED = ("write", "fsync", "fdatasync", "replace", "rename")
PLACES = ("installed bundle", "expiry index", "clock floor", "ledger", "card ledger", "result", "device key",
          "state directory", "card directory", "other")
CALL_TRIALS = 150  # from a provisioned box (old → new); each call hit once, then at random
FRESH_TRIALS = 40  # from a box never provisioned (nothing → new)
WORKERS = 2
NEVER = 1 << 62
CALLS, PLACE = 0, 1  # slots of the memory shared with the child
SESSIONS = {"00000000000000aa": 20, "00000000000000bb": 2}  # recordings on the box: days since they started


@dataclasses.dataclass(frozen=True)
class Cut:
    number: int
    call: int  # the wrapped call to die at (1 is the first), or NEVER
    seed: int
    template: Path  # the box before provisioning
    stick: Path


@dataclasses.dataclass(frozen=True)
class Outcome:
    killed: bool
    place: str
    new: bool  # the new bundle was installed when the power came back


def _place_of(name: str, args: tuple, box: Box) -> str:
    target = Path(args[1] if name in ("replace", "rename") else os.readlink(f"/proc/self/fd/{args[0]}"))
    if target in (box.state, box.card):
        return "state directory" if target == box.state else "card directory"
    if target.parent == box.card:
        return "card ledger"
    file = target.name.removeprefix(".").removesuffix(".tmp")
    return {INSTALLED_BUNDLE: "installed bundle", "retention.json": "expiry index", CLOCK_FLOOR: "clock floor",
            LEDGER: "ledger", PROVISIONING_RESULT: "result", "device.key": "device key"}.get(file, "other")


def _provision_and_die(cut: Cut, box: Box, shared: memoryview) -> None:
    """Provision as `consentbox provision` does, dying as a power cut would at call `cut.call`; never returns."""
    try:
        def note_place(name: str, args: tuple) -> None:
            shared[PLACE] = PLACES.index(_place_of(name, args, box))

        config = box.load_config()
        cut_power_at(cut.call, shared, rng=random.Random(cut.seed), names=WRAPPED, on_cut=note_place)
        provision_from(config, cut.stick)
        os._exit(0)
    except BaseException:
        (box.root / "child-error").write_text(traceback.format_exc())
        os._exit(1)


def _run_cut(cut: Cut) -> Outcome:
    box = Box(cut.template).copy(cut.template.parent / f"cut{cut.number:03d}")
    old = box.installed()
    new = (cut.stick / "consentbox-v6.cbundle").read_bytes()
    shared = memoryview(mmap.mmap(-1, 16)).cast("q")
    pid = os.fork()
    if pid == 0:
        _provision_and_die(cut, box, shared)
    _, status = os.waitpid(pid, 0)
    assert not (box.root / "child-error").exists(), (box.root / "child-error").read_text()
    killed = os.WIFSIGNALED(status)
    assert killed or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and shared[CALLS] < cut.call)
    outcome = Outcome(killed, PLACES[shared[PLACE]] if killed else "-", box.installed() == new)
    assert box.installed() in (old, new), f"trial {cut.number}: the installed bundle is neither the old nor the new"
    # The box starts again: it takes up the old settings or the new ones, whole.
    config = box.load_config()
    settings = load_settings(config)
    assert settings.problem == ""
    if outcome.new:
        assert (settings.version, settings.policy.retention_days) == (6, 7)
    elif old is not None:
        assert (settings.version, settings.policy.retention_days) == (INSTALLED_VERSION, 30)
    else:
        assert (settings.version, settings.recipients) == (0, config.recipients)
    # The expiry index is whole, and never allows more than the installed policy: shortened before the install.
    expiries = RetentionIndex(box.state).entries()
    if old is not None:
        for session, entry in expiries.items():
            assert entry.expires in (entry.started + 30 * DAY, entry.started + 3 * DAY), session
            if outcome.new:
                assert entry.expires == entry.started + 3 * DAY, "the new policy is in force but expiries are not"
    if (box.state / CLOCK_FLOOR).exists():
        assert re.fullmatch(rb"\d+\n", (box.state / CLOCK_FLOOR).read_bytes()), "the clock floor is torn"
    if (box.state / PROVISIONING_RESULT).exists():
        Result.from_json((box.state / PROVISIONING_RESULT).read_bytes())
    # The ledger verifies; a torn tail is cut at the next start and recorded as a gap.
    ledger = box.state / LEDGER
    if old is not None or b"\n" in (ledger.read_bytes() if ledger.exists() else b""):
        summary = verify(ledger)
        if summary.tail is Tail.TORN:
            Ledger.open(ledger, None, DeviceSigningKey.load(box.state / "device.key")).close()
            after = verify(ledger)
            assert after.tail is Tail.COMPLETE and after.gaps == summary.gaps + 1
    # The stick inserted again finishes the job (or finds it done).
    again = provision_from(config, cut.stick)
    assert again.refusal in (None, BundleRefusal.NOT_NEWER)
    assert box.installed() == new and verify(box.state / LEDGER).tail is Tail.COMPLETE
    shutil.rmtree(box.root)
    return outcome


def _calls_in_a_whole_install(template: Path, stick: Path) -> int:
    shared = memoryview(mmap.mmap(-1, 16)).cast("q")
    box = Box(template).copy(template.parent / "counting")
    pid = os.fork()
    if pid == 0:
        _provision_and_die(Cut(0, NEVER, 0, template, stick), box, shared)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (box.root / "child-error").read_text()
    assert box.installed() == (stick / "consentbox-v6.cbundle").read_bytes()
    shutil.rmtree(box.root)
    return shared[CALLS]


def power_cuts(template: Box, keys: Keys, trials: int, seed: int) -> list[Outcome]:
    """`trials` installs of the same stick on copies of `template`, cut at each call once, then at random."""
    began = time.monotonic()
    now = time.time()
    template.state.mkdir(mode=0o700, exist_ok=True)
    for session, days in SESSIONS.items():
        RetentionIndex(template.state).add(session, now - days * DAY, 30)
    stick = new_stick(template.root.parent)
    # Dated ahead of the box, so the install also raises the clock floor; keeps what was recorded 3 days.
    (stick / "consentbox-v6.cbundle").write_bytes(keys.bundle(6, created=int(now) + DAY, policy=Policy(
        retention_days=7), existing_days=3))
    calls = _calls_in_a_whole_install(template.root, stick)
    assert calls < trials, "too few trials to cut every call once"
    draw = random.Random(seed)
    points = list(range(1, calls + 1)) + [draw.randint(1, calls + 2) for _ in range(trials - calls)]
    cuts = [Cut(n, point, draw.randrange(1 << 32), template.root, stick) for n, point in enumerate(points)]
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        outcomes = pool.map(_run_cut, cuts, chunksize=4)
    killed = [o for o in outcomes if o.killed]
    print(f"\n{len(outcomes)} power cuts of {calls} calls in {time.monotonic() - began:.1f} s; killed at "
          f"{dict(collections.Counter(o.place for o in killed))}; the new bundle in force after "
          f"{sum(o.new for o in killed)} of {len(killed)}")
    assert any(o.new for o in killed) and not all(o.new for o in killed)
    return outcomes


def test_a_power_cut_during_an_install_leaves_the_old_or_the_new_configuration(provisioned, keys, tmp_path):
    outcomes = power_cuts(provisioned.copy(tmp_path / "provisioned"), keys, CALL_TRIALS, seed=11)
    assert len(outcomes) >= 100
    places = {o.place for o in outcomes if o.killed}
    # (No "card ledger": provisioning is in no session, so nothing of it is written to the card.)
    assert {"installed bundle", "expiry index", "clock floor", "ledger", "result", "state directory"} <= places
    check_quoted({"provision-cut.trials": str(len(outcomes))})


def test_a_power_cut_while_provisioning_a_new_box_leaves_it_unprovisioned_or_provisioned(keys, tmp_path):
    # A box never started before: the provisioning job also makes its device key and starts its ledger.
    outcomes = power_cuts(Box.new(tmp_path / "fresh"), keys, FRESH_TRIALS, seed=12)
    assert {"installed bundle", "ledger"} <= {o.place for o in outcomes if o.killed}


# -- the next session, through `consentbox simulate` -------------------------------------------------


@pytest.fixture(scope="module")
def microphone(tmp_path_factory) -> Path:
    policy = Policy()
    path = tmp_path_factory.mktemp("input") / "microphone.wav"
    write_wav(path, position_pcm(0, 20 * policy.rate, policy), policy)
    return path


@dataclasses.dataclass
class Simulated:
    """A box (`tmp_path`/sim, laid out as a `Box`) after one `consentbox simulate` run, and what it reported."""

    box: SimulatedBox
    timeline: Timeline

    @property
    def card(self) -> Path:
        return self.box.card

    @property
    def state(self) -> Path:
        return self.box.state

    def of(self, event: str, **match) -> list[dict]:
        return self.timeline.of(event, **match)

    def sessions(self) -> list[str]:
        """Session ids in the order they were set up."""
        return self.timeline.sessions()

    def export(self, key: Path, out: Path) -> tuple[int, set[str]]:
        """`consentbox-admin export` of the card with `key`: its exit status and the sessions it exported."""
        exported = self.box.export(out, key=key, statuses=None)
        return exported.status, set(exported.wavs)


def simulate(tmp_path: Path, microphone: Path, keys: Keys, script: str, sticks: dict[str, bytes]) -> Simulated:
    """Play `script` on a box encrypting to the old key, with a stick directory (for `usb NAME`) holding
    each of `sticks`, and the organisation's public key."""
    box = SimulatedBox(tmp_path / "sim", keys.old.recipient.to_string(), microphone=microphone)
    for name, data in sticks.items():
        new_stick(box.root, name)
        (box.root / name / f"consentbox-{name}.cbundle").write_bytes(data)
    (box.root / "org.pub").write_text(ORG.public_key.to_string() + "\n")
    return Simulated(box, box.simulate(script, "--org-key", box.root / "org.pub", timeout=120))


def key_files(tmp_path: Path, keys: Keys) -> tuple[Path, Path]:
    paths = tmp_path / "old.key", tmp_path / "new.key"
    for path, identity in zip(paths, (keys.old, keys.new), strict=True):
        path.write_text(identity_file_text(identity, datetime(2026, 1, 1, tzinfo=UTC)))
    return paths


def opens_with(age: str, key: Path, card: Path, session: str) -> bool:
    """Whether every file of `session` on the card opens with `age -d -i key` (and none does when False)."""
    files = sorted(card.glob(f"{session}.*.age"))
    assert len(files) >= 2, files  # the manifest and at least one segment
    opened = {run(age, "-d", "-i", key, "-o", "/dev/null", path).returncode == 0 for path in files}
    assert len(opened) == 1, f"some files of {session} open with {key.name}, some do not"
    return opened.pop()


def test_a_good_bundle_changes_the_recipients_of_the_next_session(keys, microphone, tmp_path, age_cli):
    script = ("0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.5\n8 hold record 2.5\n"
              "12 usb v1\n"
              "14 tap record\n15 tap consent 1\n16 tap consent 2\n17 hold record 1.5\n22 hold record 2.5\n25 end\n")
    bundle = keys.bundle(1)
    sim = simulate(tmp_path, microphone, keys, script, {"v1": bundle})
    first, second = sim.sessions()
    assert sim.of("provisioning") == [{"t": 12.0, "event": "provisioning", "installed": True, "code": None,
                                       "detail": "installed 'consentbox-v1.cbundle': version 1, 1 recipient(s)"}]
    assert [(e["t"], e["bundle_version"]) for e in sim.of("settings")] == [(0.0, 0), (12.0, 1)]
    assert [(e["colour"], e["count"]) for e in sim.of("flash") if e["t"] == 12.0] == [("green", 3)]
    assert [e["tone"] for e in sim.of("tone") if e["t"] == 12.0] == ["all consented"]
    assert (sim.state / INSTALLED_BUNDLE).read_bytes() == bundle
    old_key, new_key = key_files(tmp_path, keys)
    assert opens_with(age_cli, old_key, sim.card, first) and not opens_with(age_cli, new_key, sim.card, first)
    assert opens_with(age_cli, new_key, sim.card, second) and not opens_with(age_cli, old_key, sim.card, second)
    assert sim.export(old_key, tmp_path / "old-export") == (1, {first})  # 1: the other session is not theirs
    assert sim.export(new_key, tmp_path / "new-export") == (1, {second})
    kinds = [e.kind for e in Box(sim.state.parent).entries() if e.kind in (Kind.END, Kind.PROVISIONING, Kind.SETUP)]
    assert kinds == [Kind.SETUP, Kind.END, Kind.PROVISIONING, Kind.SETUP, Kind.END]


def test_a_stick_during_a_session_is_refused_and_the_session_goes_on(keys, microphone, tmp_path, age_cli):
    script = ("0.5 usb v1\n"
              "2 tap record\n3 tap consent 1\n4 tap consent 2\n5 hold record 1.5\n"
              "8 usb v2\n"
              "12 hold record 2.5\n15 end\n")
    installed, hostile = keys.bundle(1), keys.bundle(2, to_old=True, policy=Policy(retention_days=1))
    sim = simulate(tmp_path, microphone, keys, script, {"v1": installed, "v2": hostile})
    (session,) = sim.sessions()
    at_the_stick = [e for e in sim.timeline if 8.0 <= e["t"] < 8.1]  # the step lands at the next period
    assert [e["event"] for e in at_the_stick] == ["provisioning", "flash", "tone"]
    refused, flash, tone = at_the_stick
    assert (refused["installed"], refused["code"]) == (False, 5)
    assert refused["detail"] == "a session is in progress: end the session, then insert the stick again"
    assert (flash["colour"], flash["count"], tone["tone"]) == ("amber", 5, "refused")
    # Recording never stopped: the REC LED on once, from the hold until the end; one state all along.
    assert [(e["on"], round(e["t"])) for e in sim.of("led", led="rec")] == [(True, 6), (False, 14)]
    assert [e["state"] for e in sim.of("state") if 6.0 <= e["t"] < 14.0] == ["RECORDING"]
    assert [(e["id"], e["end"], e["kept"]) for e in sim.of("session")] == [(session, "ended", True)]
    assert [e["bundle_version"] for e in sim.of("settings")] == [0, 1], "the refused bundle was taken up"
    assert (sim.state / INSTALLED_BUNDLE).read_bytes() == installed
    refusals = [e for e in Box(sim.state.parent).entries() if e.kind is Kind.PROVISIONING_REFUSED]
    assert [dict(e.fields) for e in refusals] == [{"reason": "a session is in progress", "bundle_sha256": None}]
    old_key, new_key = key_files(tmp_path, keys)
    assert opens_with(age_cli, new_key, sim.card, session) and not opens_with(age_cli, old_key, sim.card, session)


# --- A refused stick's code, again until the stick is pulled out ------------------------------------------------


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.1)


def test_a_refused_stick_flashes_its_code_on_the_running_box_until_it_is_pulled_out(identity, tmp_path):
    # The real job (`consentbox provision --until-removed`, as its unit runs it) beside a running box on mock pins.
    rig = BoxRig(tmp_path / "box", identity.recipient, Policy())
    (tmp_path / "org.pub").write_text(ORG.public_key.to_string() + "\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[keys]\norg_key = "{tmp_path / "org.pub"}"\n[box]\nstate_dir = "{rig.state}"\n'
                      f'[card]\npath = "{rig.card}"\nrequire_mount = false\n')
    stick = tmp_path / "stick"
    stick.mkdir()  # no bundle on it: refused, code 1
    with NotifySocket(tmp_path / "notify") as systemd, subprocess.Popen(
            [CONSENTBOX, "provision", "--config", config, "--until-removed", stick], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, "NOTIFY_SOCKET": str(systemd.path)}) as job:
        try:
            # Ready (its unit is Type=notify) once the attempt is over: the start timeout is not the reminders'.
            assert systemd.receive().startswith("READY=1\n")

            def flashed(count: int) -> bool:
                rig.box.check_readiness()  # as its main loop does
                return len(rig.of("flash")) >= count

            wait_until(lambda: flashed(3), 3 * REMIND_EVERY_SECONDS + 10, "two reminders")
            assert job.poll() is None, "the job ended with the stick still in"
            stick.rmdir()  # pulled out
            pulled = time.monotonic()
            out, err = job.communicate(timeout=REMIND_EVERY_SECONDS + 10)
        finally:
            job.kill()
    assert time.monotonic() - pulled <= REMIND_EVERY_SECONDS + 5
    assert job.returncode == 2 and out == ""
    assert err.startswith("consentbox: provisioning refused (code 1): no bundle on the stick") and err.count("\n") == 1
    assert {(e["colour"], e["count"]) for e in rig.of("flash")} == {("amber", 1)}
    # The attempt once: one timeline entry, one buzz, one ledger entry; the reminders only flash.
    assert [(e["installed"], e["code"]) for e in rig.of("provisioning")] == [(False, 1)]
    assert [e["tone"] for e in rig.of("tone")] == ["refused"]
    assert [e["kind"] for e in rig.entries()].count("provisioning_refused") == 1
    rig.box.shut_down()


def test_a_reminder_never_flashes_over_a_session(identity, tmp_path):
    rig = BoxRig(tmp_path / "box", identity.recipient, Policy())
    reminder = Result(BundleRefusal.SESSION_IN_PROGRESS, "a session is in progress", None, reminder=True)
    rig.start_recording()
    flashes = len(rig.of("flash"))
    write_result(rig.state, reminder)
    rig.box.check_readiness()
    assert len(rig.of("flash")) == flashes and rig.box.machine.capturing
    rig.end()
    flashes = len(rig.of("flash"))
    time.sleep(0.05)  # a new file the box can tell from the last (file times are coarse)
    write_result(rig.state, reminder)
    rig.box.check_readiness()
    assert [(e["colour"], e["count"]) for e in rig.of("flash")[flashes:]] == [("amber", 5)]
    assert rig.of("provisioning") == [] and "refused" not in [e["tone"] for e in rig.of("tone")]
    rig.box.shut_down()
