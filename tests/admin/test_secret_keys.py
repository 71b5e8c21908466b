"""A secret key given by mistake is never echoed (issue 16, item 5): every command that takes a key or a
recipient, run as a user runs it (the installed commands), fed the usual mistakes.

Each run must fail with one line that says what went wrong, and nothing on stdout or stderr may hold
any of the secret: not the age identity's bech32 data (any ten characters of it, in any case), not the
device key's 32 secret bytes in hex or base64, nor any of its PEM file's body after the fixed PKCS#8 prefix.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentbox.admin.provisioning import write_bundle
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity, encrypt, identity_file_text
from consentbox.crypto.signing import DeviceSigningKey, OrgSigningKey
from consentbox.provisioning.bundle import Bundle

BIN = Path(sys.executable).parent
#: Any this many characters in a row of a secret, found in the output, fail the test.
WINDOW = 10

IDENTITY = X25519Identity.generate(secret=bytes(range(100, 132)))
SECRET = IDENTITY.to_string()  # AGE-SECRET-KEY-1…
RECIPIENT = IDENTITY.recipient.to_string()
DEVICE_SEED = bytes(range(200, 232))
DEVICE_PEM = DeviceSigningKey.generate(secret=DEVICE_SEED).pem().decode("ascii")
DEVICE_PEM_BODY = DEVICE_PEM.splitlines()[1]  # base64 of the PKCS#8 DER: a fixed prefix, then the seed
KEY_FILE = identity_file_text(IDENTITY, datetime(2026, 5, 6, 14, 0, tzinfo=UTC))
# The secret with one character of its data changed: its checksum fails, but nearly all of it is the key.
MISTYPED = SECRET[:-8] + ("Q" if SECRET[-8] != "Q" else "P") + SECRET[-7:]

#: The usual mistakes: the text a person gives where a recipient, a public key or a key file belongs.
MISTAKES = {
    "the-secret-key": SECRET,
    "double-quoted": f'"{SECRET}"',
    "single-quoted": f"'{SECRET}'",
    "age-prefix": f"age:{SECRET}",
    "spaces-around": f"  {SECRET}  ",
    "lower-case": SECRET.lower(),
    "in-a-list": f'["{SECRET}"]',
    "after-a-recipient": f"{RECIPIENT},{SECRET}",
    "mistyped": MISTYPED,
    "key-file-contents": KEY_FILE,
    "device-key-pem": DEVICE_PEM,
    "device-key-base64-line": DEVICE_PEM_BODY,
}


def _windows(text: str) -> set[str]:
    return {text[start:start + WINDOW] for start in range(len(text) - WINDOW + 1)}


#: (window, case-insensitive) pairs: pieces of secret material that must never be printed.
_AGE_DATA = SECRET.removeprefix("AGE-SECRET-KEY-1")
_FORBIDDEN = (
    [(window, True) for window in _windows(_AGE_DATA) | _windows(MISTYPED.removeprefix("AGE-SECRET-KEY-1"))]
    + [(window, True) for window in _windows(DEVICE_SEED.hex())]
    + [(window, False) for window in _windows(base64.b64encode(DEVICE_SEED).decode())]
    + [(window, False) for window in _windows(DEVICE_PEM_BODY[21:])]
)


def secret_material_in(output: str) -> list[str]:
    """The pieces of secret material in `output`."""
    folded = output.upper()
    return [window for window, any_case in _FORBIDDEN if (window.upper() in folded if any_case else window in output)]


def error_lines(stderr: str) -> list[str]:
    """stderr's lines but argparse's usage (its first line, and the indented lines it wraps onto)."""
    return [line for line in stderr.splitlines() if not line.startswith(("usage: ", " "))]


@dataclass(frozen=True)
class Setting:
    """Files the commands need besides the mistake: keys, a policy, a bundle, a sealed file."""

    root: Path
    org_key: Path
    org_pub: Path
    policy: Path
    bundle: Path
    sealed: Path
    script: Path
    audio: Path

    def file(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        return path


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> Setting:
    root = tmp_path_factory.mktemp("secret-keys")
    org = OrgSigningKey.generate(secret=bytes(32))
    org.save(root / "org.key")
    (root / "org.pub").write_text(f"{org.public_key}\n")
    (root / "policy.toml").write_text("[policy]\nretention_days = 7\n")
    (root / "stick").mkdir()
    supervisor = X25519Identity.generate(secret=bytes(range(32)))
    bundle = write_bundle(Bundle(1, 1_780_000_000, (supervisor.recipient,), Policy()), org, root / "stick")
    with open(root / "sealed.age", "wb") as sealed:
        encrypt(io.BytesIO(b"a session"), sealed, [supervisor.recipient])
    (root / "script.txt").write_text("")
    (root / "audio.wav").write_bytes(b"")
    return Setting(root, root / "org.key", root / "org.pub", root / "policy.toml", bundle, root / "sealed.age",
                   root / "script.txt", root / "audio.wav")


def admin(*args: str | Path) -> list[str | Path]:
    return [BIN / "consentbox-admin", *args]


def box(*args: str | Path) -> list[str | Path]:
    return [BIN / "consentbox", *args]


def _toml(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a TOML basic string


#: Each command that takes a key or a recipient, given the mistake's text and its name (for file names).
COMMANDS: dict[str, Callable[[Setting, str, str], list[str | Path]]] = {
    "encrypt -r": lambda s, text, name: admin("encrypt", "-r", text, "-o", s.root / f"{name}.age", s.policy),
    "bundle --recipient": lambda s, text, name: admin(
        "bundle", "--org-key", s.org_key, "--recipient", text, "--policy", s.policy, "--version", "2",
        "--out", s.root / "stick"),
    "bundle --auditor": lambda s, text, name: admin(
        "bundle", "--org-key", s.org_key, "--recipient", RECIPIENT, "--auditor", text, "--policy", s.policy,
        "--version", "2", "--out", s.root / "stick"),
    "inspect --org-key FILE": lambda s, text, name: admin(
        "inspect", "--org-key", s.file(f"{name}.pub", text), s.bundle),
    "inspect BUNDLE": lambda s, text, name: admin("inspect", "--org-key", s.org_pub, s.file(f"{name}.cbundle", text)),
    "trust-box": lambda s, text, name: admin("trust-box", text, "Room 1", "--boxes", s.root / "boxes"),
    "trust-box FILE": lambda s, text, name: admin(
        "trust-box", s.file(f"{name}.device.pub", text), "Room 1", "--boxes", s.root / "boxes"),
    "trust-box LABEL": lambda s, text, name: admin(
        "trust-box", "consentbox-device-ed25519:" + base64.b64encode(bytes(32)).decode(), text,
        "--boxes", s.root / "boxes"),
    "verify-ledger --device-key": lambda s, text, name: admin(
        "verify-ledger", "--device-key", text, s.root / "ledger.jsonl"),
    "consent-report --device-key": lambda s, text, name: admin(
        "consent-report", "-i", s.file(f"{name}.supervisor.key", KEY_FILE), "--device-key", text, s.root,
        "0123456789abcdef"),
    "decrypt -i FILE": lambda s, text, name: admin(
        "decrypt", "-i", s.file(f"{name}.key", text), "-o", s.root / f"{name}.out", s.sealed),
    "decrypt -i TEXT": lambda s, text, name: admin("decrypt", "-i", text, "-o", s.root / f"{name}.out", s.sealed),
    "consentbox simulate --recipient": lambda s, text, name: box(
        "simulate", "--recipient", text, "--script", s.script, "--audio", s.audio, "--card", s.root / "card"),
    "config.toml recipients": lambda s, text, name: box(
        "device-key", "--config", s.file(f"{name}.toml", f"[keys]\nrecipients = [{_toml(text)}]\n")),
    "config.toml recipients, not a list": lambda s, text, name: box(
        "device-key", "--config", s.file(f"{name}.toml", f"[keys]\nrecipients = {_toml(text)}\n")),
}


def runs(setting: Setting, command: str) -> Iterator[tuple[str, subprocess.CompletedProcess[str]]]:
    """`command` run once for each mistake, a few at a time (each run is mostly a Python start-up)."""

    def run(name: str) -> subprocess.CompletedProcess[str]:
        argv = COMMANDS[command](setting, MISTAKES[name], name)
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    with ThreadPoolExecutor(max_workers=4) as pool:
        yield from zip(MISTAKES, pool.map(run, MISTAKES), strict=True)


@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_echoes_a_secret_key_given_by_mistake(setting, command):
    failures = []
    for name, done in runs(setting, command):
        found = secret_material_in(done.stdout + done.stderr)
        if found:
            failures.append(f"{name}: secret material {found[0]!r} in the output: {done.stdout + done.stderr!r}")
        elif done.returncode not in (1, 2) or len(error_lines(done.stderr)) != 1:
            failures.append(f"{name}: exit {done.returncode}, not one line of error: {done.stderr!r}")
    assert not failures, "\n".join(failures)
    assert list((setting.root / "stick").iterdir()) == [setting.bundle], "a bundle was written"
