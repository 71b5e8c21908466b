"""The card's fstab line in deploy/README.md: exFAT and FAT32 only, nosymfollow, options both drivers take,
each explained; and the box configured to take the same types as fstab mounts.

mount(8) tries each type of a list with the same options, and the kernel's exfat driver (like vfat)
refuses to mount with an option it does not know: one FAT-only option would leave every exFAT card
unmounted. So every option must be one mount(8) or systemd handles itself, or one both drivers parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from consentbox.box.config import load_config

README = Path(__file__).resolve().parent.parent / "deploy" / "README.md"
CARD_LINE = "LABEL=CONSENTBOX "

#: Options mount(8) turns into mount flags, or that only libmount and systemd read: no driver sees them.
NOT_FOR_THE_DRIVER = {"nofail", "nosuid", "nodev", "noexec", "nosymfollow", "noatime", "ro", "rw"}
#: The parameters both the kernel's exfat (fs/exfat/super.c) and vfat (fs/fat/inode.c) drivers parse.
BOTH_DRIVERS = {"uid", "gid", "umask", "dmask", "fmask", "allow_utime", "iocharset", "errors", "discard",
                "time_offset"}
#: What the guide relies on besides: no setuid, devices or programs from a card, boot without a card,
#: and blocks freed at once when recordings are deleted.
RELIED_ON = {"nosuid", "nodev", "noexec", "nofail", "x-systemd.device-timeout=10s", "discard"}


def card_line(readme: str) -> list[str]:
    """The six fields of the one line of the guide that mounts the recording card."""
    lines = [line.split() for line in readme.splitlines() if line.startswith(CARD_LINE)]
    assert len(lines) == 1, f"expected one fstab line for the card, found {len(lines)}"
    [fields] = lines
    assert len(fields) == 6, fields
    return fields


def faults(readme: str) -> list[str]:
    """What is wrong with the card's fstab line in `readme`; empty when nothing is."""
    fields = card_line(readme)
    options = fields[3].split(",")
    found = []
    if fields[2] != "exfat,vfat":
        found.append(f"type {fields[2]}: must be exfat,vfat")
    if "nosymfollow" not in options:
        found.append("no nosymfollow")
    found += [f"{option} missing" for option in sorted(RELIED_ON - set(options))]
    names = {option.partition("=")[0] for option in options}
    for_driver = {name for name in names if name not in NOT_FOR_THE_DRIVER and not name.startswith("x-systemd.")}
    found += [f"{name}: not an option both exfat and vfat take" for name in sorted(for_driver - BOTH_DRIVERS)]
    cells = re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE)  # the guide's table of the options
    explained = {option for cell in cells for option in cell.split(",")}
    found += [f"{option}: not explained" for option in sorted({fields[0], *fields[2].split(","), *options} - explained)]
    if fields[4:] != ["0", "0"]:
        found.append("dump or fsck asked for: systemd finds no checker for a list of types")
    return found


def test_the_card_line_mounts_exfat_or_vfat_nosymfollow_with_options_both_take():
    assert faults(README.read_text(encoding="utf-8")) == []


def test_the_box_takes_the_types_fstab_mounts_at_the_path_it_reads():
    fields = card_line(README.read_text(encoding="utf-8"))
    config = load_config()
    assert set(fields[2].split(",")) == config.card_file_systems
    assert fields[1] == str(config.card_path) and config.require_mount


@pytest.mark.parametrize(("change", "fault"), [
    (lambda line: line.replace("exfat,vfat", "auto"), "type auto: must be exfat,vfat"),
    (lambda line: line.replace("exfat,vfat", "exfat,vfat,ntfs3"), "type exfat,vfat,ntfs3: must be exfat,vfat"),
    (lambda line: line.replace(",nosymfollow", ""), "no nosymfollow"),
    (lambda line: line.replace("nofail,", ""), "nofail missing"),
    (lambda line: line.replace(",discard", ",discard,flush"), "flush: not an option both exfat and vfat take"),
    (lambda line: line.replace(",discard", ",discard,errors=remount-ro"), "errors=remount-ro: not explained"),
    (lambda line: line.replace("  0  0", "  0  2"), "dump or fsck asked for"),
], ids=["auto", "ntfs3", "nosymfollow", "nofail", "flush", "unexplained", "fsck"])
def test_a_card_line_that_drifts_is_caught(change: Callable[[str], str], fault: str):
    readme = README.read_text(encoding="utf-8")
    [line] = [line for line in readme.splitlines() if line.startswith(CARD_LINE)]
    assert any(found.startswith(fault) for found in faults(readme.replace(line, change(line))))
