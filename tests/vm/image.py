"""The virtual machine's disks: a Debian bookworm root with the box installed as deploy/README.md says,
the state partition of its step 4, and a recording card formatted by the commands of its step 6.

The root is made in two stages. The first (cached under .cache/vm/, one per day and package list) is the
debootstrapped base of the package test with Debian's kernel (its initramfs made inside the root, since
vfat, exfat, snd-aloop, i6300esb and usb-storage are all modules), udev, systemd as init, and the
package's dependencies from the archive. The second follows the guide on a copy: the state partition's
fstab line (step 4), `apt install ./consentbox_*.deb` and the microphone (step 5), the card's fstab line
(step 6), systemd's hardware watchdog (step 8) and the organisation key (step 9). The guide's lines are
read from deploy/README.md itself, so a step that does not work here fails the test.

Steps left out, because they concern only a Raspberry Pi: flashing (3), repartitioning the system card
(4.2), config.txt (7, 8), overlayroot (10, raspi-config). What the test itself adds is marked TEST
ONLY: the command runner, the mock-pins drop-in (tests/vm/guest), snd-aloop (its microphone) and a root
without a password on the serial console.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from consentbox.core.policy import Policy
from consentbox.testing.signal import position_pcm, write_wav
from tests.conftest import required_tool
from tests.support.debian import (
    CHROOT_ENV,
    REPO,
    SUITE,
    base_tarball,
    cached_tarball,
    mounted,
    run,
    sources_list,
)

CACHE = REPO / ".cache" / "vm"
GUIDE = REPO / "deploy" / "README.md"
GUEST = Path(__file__).resolve().parent / "guest"
#: What the VM needs beside the box: the kernel and init, the loopback microphone's tools (aplay), stock
#: age (to open the card's files) and the card's file system tools.
PACKAGES = ["linux-image-amd64", "systemd-sysv", "udev", "kmod", "alsa-utils", "age", "exfatprogs", "dosfstools"]
#: The loopback's capture end: what the box records from (the test plays into DEV=0).
MICROPHONE = "plughw:CARD=Loopback,DEV=1,SUBDEV=0"
POLICY = Policy()
ROOT_SIZE = "3G"
STATE_SIZE = "64M"
#: Sparse; large enough for the box's own check that a 4-hour session fits (1,382 MiB).
CARD_SIZE = "2G"
#: Seconds of the position signal the room plays, over and over.
ROOM_SECONDS = 120


@dataclass(frozen=True)
class Guest:
    """A root image with the box installed, and the kernel and initramfs to boot it."""

    root: Path
    kernel: Path
    initrd: Path


def guide_code_line(prefix: str) -> str:
    """The one line of deploy/README.md's code blocks that starts with `prefix` (an fstab line)."""
    blocks = re.findall(r"^ *```[a-z]*\n(.*?)^ *```", GUIDE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith(prefix)]
    assert len(lines) == 1, f"deploy/README.md should have one code line starting {prefix!r}: {lines}"
    return lines[0]


def guide_here_document(path: str) -> str:
    """What deploy/README.md writes to `path` with `sudo tee PATH … <<'EOF'`."""
    found = re.findall(rf"tee {re.escape(path)} >/dev/null <<'EOF'\n(.*?)^EOF$", GUIDE.read_text(encoding="utf-8"),
                       re.MULTILINE | re.DOTALL)
    assert len(found) == 1, f"deploy/README.md should write {path} once with a here-document"
    return found[0]


def guide_format_command(file_system: str) -> list[str]:
    """Step 6's command that formats a card as `file_system` (exfat or vfat), its device left off."""
    tool = {"exfat": "mkfs.exfat", "vfat": "mkfs.vfat"}[file_system]
    line = guide_code_line(f"sudo {tool} ")
    words = line.split("#", 1)[0].split()
    assert words[-1] == "/dev/sdY1", line
    return words[1:-1]


def in_root(root: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run a command in the root (a chroot with /proc mounted), with a clean environment."""
    run("mount", "-t", "proc", "proc", root / "proc")
    try:
        return run("chroot", root, *command, env=CHROOT_ENV)
    finally:
        subprocess.run(["umount", root / "proc"], check=False)
        if mounted(root / "proc"):
            pytest.fail(f"cannot unmount {root / 'proc'}: remove {root} by hand")


def deb_dependencies(deb: Path) -> list[str]:
    """The package names of the .deb's Depends (versions left off)."""
    depends = run("dpkg-deb", "--field", deb, "Depends").stdout
    return [re.sub(r"\s*\(.*\)", "", part).strip() for part in depends.split(",")]


def vm_base(deb: Path, archive: list[tuple[str, str]]) -> Path:
    """Stage one: a tarball of the base system with the kernel, init and every package but ours."""
    packages = sorted({*PACKAGES, *deb_dependencies(deb)})
    key = hashlib.sha256("\n".join([*packages, *map(str, archive)]).encode()).hexdigest()[:12]
    mirror = next(uri for uri, suite in archive if suite == SUITE)

    def make(root: Path) -> None:
        run("tar", "--numeric-owner", "-C", root, "-xpf", base_tarball(mirror))
        (root / "etc/apt/sources.list").write_text(sources_list(archive))
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
        in_root(root, "apt-get", "update", "-qq")
        in_root(root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages)

    return cached_tarball(CACHE / f"{SUITE}-vm-{datetime.date.today().isoformat()}-{key}.tar",
                          f"{SUITE}-vm-*.tar", make)


def follow_the_guide(root: Path, deb: Path, org_pub: Path) -> None:
    """Stage two, on an unpacked stage one: deploy/README.md's steps that apply to any Debian machine."""
    fstab = root / "etc/fstab"
    fstab.write_text("/dev/vda  /  ext4  defaults  0  1\n")  # the VM's own root (the Pi's comes from the image)
    # Step 4: the state partition.
    with fstab.open("a") as lines:
        lines.write(guide_code_line("LABEL=consentbox-state") + "\n")
    (root / "var/lib/consentbox").mkdir(parents=True, exist_ok=True)
    # Step 5: the package, and the microphone in its configuration.
    shutil.copy(deb, root / "tmp")
    in_root(root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", f"/tmp/{deb.name}")
    (root / "tmp" / deb.name).unlink()
    with (root / "etc/consentbox/config.toml").open("a") as config:
        config.write(f'\n[audio]\ndevice = "{MICROPHONE}"\n')
    # Step 6: the card's fstab line (after step 5, which made the consentbox user it names).
    with fstab.open("a") as lines:
        lines.write(guide_code_line("LABEL=CONSENTBOX") + "\n")
    # Step 8: systemd drives the hardware watchdog (here QEMU's i6300esb).
    watchdog = root / "etc/systemd/system.conf.d/consentbox.conf"
    watchdog.parent.mkdir(parents=True, exist_ok=True)
    watchdog.write_text(guide_here_document("/etc/systemd/system.conf.d/consentbox.conf"))
    # Step 9: the organisation's public key.
    shutil.copy(org_pub, root / "tmp/org.pub")
    in_root(root, "install", "-m", "0644", "-o", "root", "-g", "root", "/tmp/org.pub", "/etc/consentbox/org.pub")
    (root / "tmp/org.pub").unlink()


def add_test_parts(root: Path) -> None:
    """TEST ONLY: the command runner, the mock pins, the loopback microphone and the sound it hears, a serial
    console login."""
    (root / "etc/hostname").write_text("consentbox-vm\n")
    lib = root / "usr/local/lib/consentbox-vmtest"
    lib.mkdir(parents=True)
    for name in ("agent.py", "mock_panel.py"):
        shutil.copy(GUEST / name, lib / name)
    write_wav(lib / "room.wav", position_pcm(0, ROOM_SECONDS * POLICY.rate, POLICY), POLICY)
    units = root / "etc/systemd/system"
    for unit, target in (("consentbox-vmtest-agent.service", "sysinit.target"),
                         ("consentbox-vmtest-room.service", "multi-user.target")):
        shutil.copy(GUEST / unit, units)
        (units / f"{target}.wants").mkdir(exist_ok=True)
        (units / f"{target}.wants" / unit).symlink_to(f"/etc/systemd/system/{unit}")
    (units / "consentbox.service.d").mkdir()
    shutil.copy(GUEST / "vmtest-mock-pins.conf", units / "consentbox.service.d")
    (root / "etc/modules-load.d/snd-aloop.conf").write_text("snd-aloop\n")
    in_root(root, "passwd", "--delete", "root")


def build_guest(deb: Path, org_pub: Path, archive: list[tuple[str, str]], directory: Path) -> Guest:
    """The root image, kernel and initramfs in `directory`."""
    for tool in ("mkfs.ext4", "qemu-img"):
        required_tool(tool)
    if os.geteuid() != 0:
        pytest.fail("the VM test makes its root in a chroot: run it as root, as CI does")
    root = directory / "root"
    root.mkdir()
    try:
        run("tar", "--numeric-owner", "-C", root, "-xpf", vm_base(deb, archive))
        follow_the_guide(root, deb, org_pub)
        add_test_parts(root)
        (kernel,) = (root / "boot").glob("vmlinuz-*")
        (initrd,) = (root / "boot").glob("initrd.img-*")
        guest = Guest(directory / "root.img", directory / "vmlinuz", directory / "initrd.img")
        shutil.copyfile(kernel, guest.kernel)
        shutil.copyfile(initrd, guest.initrd)
        run("mkfs.ext4", "-q", "-F", "-L", "root", "-d", root, guest.root, ROOT_SIZE)
    finally:
        shutil.rmtree(root)
    return guest


def state_disk(path: Path) -> Path:
    """Step 4's state partition, as its own disk: ext4, labelled as the guide's fstab line expects."""
    line = guide_code_line("sudo mkfs.ext4 -L consentbox-state ")
    label = line.split()[3]
    run("truncate", "-s", STATE_SIZE, path)
    run("mkfs.ext4", "-q", "-L", label, path)
    return path


def card_disk(path: Path, file_system: str) -> Path:
    """A recording card formatted by step 6's command for `file_system` (the whole disk, no partition
    table, as many cards are formatted)."""
    command = guide_format_command(file_system)
    required_tool(command[0])
    run("truncate", "-s", CARD_SIZE, path)
    run(*command, path)
    return path


def overlay(base: Path, path: Path) -> Path:
    """A copy-on-write disk over `base`, so each boot starts from the same root."""
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", path)
    return path
