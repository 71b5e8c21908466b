"""The README's two commands on a fresh Debian bookworm, as a new user types them: `git clone`, `make run`,
`make test`, with nothing installed beforehand but what such a machine has.

The machine is a debootstrap (minbase) chroot (tests/support/debian.py) to which the test adds git, make,
python3, ca-certificates and sudo, and a user, alice, who may use sudo without a password (as Raspberry Pi
OS's first user does); where this machine's network re-signs TLS, also its CA certificates. alice clones
this checkout (its working tree, committed in the chroot, so that a local run tests local changes; in CI
the checkout is a fresh clone). Then `make run` must install the build packages itself (system-packages.txt,
through sudo), make the virtualenv and serve the panel page, fetched from the host (the chroot shares its
network), and `make test` must install the test packages, run mypy and ruff, and pass the tests marked
`fresh_clone`. Each step's time is printed (`pytest -s`): 3.5 minutes in all on a busy 2-core machine, most
of it `make test` installing its ~900 packages (about 400 MB downloaded).

Needs root (chroot, mounting /proc) and debootstrap; a missing one fails the test, never skips it.
"""

from __future__ import annotations

import http.client
import os
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import required_tool
from tests.support.debian import REPO, fresh_chroot, in_chroot, load_script, run

# What the new user has before typing the two commands (beyond debootstrap's minbase).
USER_PACKAGES = ["git", "make", "python3", "ca-certificates", "sudo"]
USER = "alice"
CLONE = f"/home/{USER}/consentbox"
# Where this machine's network re-signs TLS (as where these tests run), its own CAs are in LOCAL_CAS and
# these variables point pip (and npm) at the system's bundle: the fresh machine gets both, as its admin would.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
TRUST = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS")
# The user's shell environment: no DEBIAN_FRONTEND, so the Makefile's apt-get must not ask on its own.
USER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": f"/home/{USER}", "USER": USER, "LANG": "C.UTF-8",
            **{name: os.environ[name] for name in TRUST if name in os.environ}}
# A fresh machine downloads every package and wheel: generous, so that only a hang fails on time.
PATIENCE = 1800


def system_packages() -> ModuleType:
    """tools/system-packages, loaded as a module (its file has no .py), to read the list as make does."""
    return load_script("tools/system-packages", "system_packages")


def section(name: str) -> tuple[str, list[str]]:
    """What a section of system-packages.txt is for, and its packages."""
    module = system_packages()
    return module.read_sections(module.LIST.read_text())[name]


def installed(root: Path, packages: list[str]) -> list[bool]:
    """Whether dpkg has each package installed in the chroot."""
    shown = subprocess.run(["chroot", root, "dpkg-query", "--show", "--showformat", "${Package} ${db:Status-Status}\n",
                            *packages], capture_output=True, text=True).stdout  # exits 1 if it knows not all
    there = {line.split()[0] for line in shown.splitlines() if line.endswith(" installed")}
    return [package in there for package in packages]


def install_line(root: Path, name: str) -> str:
    """What make prints when it installs the packages of section `name` that the chroot lacks now."""
    why, packages = section(name)
    absent = [package for package, there in zip(packages, installed(root, packages), strict=True) if not there]
    assert absent, f"the fresh machine has every package of [{name}] already: this test would not show make install"
    return f"installing {' '.join(absent)} ({why}; list: system-packages.txt)"


def user_shell(root: Path, shell: str) -> list[str | Path]:
    """The command that runs `shell` as the user in the chroot (the host's chroot, found on the host's PATH)."""
    return [required_tool("chroot"), f"--userspec={USER}:{USER}", root, "sh", "-c", shell]


def as_user(root: Path, shell: str) -> subprocess.Popen[str]:
    """`shell` run by the user in the clone, in a process group of its own (as a terminal runs a command),
    output and errors on one pipe."""
    return subprocess.Popen(user_shell(root, f"cd {CLONE} && {shell}"), env=USER_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def kill(process: subprocess.Popen[str]) -> None:
    """End the command and all it started, if it is still running."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def lines_until(process: subprocess.Popen[str], pattern: str, deadline: float) -> tuple[list[str], re.Match[str]]:
    """The process's output lines up to the first that matches `pattern`; fails the test if it ends first or
    the deadline passes."""
    assert process.stdout is not None
    lines: list[str] = []
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while selector.select(timeout=max(0.0, deadline - time.monotonic())):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if found := re.search(pattern, line):
                return lines, found
    pytest.fail(f"no line matching {pattern!r} before the output ended or {PATIENCE} s passed:\n" + "\n".join(lines))


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The fresh bookworm with the user's packages and the user, who has this checkout cloned in `CLONE`."""
    started = time.monotonic()
    with fresh_chroot(tmp_path_factory.mktemp("fresh")) as root:
        if LOCAL_CAS.is_dir():  # ca-certificates adds them to the system's bundle as it installs
            shutil.copytree(LOCAL_CAS, root / LOCAL_CAS.relative_to("/"), dirs_exist_ok=True)
        # dpkg skips its fsyncs, as in Debian's container images: the root is thrown away after, and the
        # ~900 packages of `make test` unpack minutes faster.
        (root / "etc/dpkg/dpkg.cfg.d/unsafe-io").write_text("force-unsafe-io\n")
        in_chroot(root, "apt-get", "update", "-qq")
        in_chroot(root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *USER_PACKAGES)
        in_chroot(root, "useradd", "--create-home", "--shell", "/bin/sh", USER)
        sudoers = root / "etc/sudoers.d" / USER
        sudoers.write_text(f"{USER} ALL=(ALL) NOPASSWD: ALL\n")
        sudoers.chmod(0o440)
        checkout = root / "srv/checkout"
        files = run("git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
        for name in filter(None, files.split("\0")):
            if (REPO / name).is_file():  # not a tracked file deleted in the working tree
                (checkout / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, checkout / name)
        in_chroot(root, "chown", "-R", f"{USER}:{USER}", "/srv/checkout")
        commit = ("git init -q /srv/checkout && cd /srv/checkout && git add -A && "
                  f"git -c user.name={USER} -c user.email={USER}@example.org commit -q -m checkout && "
                  f"git clone -q /srv/checkout {CLONE}")
        run(*user_shell(root, commit), env=USER_ENV)
        print(f"\nthe fresh machine and the clone: {time.monotonic() - started:.0f} s")
        yield root


def test_make_run_installs_what_it_needs_and_serves_the_panel_page(machine: Path) -> None:
    expected = install_line(machine, "venv")
    started = time.monotonic()
    # Port 0: any free one, which the banner names (the chroot shares the host's network with other tests).
    process = as_user(machine, "exec make run RUN_ARGS='--port 0'")
    try:
        lines, found = lines_until(process, r"^ConsentBox front panel: http://127\.0\.0\.1:(\d+)/$",
                                   started + PATIENCE)
        served = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", int(found.group(1)), timeout=30)
        connection.request("GET", "/")
        answer = connection.getresponse()
        page = answer.read().decode()
        connection.close()
        assert answer.status == 200 and "<title>ConsentBox: simulated front panel</title>" in page
        os.killpg(process.pid, signal.SIGINT)  # Ctrl+C, which the terminal sends to make and the box alike
        rest, _ = process.communicate(timeout=60)
    finally:
        kill(process)
    print(f"make run served the page after {served - started:.0f} s")
    assert expected in lines, "\n".join(lines)
    assert "ConsentBox stopped." in rest, rest
    assert all(installed(machine, section("venv")[1]))


def test_make_test_installs_the_test_tools_lints_and_passes_the_marked_tests(machine: Path) -> None:
    marked = sum(path.read_text().count("\n@pytest.mark.fresh_clone\n") for path in (REPO / "tests").rglob("*.py"))
    assert marked >= 3, "mark a few fast tests that need neither root nor a tool with @pytest.mark.fresh_clone"
    expected = install_line(machine, "test")
    started = time.monotonic()
    process = as_user(machine, "make test PYTEST_ARGS='-m fresh_clone -p no:cacheprovider'")
    try:
        output, _ = process.communicate(timeout=PATIENCE)
    finally:
        kill(process)
    print(f"make test took {time.monotonic() - started:.0f} s")
    assert process.returncode == 0, output
    assert expected in output.splitlines() and all(installed(machine, section("test")[1])), output
    assert "Success: no issues found" in output and "All checks passed!" in output, "mypy and ruff ran and passed"
    assert list((machine / CLONE.lstrip("/") / ".cache").glob("cctv-age-*/index.js")), "the age vectors were fetched"
    # Each marked test is one case (none is parametrized), and nothing else ran.
    assert re.search(rf"^=+ {marked} passed, \d+ deselected in ", output, re.MULTILINE), output
