"""A clean Debian bookworm for the tests that install the box as IT does: the chroot of the package test
(tests/system/test_deb.py) and the virtual machine's root (tests/vm).

The base system comes from debootstrap (minbase) from the Debian mirror the host's apt uses; its tarball is
cached under .cache/debootstrap/, one per suite and day, so that repeated runs skip debootstrap.
"""

from __future__ import annotations

import datetime
import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import required_tool

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "debootstrap"
SUITE = "bookworm"
VARIANT = "minbase"
# A chroot gets a clean environment: nothing of the host's virtualenv, ALSA or locale settings.
CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
              "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}


def run(*command: str | Path, **options) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output if it fails."""
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, **options)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def host_sources() -> list[tuple[str, str]]:
    """(URI, suite) of each Debian archive entry in the host's apt sources for the host's release, as
    bookworm's."""
    release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    codename = release.get("VERSION_CODENAME", "").strip('"')
    suites = {codename, f"{codename}-updates", f"{codename}-security"}
    entries: list[tuple[str, str]] = []
    directory = Path("/etc/apt/sources.list.d")
    for path in [Path("/etc/apt/sources.list"), *sorted(directory.glob("*.list"))]:
        for line in path.read_text().splitlines() if path.is_file() else []:
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] in suites:
                entries.append((words[1], words[2]))
    for path in sorted(directory.glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
            if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes") != "no":
                entries += [(uri, suite) for uri in fields.get("URIs", "").split()
                            for suite in fields.get("Suites", "").split() if suite in suites]
    return [(uri.rstrip("/"), suite.replace(codename, SUITE, 1)) for uri, suite in entries]


def archive() -> list[tuple[str, str]]:
    """Where a chroot's packages come from: the host's mirrors, for bookworm and its updates; fails the
    test when the host names none."""
    entries = host_sources()
    if not any(suite == SUITE for _, suite in entries):
        pytest.fail("the host's apt sources name no Debian archive for its release: the chroot needs a mirror")
    return entries


def sources_list(entries: list[tuple[str, str]]) -> str:
    """/etc/apt/sources.list for `entries`."""
    return "".join(f"deb {uri} {suite} main\n" for uri, suite in entries)


def cached_tarball(tarball: Path, stale: str, make: Callable[[Path], None]) -> Path:
    """`tarball`, made once from an empty scratch root that `make` fills; older tarballs of its directory
    matching the glob `stale` are removed."""
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    scratch = tarball.parent / f"{tarball.name}.root"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        make(scratch)
        # Numeric owners, device nodes and modes as they are: the tarball is unpacked by root.
        run("tar", "--numeric-owner", "-C", scratch, "-cf", f"{tarball}.tmp", ".")
        os.replace(f"{tarball}.tmp", tarball)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for old in tarball.parent.glob(stale):
        if old != tarball:
            old.unlink()
    return tarball


def base_tarball(mirror: str) -> Path:
    """A debootstrapped base system as a tarball, made at most once a day."""
    debootstrap = required_tool("debootstrap")
    return cached_tarball(CACHE / f"{SUITE}-{VARIANT}-{datetime.date.today().isoformat()}.tar",
                          f"{SUITE}-{VARIANT}-*.tar",
                          lambda root: run(debootstrap, f"--variant={VARIANT}", SUITE, root, mirror))


def mounted(path: Path) -> bool:
    """Whether something is mounted at `path`."""
    return any(line.split()[1] == str(path) for line in Path("/proc/self/mounts").read_text().splitlines())


def build_deb(output: Path) -> Path:
    """The package built from this tree into `output`, as `make deb` builds it."""
    required_tool("dpkg-deb")
    built = run(sys.executable, REPO / "packaging/build-deb", output)
    return Path(built.stdout.strip())


@contextmanager
def fresh_chroot(directory: Path) -> Iterator[Path]:
    """A fresh bookworm minbase root under `directory`, apt pointed at the host's mirrors and /proc mounted
    (/dev is debootstrap's own nodes: null, zero, urandom, tty…); unmounted and removed after."""
    if os.geteuid() != 0:
        pytest.fail("a chroot test unpacks a root and mounts /proc in it: run it as root, as CI does")
    entries = archive()
    mirror = next(uri for uri, suite in entries if suite == SUITE)
    root = directory / "root"
    root.mkdir()
    run("tar", "--numeric-owner", "-C", root, "-xpf", base_tarball(mirror))
    (root / "etc/apt/sources.list").write_text(sources_list(entries))
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    run("mount", "-t", "proc", "proc", root / "proc")
    try:
        yield root
    finally:
        subprocess.run(["umount", root / "proc"], check=False)
        if mounted(root / "proc"):  # never delete through a mount
            pytest.fail(f"cannot unmount {root / 'proc'}: remove {root} by hand")
        shutil.rmtree(root)


def in_chroot(root: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run a command inside the chroot with a clean environment; fail the test if it fails."""
    return run("chroot", root, *command, env=CHROOT_ENV)


def load_script(relative: str, name: str) -> ModuleType:
    """A script of the checkout with no .py (packaging/build-deb, tools/system-packages), loaded as module
    `name`, so that a test calls its functions as the script does."""
    loader = importlib.machinery.SourceFileLoader(name, str(REPO / relative))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
