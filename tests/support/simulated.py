"""A whole box in virtual time, in-process, with the wiring of `consentbox simulate`, the position signal as its
microphone and a directory as its card, for tests that need the box's own sequence of entries without a
subprocess: played from a script (`play`), or driven button by button (`BoxRig`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from consentbox.box.box import Box
from consentbox.box.clock import VirtualClock
from consentbox.box.config import load_config
from consentbox.box.logs import Report
from consentbox.box.wiring import assemble_box
from consentbox.core.events import RECORD, Button, ConsentButton, Pressed, Released
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity, X25519Recipient
from consentbox.crypto.signing import DeviceSigningKey
from consentbox.sim.pins import SimulatedFactory
from consentbox.sim.script import parse_script
from consentbox.sim.simulate import simulate, simulated_config
from consentbox.state.files import DEVICE_KEY
from consentbox.testing.fakes import FailingSource, GeneratedSource
from consentbox.testing.signal import position_pcm, write_wav


def play(tmp_path: Path, script: str, report: Report, *, seats: int = 3, provisioned: bool = True,
         microphone: bytes | None = None, start_at: int | None = None) -> tuple[X25519Identity, bytes]:
    """Play `script` through a simulated box of `seats` seats with `microphone` (PCM of the default format; by
    default 30 s of the position signal) as its microphone, then silence, its card `tmp_path/card` and its
    state `tmp_path/state`, its wall clock starting at `start_at` (`simulate --start-at`; default now); the
    identity the card is encrypted to (to nobody, as a box never provisioned, unless `provisioned`), and the
    audio the microphone gave."""
    identity = X25519Identity.generate()
    pcm = position_pcm(0, 30 * Policy().rate, Policy()) if microphone is None else microphone
    write_wav(tmp_path / "input.wav", pcm, Policy())
    (tmp_path / "card").mkdir()
    recipients = [identity.recipient] if provisioned else []
    config = simulated_config(load_config(None), card=tmp_path / "card", recipients=recipients, seats=seats,
                              shared_consent=False, state_dir=tmp_path / "state")
    simulate(config, parse_script(script), audio=tmp_path / "input.wav", realtime=False, report=report,
             start_at=start_at)
    return identity, pcm


class CountingSource(GeneratedSource):
    """The position signal, counting every frame read from it, across opens."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self._frame_bytes = policy.frame_bytes
        self.frames_read = 0

    def read(self) -> bytes:
        """The next period of the signal, counted."""
        period = super().read()
        self.frames_read += len(period) // self._frame_bytes
        return period


class BoxRig:
    """A box as `consentbox simulate` assembles it (mock pins, virtual time), with `policy`, `seats` CONSENT
    buttons, its card `root`/card and its state `root`/state, recording to `recipient` from the position signal
    (`audio.frames_read` counts the frames it gave since capture last opened, `microphone.frames_read` all it
    gave: the self-test after a session opens the audio again); driven by button events, its timeline kept."""

    def __init__(self, root: Path, recipient: X25519Recipient, policy: Policy, *, seats: int = 2) -> None:
        self.card, self.state = root / "card", root / "state"
        self.card.mkdir(parents=True, exist_ok=True)
        config = simulated_config(load_config(None), card=self.card, recipients=[recipient], seats=seats,
                                  shared_consent=False, state_dir=self.state)
        self.clock = VirtualClock()
        self.timeline: list[dict[str, Any]] = []
        self.box: Box = assemble_box(dataclasses.replace(config, policy=policy), clock=self.clock,
                                     pin_factory=SimulatedFactory(self.clock.now), audio_device="null",
                                     report=self.timeline.append)
        self.microphone = CountingSource(policy)
        self.audio = FailingSource(self.microphone, policy)
        self.box.audio = self.audio
        self.box.check_readiness()
        self.box.pump()

    @property
    def device_key(self) -> str:
        """The public key the box signs its ledger with, as `consentbox-admin trust-box` takes it."""
        return str(DeviceSigningKey.load(self.state / DEVICE_KEY).public_key)

    def press(self, button: Button) -> None:
        self.box.post(Pressed(button, self.clock.now()))
        self.box.pump()

    def release(self, button: Button) -> None:
        self.box.post(Released(button, self.clock.now()))
        self.box.pump()

    def hold(self, button: Button, seconds: float = 0.1) -> None:
        """Press `button` for `seconds` (a tap by default)."""
        self.press(button)
        self.wait(seconds)
        self.release(button)

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass: capture runs while it is open, holds and timeouts fire."""
        self.box.run_until(self.clock.now() + seconds)

    def start_recording(self) -> str:
        """Set up a session for two, both consent, hold RECORD: capture opens 1 s into the hold; its id."""
        self.hold(RECORD)
        self.hold(ConsentButton(1))
        self.hold(ConsentButton(2))
        self.hold(RECORD, 1.2)
        assert self.box.machine.capturing, self.timeline[-10:]
        return str(self.of("setup")[-1]["id"])

    def record(self, seconds: float) -> str:
        """A session that records for `seconds` and ends normally (RECORD held 2.5 s); its id."""
        session = self.start_recording()
        self.wait(seconds)
        self.end()
        return session

    def end(self) -> None:
        """End the session normally: RECORD held 2.5 s."""
        self.hold(RECORD, 2.5)
        assert self.of("session")[-1]["end"] == "ended", self.timeline[-10:]

    def of(self, event: str) -> list[dict[str, Any]]:
        """The timeline's entries of `event`, in order."""
        return [entry for entry in self.timeline if entry["event"] == event]

    def entries(self, session: str | None = None) -> list[dict[str, Any]]:
        """The box's ledger, entry by entry (of `session` only, if given)."""
        lines = (self.state / "ledger.jsonl").read_bytes().splitlines()
        return [entry for entry in map(json.loads, lines) if session is None or entry["session"] == session]
