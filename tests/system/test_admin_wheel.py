"""The supervisor's tool as a workstation gets it (issue 19, point 2): `pip install consentbox`, without the
box's extra, gives `consentbox-admin` with cryptography as its only dependency, and every one of its commands
works on a card that a simulated box recorded.

The wheel is built from a copy of the checkout's sources (pip's build isolation fetches setuptools, as
`pip install` from a source archive does) and installed into a fresh venv; cryptography comes from the
package index or pip's cache. The box's own command there says in one line what to install.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from consentbox.admin.cli import build_parser
from consentbox.core.policy import Policy
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.recording.manifest import extract_name, manifest_name, segment_name
from consentbox.state.files import DEVICE_KEY
from consentbox.testing.signal import write_wav

from .conftest import SimulatedBox

ROOT = Path(__file__).resolve().parents[2]
#: What a supervisor's machine may not have, and need not: the box's libraries, the `box` extra.
BOX_MODULES = ("gpiozero", "alsaaudio", "systemd")
SCRIPT = "0 tap record\n1 tap consent 1\n2 tap consent 2\n3 hold record 1.2\n9 hold record 2.5\n"


class Workstation:
    """A fresh venv with only the built wheel installed (and what it requires)."""

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.bin = venv / "bin"

    def admin(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """`consentbox-admin ARGS`, which must exit 0."""
        done = subprocess.run([self.bin / "consentbox-admin", *args], capture_output=True, text=True, timeout=120,
                              cwd=self.venv)
        assert done.returncode == 0, f"consentbox-admin {args[0]}: exit {done.returncode}\n{done.stderr}"
        return done

    def python(self, code: str) -> str:
        done = subprocess.run([self.bin / "python", "-I", "-c", code], capture_output=True, text=True, check=True,
                              timeout=120, cwd=self.venv)
        return done.stdout


@pytest.fixture(scope="module")
def workstation(tmp_path_factory) -> Workstation:
    """The wheel built from the checkout's sources, installed into a fresh venv without the `box` extra."""
    root = tmp_path_factory.mktemp("workstation")
    source = root / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    shutil.copytree(ROOT / "firmware", source / "firmware", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", root / "dist", source], check=True, timeout=600)
    [wheel] = (root / "dist").glob("consentbox-*.whl")
    subprocess.run([sys.executable, "-m", "venv", root / "venv"], check=True, timeout=120)
    station = Workstation(root / "venv")
    subprocess.run([station.bin / "python", "-m", "pip", "--disable-pip-version-check", "--no-input", "-q",
                    "install", wheel], check=True, timeout=600)
    return station


def test_the_wheel_requires_only_cryptography_and_installs_none_of_the_box_libraries(workstation: Workstation):
    requires = json.loads(workstation.python(
        "import importlib.metadata as m, json; print(json.dumps(m.requires('consentbox')))"))
    plain = [line for line in requires if "extra ==" not in line]
    assert plain == ["cryptography>=38"], requires
    box = sorted(line.split(";")[0].strip() for line in requires if 'extra == "box"' in line)
    assert box == ["gpiozero>=1.6.2", "pyalsaaudio>=0.8.4", "systemd-python>=235"], requires
    found = json.loads(workstation.python(
        f"import importlib.util, json; print(json.dumps([n for n in {list(BOX_MODULES)!r} "
        "if importlib.util.find_spec(n)]))"))
    assert found == []
    # Pure Python: one wheel for every platform.
    tags = workstation.python("import importlib.metadata as m; print(m.distribution('consentbox').read_text('WHEEL'))")
    assert "Tag: py3-none-any" in tags and "Root-Is-Purelib: true" in tags


def test_the_box_command_without_the_extra_says_what_to_install(workstation: Workstation):
    done = subprocess.run([workstation.bin / "consentbox", "run"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == ("consentbox: the box's commands need the box's dependencies: pip install "
                           "'consentbox[box]' (missing: gpiozero, pyalsaaudio, systemd-python)\n")
    help_text = subprocess.run([workstation.bin / "consentbox", "--help"], capture_output=True, text=True, timeout=60)
    assert help_text.returncode == 0 and "simulate" in help_text.stdout


def test_every_admin_command_works_on_a_recorded_card(workstation: Workstation, tmp_path: Path):
    [listed] = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    commands = set(listed.choices)
    assert all(f"\n    {command}" in workstation.admin("--help").stdout for command in commands)
    ran: set[str] = set()

    def admin(*args: str | Path) -> subprocess.CompletedProcess[str]:
        ran.add(str(args[0]))
        return workstation.admin(*args)

    # keygen: a supervisor's key and a second one (an escrow key), each 0600.
    keys = {}
    for name in ("supervisor", "escrow"):
        made = admin("keygen", "-o", tmp_path / f"{name}.key")
        keys[name] = made.stderr.split()[-1]
        assert keys[name].startswith("age1")
        assert (tmp_path / f"{name}.key").read_bytes().startswith(b"# created: ")
        assert b"\r" not in (tmp_path / f"{name}.key").read_bytes()
        if os.name == "posix":
            assert (tmp_path / f"{name}.key").stat().st_mode & 0o777 == 0o600
    supervisor_key = tmp_path / "supervisor.key"

    # encrypt and decrypt: the bytes back, every one (a text mode anywhere would change \r\n or \x1a).
    plaintext = bytes(range(256)) * 64 + b"\r\n\n\x1a"
    (tmp_path / "plain").write_bytes(plaintext)
    admin("encrypt", "-r", keys["supervisor"], "-r", keys["escrow"], "-o", tmp_path / "sealed.age", tmp_path / "plain")
    assert (tmp_path / "sealed.age").read_bytes().startswith(b"age-encryption.org/v1\n")
    admin("decrypt", "-i", tmp_path / "escrow.key", "-o", tmp_path / "opened", tmp_path / "sealed.age")
    assert (tmp_path / "opened").read_bytes() == plaintext

    # init-org, bundle, inspect: IT's stick for the box.
    org_key = admin("init-org", "--out", tmp_path / "org").stdout.split()[-1]
    assert org_key.startswith("consentbox-org-ed25519:")
    assert f"\n{org_key}\n" in (tmp_path / "org" / "org.pub").read_bytes().decode()
    (tmp_path / "policy.toml").write_text("[policy]\nretention_days = 14\n")
    (tmp_path / "stick").mkdir()
    wrote = admin("bundle", "--org-key", tmp_path / "org" / "org.key", "--recipient", keys["supervisor"],
                  "--recipient", keys["escrow"], "--policy", tmp_path / "policy.toml", "--version", "1",
                  "--out", tmp_path / "stick")
    bundle = tmp_path / "stick" / "consentbox-v1.cbundle"
    assert f"wrote {bundle}: version 1, 2 recipient(s)" in wrote.stdout
    shown = admin("inspect", "--org-key", tmp_path / "org" / "org.pub", bundle).stdout
    assert keys["supervisor"] in shown and keys["escrow"] in shown and "14" in shown.split("policy")[-1]

    # A box records one session to the supervisor, in simulation.
    microphone = tmp_path / "microphone.wav"
    policy = Policy()
    write_wav(microphone, os.urandom(12 * policy.rate * policy.frame_bytes), policy)
    box = SimulatedBox(tmp_path / "box", keys["supervisor"], key_file=supervisor_key, microphone=microphone)
    [session] = box.simulate(SCRIPT, in_process=True).sessions()
    card = box.card
    device_key = str(DeviceSigningKey.load(box.state / DEVICE_KEY).public_key)

    # trust-box and boxes: the workstation pins the box.
    boxes = tmp_path / "boxes"
    trusted = admin("trust-box", device_key, "Room 3", "--boxes", boxes).stdout
    assert trusted.startswith(f"trusted: {device_key} Room 3")
    listed = admin("boxes", "--boxes", boxes).stdout
    assert listed.splitlines() == [f"{boxes}: 1 trusted box(es)", f"{device_key} Room 3"]

    # verify-ledger: the box's own ledger, and the session's extract on the card.
    assert device_key in admin("verify-ledger", box.state / "ledger.jsonl", "--device-key", device_key).stdout
    extract = card / extract_name(session)
    assert session in admin("verify-ledger", "-i", supervisor_key, extract).stdout

    # consent-report: the ledger and the manifest agree.
    report = admin("consent-report", "-i", supervisor_key, "--boxes", boxes, card, session).stdout
    assert session in report and "Room 3" in report

    # export: the session as a WAV file of the box's format, and its report.
    out = tmp_path / "out"
    admin("export", "-i", supervisor_key, "--boxes", boxes, "--out", out, card)
    with wave.open(str(out / f"{session}.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (policy.rate, policy.channels)
        assert 4 * policy.rate < wav.getnframes() < 8 * policy.rate
    assert json.loads((out / f"{session}.json").read_text(encoding="utf-8"))

    # audit: the compliance review, as text, CSV and HTML.
    audited = admin("audit", "-i", supervisor_key, "--boxes", boxes, "--csv", tmp_path / "audit.csv",
                    "--html", tmp_path / "audit.html", card).stdout
    assert session in audited
    assert session in (tmp_path / "audit.csv").read_text(encoding="utf-8")
    assert (tmp_path / "audit.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html>")

    # destroy: the recording gone, the mark left for the box, the extract kept.
    recording = [segment_name(session, 0), manifest_name(session)]
    assert all((card / name).is_file() for name in recording)
    said = admin("destroy", "--session", session, card).stdout
    assert all(f"destroyed {name}: " in said for name in recording)
    assert not any((card / name).exists() for name in recording)
    assert (card / f"{session}.destroyed").read_bytes() == b""
    assert extract.is_file()

    assert ran == commands, f"commands this test does not run: {commands - ran}"

