"""`consentbox device-key`: IT reads the box's device public key at deployment (issue 15, item 2).

Run as IT runs it, the installed command on a configuration naming the state directory. It must print
the key the box's ledger names in its boot entry (the key that signs the card's ledger), never the
secret, and change nothing: no key is made by reading it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key

from consentbox.box.config import Config, load_config
from consentbox.box.wiring import open_ledger
from consentbox.core.policy import Policy
from consentbox.hw.card import CardDirectory
from consentbox.state.clock_floor import TrustedClock

BIN = Path(sys.executable).parent


def configure(tmp_path: Path) -> tuple[Path, Config]:
    """A configuration file whose state directory and card are under `tmp_path` (neither made yet)."""
    path = tmp_path / "config.toml"
    path.write_text(f'[box]\nstate_dir = "{tmp_path / "state"}"\n'
                    f'[card]\npath = "{tmp_path / "card"}"\nrequire_mount = false\n')
    return path, load_config(path)


def device_key(config_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN / "consentbox", "device-key", "--config", config_file],
                          capture_output=True, text=True, timeout=60)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_device_key_prints_the_key_of_the_ledgers_boot_entry_and_never_the_secret(tmp_path: Path):
    config_file, config = configure(tmp_path)
    (tmp_path / "card").mkdir()
    # The box's own start: it makes its key and writes the boot entry, as `consentbox run` does.
    card = CardDirectory(config.card_path, Policy(), require_mount=False)
    open_ledger(config, card, TrustedClock(config.state_dir), monotonic=time.monotonic, boot=True,
                readers=lambda: ()).close()
    boot = json.loads((config.state_dir / "ledger.jsonl").read_text().splitlines()[0])
    assert boot["kind"] == "boot"
    before = snapshot(config.state_dir)

    done = device_key(config_file)

    assert done.returncode == 0, done.stderr
    assert done.stdout == boot["fields"]["device_key"] + "\n" and done.stderr == ""
    assert snapshot(config.state_dir) == before, "reading the key changes nothing in the state directory"
    pem = before["device.key"]
    seed = load_pem_private_key(pem, None).private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    printed = done.stdout + done.stderr
    assert "PRIVATE" not in printed
    for form in (seed.hex(), base64.b64encode(seed).decode(), *pem.decode().splitlines()[1:-1]):
        assert form not in printed


def test_device_key_before_the_box_first_started_says_so_and_makes_no_key(tmp_path: Path):
    config_file, config = configure(tmp_path)
    config.state_dir.mkdir()

    done = device_key(config_file)

    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("consentbox: no device key yet: ") and done.stderr.count("\n") == 1
    assert str(config.state_dir / "device.key") in done.stderr
    assert list(config.state_dir.iterdir()) == [], "reading the key must never make one"
