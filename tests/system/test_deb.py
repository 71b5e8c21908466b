"""The Debian package: built by packaging/build-deb, clean for lintian, and installed into a clean Debian
bookworm chroot, where the box records a short session on the distro's own Python packages.

The chroot comes from debootstrap (minbase) from the Debian mirror the host's apt uses; its tarball is
cached under .cache/debootstrap/, one per suite and day, so that repeated runs skip debootstrap.
`apt-get install ./consentbox_*.deb` then takes the dependencies from the archive: Python 3.11,
python3-cryptography 38, python3-gpiozero 1.6.2 and python3-alsaaudio 0.8.4, which cannot capture on
Python 3.11, so the session proves the box's libasound fallback (hw/alsa_ctypes.py).

Needs root (chroot, mounting /proc), debootstrap, lintian, dpkg-deb, man (man-db) and age: a missing one
fails the test, never skips it (`make test` installs them all).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from consentbox import __version__
from consentbox.admin import cli as admin_cli
from consentbox.cli import consentbox as box_cli
from consentbox.core.errors import PinDriverMissing
from consentbox.core.policy import Policy
from consentbox.crypto.exposure import parse_examples
from consentbox.recording.card_id import CARD_ID_NAME
from consentbox.testing.signal import position_pcm, spans, write_wav
from tests.conftest import required_tool
from tests.support.debian import CHROOT_ENV, REPO, build_deb, fresh_chroot, in_chroot, load_script, run

GUIDE = REPO / "deploy" / "README.md"
POLICY = Policy()
DEPENDS = ["python3 (>= 3.11)", "python3-alsaaudio", "python3-cryptography", "python3-gpiozero",
           "python3-systemd", "libasound2", "mount", "systemd"]
#: gpiozero's pin drivers (packaging/README.md, "Dependencies"): Raspberry Pi OS has them, Debian's amd64 archive not.
PIN_DRIVERS = ["python3-lgpio", "python3-rpi.gpio"]
#: The guides in /usr/share/doc/consentbox, from the tree.
DOCS = {"deploy-guide.md.gz": "deploy/README.md", "wiring.svg": "deploy/wiring.svg",
        "status-codes.md.gz": "docs/status-codes.md", "provisioning.md.gz": "docs/provisioning.md",
        "product.md.gz": "docs/product.md", "supervisor.md.gz": "docs/supervisor.md"}
PARSERS = {"consentbox": box_cli.build_parser, "consentbox-admin": admin_cli.build_parser}
SCENARIO = """\
0 tap record
0.5 tap consent 1
1.0 tap consent 2
2 hold record 1.2
6 hold record 2.5
10 end
"""
# Two separate CONSENT buttons (the defaults have three).
TWO_SEATS = '[panel]\nconsent_pins = ["GPIO27", "GPIO22"]\n'
# Debian's hook for what maintainer scripts may start: deb-systemd-invoke asks it about each unit and action
# before it calls systemctl. This one writes the question down and allows it; no systemd runs in the
# chroot (systemctl finds no bus), so nothing starts.
POLICY_RC_D = '#!/bin/sh\necho "$1 $2" >> /tmp/policy-rc.d.log\nexit 0\n'


# --- The package itself.


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built from this tree, as `make deb` builds it."""
    output = tmp_path_factory.mktemp("deb")
    path = build_deb(output)
    assert path == output / f"consentbox_{__version__}_all.deb"
    return path


@pytest.fixture(scope="module")
def unpacked(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's files, unpacked with dpkg-deb (its control files in DEBIAN/)."""
    root = tmp_path_factory.mktemp("unpacked")
    run("dpkg-deb", "--raw-extract", deb, root)
    return root


#: What lintian may still say of the package, at info level: packaging/README.md ("lintian") lists each.
LINTIAN_INFO: set[tuple[str, str]] = set()


def test_lintian_pedantic_reports_no_errors_warnings_or_pedantic_tags(deb: Path) -> None:
    lintian = required_tool("lintian")
    done = subprocess.run([lintian, "--pedantic", "--display-info", "--display-experimental",
                           "--fail-on", "error,warning,pedantic", deb], capture_output=True, text=True)
    tags = [line for line in done.stdout.splitlines() if re.match(r"[A-Z]: ", line)]
    assert [tag for tag in tags if not tag.startswith("I: ")] == [] and done.returncode == 0, done.stdout + done.stderr
    info = [re.fullmatch(r"I: consentbox: (\S+) \[(.+)\]", tag) for tag in tags]
    assert all(info), tags
    said = {match.group(1, 2) for match in info if match}
    assert said == LINTIAN_INFO, "packaging/README.md lists what lintian still says: mend it and LINTIAN_INFO"


def test_control_fields(deb: Path) -> None:
    fields = {name: run("dpkg-deb", "--field", deb, name).stdout.strip()
              for name in ("Package", "Version", "Architecture", "Depends", "Recommends")}
    assert fields == {"Package": "consentbox", "Version": __version__, "Architecture": "all",
                      "Depends": ", ".join(DEPENDS), "Recommends": " | ".join(PIN_DRIVERS)}


def test_it_holds_the_python_package_its_commands_units_and_config(unpacked: Path) -> None:
    package = unpacked / "usr/lib/python3/dist-packages/consentbox"
    source = REPO / "firmware/consentbox"
    modules = {path.relative_to(source) for path in source.rglob("*.py")}
    assert {path.relative_to(package) for path in package.rglob("*.py")} == modules
    assert (package / "box/defaults.toml").read_bytes() == (source / "box/defaults.toml").read_bytes()
    assert (package / "sim/scenarios/demo.txt").is_file()
    assert not list(package.rglob("__pycache__")), "byte-code is compiled on the box, not shipped"
    for command in ("consentbox", "consentbox-admin"):
        script = unpacked / "usr/bin" / command
        assert script.read_text().startswith("#!/usr/bin/python3\n") and os.access(script, os.X_OK)
    for name, destination in _systemd_table().items():
        assert (unpacked / destination.lstrip("/")).read_bytes() == (REPO / "systemd" / name).read_bytes()
    assert (unpacked / "DEBIAN/conffiles").read_text().split() == ["/etc/consentbox/config.toml"]
    assert not (unpacked / "etc/consentbox/org.pub").exists()
    assert not list(unpacked.rglob("*.dist-info")), "pip's metadata would name dependencies dpkg does not manage"


def test_it_ships_the_guides_its_copyright_and_changelog(unpacked: Path) -> None:
    doc = unpacked / "usr/share/doc/consentbox"
    assert sorted(path.name for path in doc.iterdir()) == sorted(["changelog.gz", "copyright", *DOCS])
    for name, source in DOCS.items():
        content = (doc / name).read_bytes()
        assert (gzip.decompress(content) if name.endswith(".gz") else content) == (REPO / source).read_bytes()
    assert "](wiring.svg)" in (REPO / "deploy/README.md").read_text(), "the guide no longer shows wiring.svg"
    assert (doc / "copyright").read_bytes() == (REPO / "packaging/copyright").read_bytes()
    assert gzip.decompress((doc / "changelog.gz").read_bytes()) == (REPO / "packaging/changelog").read_bytes()


def man_page(unpacked: Path, command: str) -> str:
    """The command's man page as man renders it, checked the way lintian checks it: no warning at all."""
    page = unpacked / f"usr/share/man/man1/{command}.1.gz"
    done = subprocess.run([required_tool("man"), "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page],
                          capture_output=True, text=True, env={**os.environ, "MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    rendered = subprocess.run([required_tool("man"), "-l", page], capture_output=True, text=True, check=True,
                              env={**os.environ, "MANWIDTH": "400", "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": ""})
    return rendered.stdout


@pytest.mark.parametrize("command", PARSERS)
def test_each_command_s_man_page_has_every_subcommand_its_options_and_examples(unpacked: Path, command: str) -> None:
    page = man_page(unpacked, command)
    sections = re.findall(r"^([A-Z][A-Z ]+)$", page, re.MULTILINE)
    assert sections == ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXAMPLES", "FILES", "SEE ALSO"]
    assert f"{command} {__version__}" in page.splitlines()[-1]
    commands = page.split("\nCOMMANDS\n")[1].split("\nEXAMPLES\n")[0]
    examples = page.split("\nEXAMPLES\n")[1].split("\nFILES\n")[0]
    parser = PARSERS[command]()
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for name, sub in subparsers.choices.items():
        assert re.search(rf"^   {re.escape(name)}\n       {re.escape(command)} {re.escape(name)} ", commands,
                         re.MULTILINE), f"no subsection for {name}"
        for action in sub._actions:
            for option in action.option_strings:
                assert f" {option}" in commands or option in ("-h", "--help"), (name, option)
        shown = parse_examples(sub.epilog)
        assert shown, f"`{command} {name}` has no examples (EXAMPLES in its module)"
        for example, what in shown:
            assert f"{what}:\n              {example}\n" in examples, example
            assert example.startswith(f"{command} {name}")
    for path in re.findall(r"/usr/share/doc/consentbox/[\w.-]*\w", page):
        assert (unpacked / path.lstrip("/")).is_file(), f"the {command} page names {path}, which is not installed"


@pytest.mark.parametrize("command", PARSERS)
def test_each_subcommand_s_help_shows_its_examples(command: str) -> None:
    (subparsers,) = [action for action in PARSERS[command]()._actions
                     if isinstance(action, argparse._SubParsersAction)]
    for name, sub in subparsers.choices.items():
        examples = parse_examples(sub.epilog)
        assert examples, f"`{command} {name}` has no examples"
        assert sub.format_help().endswith("examples:\n" + "".join(f"  {example}\n      {what}\n"
                                                                    for example, what in examples))


def build_deb_module() -> ModuleType:
    """packaging/build-deb, loaded as a module (its file has no .py), to call its checks one by one."""
    return load_script("packaging/build-deb", "build_deb")


def test_a_file_of_systemd_missing_from_its_readme_s_table_stops_the_build(tmp_path: Path, monkeypatch) -> None:
    build_deb = build_deb_module()
    shutil.copytree(REPO / "systemd", tmp_path / "systemd")
    monkeypatch.setattr(build_deb, "REPO", tmp_path)
    assert build_deb.systemd_files() == _systemd_table()
    (tmp_path / "systemd/consentbox-extra.timer").write_text("[Timer]\n")
    with pytest.raises(build_deb.BuildError, match=r"systemd/consentbox-extra\.timer: not in the table of "):
        build_deb.systemd_files()


def test_the_build_stops_unless_the_changelog_s_newest_entry_is_the_version() -> None:
    build_deb = build_deb_module()
    assert build_deb.changelog_date(__version__) > 0
    with pytest.raises(build_deb.BuildError, match="packaging/changelog: the newest entry is not for 99.0.0"):
        build_deb.changelog_date("99.0.0")


def test_the_same_tree_builds_the_same_package(deb: Path, tmp_path: Path) -> None:
    again = Path(run(sys.executable, REPO / "packaging/build-deb", tmp_path).stdout.strip())
    assert again.read_bytes() == deb.read_bytes()


def test_the_installed_config_sets_nothing_and_uncommented_is_the_defaults(unpacked: Path) -> None:
    text = (unpacked / "etc/consentbox/config.toml").read_text()
    assert tomllib.loads(text) == {}
    # Its comments point at the documents as installed, never at the tree's.
    assert not re.search(r"(?<!/)\b(docs|deploy)/", text), text
    pointed = re.findall(r"/usr/share/doc/consentbox/[\w.-]*\w", text)
    assert "/usr/share/doc/consentbox/product.md.gz" in pointed
    assert all((unpacked / path.lstrip("/")).is_file() for path in pointed), pointed
    uncommented = re.sub(r"^#(?=[\[a-z])", "", text, flags=re.MULTILINE)
    defaults = (REPO / "firmware/consentbox/box/defaults.toml").read_text()
    assert tomllib.loads(uncommented) == tomllib.loads(defaults)


def test_a_config_comment_naming_a_document_not_installed_stops_the_build(monkeypatch) -> None:
    build_deb = build_deb_module()
    defaults = (REPO / "firmware/consentbox/box/defaults.toml").read_text()
    assert "/usr/share/doc/consentbox/product.md.gz" in build_deb.config_template(defaults)
    monkeypatch.delitem(build_deb.DOCS, "docs/product.md")
    with pytest.raises(build_deb.BuildError, match=r"box/defaults\.toml points at docs/product\.md, which the package"):
        build_deb.config_template(defaults)


def _systemd_table() -> dict[str, str]:
    """systemd/README.md's table: file -> where it is installed."""
    rows = re.findall(r"^\|\s*`([^`/]+)`\s*\|\s*`(/[^`]+)`\s*\|", (REPO / "systemd/README.md").read_text(),
                      re.MULTILINE)
    assert rows, "systemd/README.md has no table of files and where they are installed"
    return dict(rows)


# --- A clean Debian bookworm chroot.


@pytest.fixture(scope="module")
def chroot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh bookworm minbase chroot with /proc mounted and apt pointed at the host's mirrors."""
    with fresh_chroot(tmp_path_factory.mktemp("chroot")) as root:
        yield root


@pytest.fixture(scope="module")
def installed(chroot: Path, deb: Path) -> Path:
    """The chroot with the package installed by apt from the .deb, dependencies from the archive."""
    shutil.copy(deb, chroot / "tmp")
    in_chroot(chroot, "apt-get", "update", "-qq")
    in_chroot(chroot, "apt-get", "install", "-y", "-qq", "--no-install-recommends", f"/tmp/{deb.name}")
    return chroot


def test_it_installs_with_the_distro_packages_and_sets_the_box_up(installed: Path) -> None:
    status = in_chroot(installed, "dpkg-query", "-W", "-f", "${Status} ${Version}", "consentbox").stdout
    assert status == f"install ok installed {__version__}"
    for command in ("consentbox", "consentbox-admin"):
        assert in_chroot(installed, command, "--version").stdout.strip() == f"{command} {__version__}"
    python = in_chroot(installed, "python3", "-c", "import sys; print(sys.version_info[:2] >= (3, 11))").stdout
    assert python.strip() == "True"
    # The user and its state directory (sysusers, tmpfiles); the byte-code; the units enabled.
    user = in_chroot(installed, "getent", "passwd", "consentbox").stdout.split(":")
    state = installed / "var/lib/consentbox"
    assert state.is_dir() and state.stat().st_uid == int(user[2]) and state.stat().st_mode & 0o777 == 0o700
    assert list((installed / "usr/lib/python3/dist-packages/consentbox").glob("__pycache__/*.pyc"))
    wants = installed / "etc/systemd/system"
    assert (wants / "multi-user.target.wants/consentbox.service").is_symlink()
    assert (wants / "timers.target.wants/consentbox-wipe.timer").is_symlink()
    assert (wants / "media-consentbox\\x2dcard.mount.wants/consentbox-wipe.service").is_symlink()


def guide_check(command: str) -> list[str]:
    """The units that step 9 of deploy/README.md checks with `systemctl COMMAND`, from its sh blocks."""
    step = re.search(r"^## 9\. .*?(?=^## 10\. )", GUIDE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert step is not None, "deploy/README.md has no step 9"
    blocks = re.findall(r"^```sh\n(.*?)^```", step.group(0), re.MULTILINE | re.DOTALL)
    commands = [line.split("#", 1)[0].split() for block in blocks for line in block.splitlines()]
    found = [words[2:] for words in commands if words[:2] == ["systemctl", command]]
    assert len(found) == 1 and found[0], f"step 9 of deploy/README.md should run `systemctl {command} UNIT…` once"
    return found[0]


def test_it_enables_exactly_the_units_the_guide_checks(installed: Path) -> None:
    units = guide_check("is-enabled")
    links = {link.name: link.readlink() for link in (installed / "etc/systemd/system").glob("*.wants/consentbox*")}
    assert sorted(links) == sorted(units), "the units postinst enabled are not those step 9 checks"
    assert all(target == Path("/lib/systemd/system") / name for name, target in links.items()), links
    # The guide's command, as IT types it on the box.
    assert in_chroot(installed, "systemctl", "is-enabled", *units).stdout.split() == ["enabled"] * len(units)


def postinst_invocations(root: Path, *upgraded_from: str) -> list[str]:
    """The "unit action" pairs the installed postinst asks deb-systemd-invoke for where systemd runs: run by
    hand as dpkg runs it, `configure` on a first install, `configure VERSION` on an upgrade from VERSION."""
    policy, running, log = root / "usr/sbin/policy-rc.d", root / "run/systemd/system", root / "tmp/policy-rc.d.log"
    assert not policy.exists() and not running.exists() and not log.exists()
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    running.mkdir(parents=True)  # how maintainer scripts tell that systemd is the running init
    try:
        run("chroot", root, "/var/lib/dpkg/info/consentbox.postinst", "configure", *upgraded_from,
            env={**CHROOT_ENV, "DPKG_MAINTSCRIPT_PACKAGE": "consentbox", "DPKG_MAINTSCRIPT_NAME": "postinst"})
        return sorted(log.read_text().splitlines()) if log.exists() else []
    finally:
        policy.unlink()
        running.rmdir()
        log.unlink(missing_ok=True)


def test_postinst_starts_exactly_the_units_the_guide_finds_active_and_an_upgrade_restarts_them(
        installed: Path) -> None:
    units = sorted(guide_check("is-active"))
    assert postinst_invocations(installed) == [f"{unit} start" for unit in units]
    assert postinst_invocations(installed, "0.0.1") == [f"{unit} restart" for unit in units]


def test_bookworm_python3_alsaaudio_cannot_capture_so_the_box_uses_libasound(installed: Path) -> None:
    probe = "import alsaaudio; print(hasattr(alsaaudio.PCM, 'info'))"
    assert in_chroot(installed, "python3", "-c", probe).stdout.strip() == "False", (
        "bookworm's python3-alsaaudio now has PCM.info (0.9.1+): this test no longer exercises hw/alsa_ctypes"
    )


def test_a_session_records_and_the_card_gets_encrypted_files(installed: Path) -> None:
    work = installed / "tmp/session"
    (work / "card").mkdir(parents=True)
    key = work / "supervisor.key"
    made = run(required_tool("age-keygen"), "-o", key)
    recipient = made.stderr.split()[-1]
    (work / "script.txt").write_text(SCENARIO)
    (work / "two-seats.toml").write_text(TWO_SEATS)
    write_wav(work / "microphone.wav", position_pcm(0, 20 * POLICY.rate, POLICY), POLICY)
    simulated = in_chroot(installed, "consentbox", "simulate", "--script", "/tmp/session/script.txt",
                          "--audio", "/tmp/session/microphone.wav", "--card", "/tmp/session/card",
                          "--recipient", recipient, "--config", "/tmp/session/two-seats.toml")
    timeline = [json.loads(line) for line in simulated.stdout.splitlines()]
    events = [entry["event"] for entry in timeline]
    assert "fault" not in events, simulated.stdout
    states = [entry["state"] for entry in timeline if entry["event"] == "state"]
    assert states[:4] == ["IDLE", "COLLECTING", "READY", "RECORDING"] and states[-1] == "IDLE", states
    rec = [(entry["t"], entry["on"]) for entry in timeline if entry["event"] == "led" and entry["led"] == "rec"]
    assert [on for _, on in rec] == [True, False]
    seconds = rec[1][0] - rec[0][0]
    (session,) = [entry for entry in timeline if entry["event"] == "session"]
    assert (session["end"], session["kept"]) == ("ended", True)

    card = work / "card"
    segment, manifest = card / f"{session['id']}.000.wav.age", card / f"{session['id']}.manifest.age"
    extract = card / f"{session['id']}.ledger.age"  # the session's ledger entries, encrypted as its audio is
    assert sorted(path.name for path in card.iterdir()) == sorted([segment.name, manifest.name, extract.name,
                                                                   CARD_ID_NAME])
    assert b"age-encryption.org/v1" in segment.read_bytes()[:40]

    # The host's age opens the segment: a WAV stream of the microphone's input from its start, as long
    # as the REC LED was on (within a period).
    decrypted = subprocess.run([required_tool("age"), "-d", "-i", key, segment], capture_output=True, check=True)
    audio = decrypted.stdout[decrypted.stdout.index(b"data") + 8:]
    (piece,) = spans(audio, POLICY)
    assert isinstance(piece, range) and piece.start == 0
    assert abs(len(piece) - seconds * POLICY.rate) <= POLICY.period_frames
    # So does the box's own admin tool, on Debian's python3-cryptography.
    in_chroot(installed, "consentbox-admin", "decrypt", "-i", "/tmp/session/supervisor.key",
              "-o", "/tmp/session/segment.wav", f"/tmp/session/card/{segment.name}")
    assert (work / "segment.wav").read_bytes() == decrypted.stdout


def test_debian_has_no_pin_driver_so_the_box_says_code_12_in_one_line(installed: Path) -> None:
    # Debian bookworm's amd64 archive has none of the recommended drivers (Raspberry Pi OS has them): the
    # Recommends cannot hold up the install, and bookworm's gpiozero 1.6.2 then finds no pin factory.
    for driver in PIN_DRIVERS:
        policy = in_chroot(installed, "apt-cache", "policy", driver).stdout  # empty for a package it never heard of
        assert "Candidate:" not in policy or "Candidate: (none)" in policy, policy
    (installed / "tmp/pins/card").mkdir(parents=True)
    (installed / "tmp/pins/config.toml").write_text('[card]\npath = "/tmp/pins/card"\nrequire_mount = false\n'
                                                   '[box]\nstate_dir = "/tmp/pins/state"\n')
    done = subprocess.run(["chroot", installed, "consentbox", "run", "--config", "/tmp/pins/config.toml"],
                          env=CHROOT_ENV, capture_output=True, text=True, timeout=120)
    errors = [line for line in done.stderr.splitlines() if not line.startswith("{")]  # but the timeline
    assert done.returncode == 3 and len(errors) == 1, done.stderr
    assert errors[0].startswith("consentbox: no GPIO pin driver: gpiozero could not load a pin factory (")
    assert errors[0].endswith(f"install python3-lgpio (or python3-rpi.gpio) and restart the box "
                              f"(status code {PinDriverMissing.code})")


def test_the_installed_config_points_at_installed_documents(installed: Path) -> None:
    config = (installed / "etc/consentbox/config.toml").read_text()
    pointed = re.findall(r"/usr/share/doc/consentbox/[\w.-]*\w", config)
    assert pointed and all((installed / path.lstrip("/")).is_file() for path in pointed), pointed


# Last: it removes the package from the module's chroot.
def test_purge_removes_the_package_and_keeps_the_ledger(installed: Path) -> None:
    in_chroot(installed, "apt-get", "purge", "-y", "-qq", "consentbox")
    assert not (installed / "usr/bin/consentbox").exists()
    assert not (installed / "usr/lib/python3/dist-packages/consentbox").exists(), "byte-code left behind"
    assert not (installed / "etc/systemd/system/multi-user.target.wants/consentbox.service").exists()
    assert not (installed / "etc/consentbox/config.toml").exists()
    assert (installed / "var/lib/consentbox").is_dir(), "purge must keep the consent ledger and device key"
