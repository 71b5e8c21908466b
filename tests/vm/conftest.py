"""The VM test's machines: one boot per card file system (exFAT, then FAT32), each running every check of
tests/vm/test_vm.py in order (`make vm-test`; `make test` runs it too).

Needs root (the root image is made in a chroot), debootstrap, qemu-system-x86, exfatprogs, dosfstools and
mtools: a missing one fails the test, never skips it (`make test` installs them all: system-packages.txt).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consentbox.crypto import X25519Identity
from tests.conftest import required_tool
from tests.support import debian
from tests.vm.image import Guest, build_guest, card_disk, overlay, state_disk
from tests.vm.machine import Machine

#: What a check measured, said (printed, and kept for the summary table at the end of the run).
Say = Callable[[str], None]
#: Each VM check as it ended: its name, passed or failed, and what it said.
_OUTCOMES: list[tuple[str, str, list[str]]] = []
ADMIN = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "consentbox-admin"
FILE_SYSTEMS = ["exfat", "vfat"]
POLICY_TOML = "[policy]\nretention_days = 30\n"


@dataclass(frozen=True)
class Organisation:
    """The organisation's key pair (init-org) and a bundle to the supervisor, on a stick image."""

    key: Path
    pub: Path
    stick: Path
    hostile_stick: Path


def admin(*args: str | Path, stdin: str | None = None) -> str:
    return debian.run(ADMIN, *args, input=stdin).stdout


@pytest.fixture(scope="session")
def organisation(tmp_path_factory: pytest.TempPathFactory, identity: X25519Identity) -> Organisation:
    """init-org and bundle as the guide's steps 9 and 11 run them, the bundle on a FAT stick image."""
    for tool in ("mkfs.vfat", "mcopy"):
        required_tool(tool)
    directory = tmp_path_factory.mktemp("org")
    admin("init-org", "--out", directory / "org")
    (directory / "policy.toml").write_text(POLICY_TOML)
    (directory / "stick").mkdir()
    admin("bundle", "--org-key", directory / "org/org.key", "--recipient", identity.recipient.to_string(),
          "--policy", directory / "policy.toml", "--version", "1", "--single-recipient", "--out", directory / "stick")
    (bundle,) = (directory / "stick").iterdir()
    stick = fat_stick(directory / "stick.img", bundle)
    # The same bundle with one byte of its signed payload changed: a forgery.
    forged = directory / "forged" / "consentbox-v2.cbundle"
    forged.parent.mkdir()
    data = bytearray(bundle.read_bytes())
    data[-1] ^= 1
    forged.write_bytes(data)
    return Organisation(directory / "org/org.key", directory / "org/org.pub", stick,
                        fat_stick(directory / "hostile-stick.img", forged))


def fat_stick(path: Path, bundle: Path) -> Path:
    """A FAT stick image with `bundle` in its top directory, made without mounting it."""
    debian.run("truncate", "-s", "64M", path)
    debian.run("mkfs.vfat", "-n", "STICK", path)
    debian.run("mcopy", "-i", path, bundle, f"::{bundle.name}")
    return path


@pytest.fixture(scope="session")
def guest(tmp_path_factory: pytest.TempPathFactory, organisation: Organisation) -> Guest:
    """The root image, built once for both file systems."""
    directory = tmp_path_factory.mktemp("guest")
    deb = debian.build_deb(tmp_path_factory.mktemp("deb"))
    return build_guest(deb, organisation.pub, debian.archive(), directory)


@pytest.fixture(scope="module", params=FILE_SYSTEMS)
def vm(request: pytest.FixtureRequest, guest: Guest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    """A booted machine whose card is formatted `request.param` (the module's last test powers it off)."""
    file_system = request.param
    directory = tmp_path_factory.mktemp(f"vm-{file_system}")
    card = card_disk(directory / "card.img", file_system)
    disks = {"state": (state_disk(directory / "state.img"), "writethrough")}
    machine = Machine(guest, directory, disks, card, file_system)
    try:
        machine.start(overlay(guest.root, directory / "root.qcow2"))
        yield machine
    finally:
        if machine.running:  # a check failed before the last one powered it off: keep its journal
            print(f"\nthe guest's journal: {machine.save_journal()}")
        machine.close()


@pytest.fixture
def say(record_property: Callable[[str, object], None]) -> Say:
    """Print what a check measured, and keep it for the summary table."""
    def said(text: str) -> None:
        print(f"\n{text}")
        record_property("measured", text)
    return said


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.failed:
        measured = [str(value) for key, value in report.user_properties if key == "measured"]
        _OUTCOMES.append((report.nodeid.split("::", 1)[-1], report.outcome, measured))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The summary table of issue 18: each check on each file system, passed or failed, and its figures."""
    if not _OUTCOMES:
        return
    terminalreporter.section("the box under systemd (tests/vm): each check and what it measured")
    for name, outcome, measured in _OUTCOMES:
        terminalreporter.write_line(f"{outcome.upper():7} {name}")
        for line in "\n".join(measured).splitlines():
            terminalreporter.write_line(f"        {line}")
