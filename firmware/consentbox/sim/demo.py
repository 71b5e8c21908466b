"""`make run`: the whole box, simulated, on this machine, then the supervisor's export.

Makes a demo supervisor identity under .demo/, a test tone as the microphone, plays the shipped demo
script through `consentbox simulate`'s wiring (gpiozero mock pins, real libasound through ALSA's file
plugin, a directory as the card), prints the timeline readably, and exports the recording with the
demo identity, verified against the box's own device key (a supervisor pins it with trust-box).
"""

from __future__ import annotations

import array
import math
import os
import shutil
import sys
import wave
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from consentbox.admin.boxes import accepted_boxes
from consentbox.admin.export import export_card
from consentbox.box.config import load_config
from consentbox.box.timeline import describe
from consentbox.core.policy import Policy
from consentbox.crypto import Identity, X25519Identity, identity_file_text, parse_identity_file
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.sim.script import parse_script
from consentbox.sim.simulate import simulate, simulated_config
from consentbox.state.files import DEVICE_KEY

DEMO_SCRIPT = files("consentbox.sim") / "scenarios" / "demo.txt"
QUIET_EVENTS = ("tone", "flash", "status", "seats")


def demo_identity(path: Path) -> Identity:
    """The demo supervisor's identity, made on first use (mode 0600, like age-keygen)."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(identity_file_text(X25519Identity.generate(), datetime.now().astimezone()))
    return parse_identity_file(path.read_text(encoding="ascii"), str(path))[0]


def print_entry(entry: dict[str, Any]) -> None:
    """Print one timeline entry readably, unless it is one of the frequent QUIET_EVENTS."""
    if entry["event"] not in QUIET_EVENTS:
        print(describe(entry))


def write_test_tone(path: Path, policy: Policy, seconds: float) -> None:
    """A WAV of one beep a second, rising in pitch, so the recording's pauses can be heard."""
    samples = array.array("h")
    for second in range(math.ceil(seconds)):
        pitch = 330.0 * 2 ** ((second % 24) / 24)
        for n in range(policy.rate):
            beep = n < policy.rate // 4
            samples.append(int(8000 * math.sin(2 * math.pi * pitch * n / policy.rate)) if beep else 0)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(policy.rate)
        out.writeframes(samples.tobytes())


def main(home: Path = Path(".demo")) -> int:
    """Run the demo under `home`; returns the exit status."""
    home.mkdir(exist_ok=True)
    card, exported, state = home / "card", home / "export", home / "state"
    for directory in (card, exported, state):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
    key_file = home / "supervisor.key"
    identity = demo_identity(key_file)
    config = simulated_config(load_config(), card=card, recipients=[identity.recipient], seats=3,
                              shared_consent=False, state_dir=state)
    tone = home / "microphone.wav"
    write_test_tone(tone, config.policy, seconds=120)

    script = DEMO_SCRIPT.read_text(encoding="utf-8")
    print("ConsentBox demo: the box simulated on this machine, in virtual time.\n\nScript:\n")
    print(script)
    print("What the box did:\n")
    simulate(config, parse_script(script, source="demo.txt"), audio=tone, realtime=False,
             report=print_entry)

    print(f"\nThe card ({card}) holds encrypted session files and the signed consent ledger (no audio):")
    for path in sorted(card.iterdir()):
        print(f"  {path.name}  {path.stat().st_size} bytes")
    device_key = DeviceSigningKey.load(state / DEVICE_KEY).public_key
    print(f"\nExporting with the supervisor's key ({key_file}), from the box with device key {device_key}:")
    status = export_card(card, exported, [identity], accepted_boxes(device_key, None), progress=sys.stderr.isatty())
    for path in sorted(exported.glob("*.wav")):
        print(f"  {path}  ({path.stat().st_size} bytes): play it with `aplay {path}`")
    return status


if __name__ == "__main__":
    sys.exit(main())
