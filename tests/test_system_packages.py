"""tools/system-packages, which the make targets run to install the Debian packages of system-packages.txt.
Installing on a fresh machine, through sudo, is tests/system/test_two_commands.py's; these run the script
where the answer needs no apt-get."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools/system-packages"


def system_packages(*sections: str, path: str | None = None, script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:
    env = {"LANG": "C.UTF-8", "PATH": path if path is not None else "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run([sys.executable, script, *sections], capture_output=True, text=True, env=env)


def test_without_apt_get_it_says_in_one_line_what_to_install_and_make_goes_on(tmp_path: Path) -> None:
    done = system_packages("venv", path=str(tmp_path))  # a PATH with neither dpkg-query nor apt-get
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == ("Not a Debian system (no apt-get): install these, or your system's equivalents, needed to "
                           "build the virtualenv: python3-venv python3-dev gcc pkg-config libasound2-dev "
                           "libsystemd-dev (list: system-packages.txt)\n")


def test_when_nothing_is_missing_it_says_nothing() -> None:
    # The host runs this suite, so it has the test tools; a command of the package's name counts (npm).
    done = system_packages("test")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_an_unknown_section_or_none_is_refused_with_the_sections_named() -> None:
    for sections in ((), ("venv", "tests")):
        done = system_packages(*sections)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr == ("tools/system-packages: usage: tools/system-packages SECTION…; sections of "
                               "system-packages.txt: venv, test, bench\n")


def test_a_line_of_the_list_that_is_neither_a_section_nor_a_package_is_named(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    script = shutil.copy(SCRIPT, tmp_path / "tools")
    (tmp_path / "system-packages.txt").write_text("# comment\n[venv] for the venv\ngcc  why\n  [test] indented\n")
    done = system_packages("venv", script=Path(script))
    assert done.returncode == 2
    assert done.stderr == ("tools/system-packages: system-packages.txt:4: neither `[section] what for` nor a package "
                           "line: '  [test] indented'\n")
