"""A whole box played in virtual time, in-process: the wiring of `consentbox simulate`, a script of presses,
the position signal as its microphone and a directory as its card, for tests that need the box's own
sequence of entries without a subprocess."""

from __future__ import annotations

from pathlib import Path

from consentbox.box.config import load_config
from consentbox.box.logs import Report
from consentbox.core.policy import Policy
from consentbox.crypto import X25519Identity
from consentbox.sim.script import parse_script
from consentbox.sim.simulate import simulate, simulated_config
from consentbox.testing.signal import position_pcm, write_wav


def play(tmp_path: Path, script: str, report: Report, *, seats: int = 3,
         provisioned: bool = True) -> tuple[X25519Identity, bytes]:
    """Play `script` through a simulated box of `seats` seats with 30 s of the position signal as its microphone,
    its card `tmp_path/card` and its state `tmp_path/state`; the identity the card is encrypted to (to nobody,
    as a box never provisioned, unless `provisioned`), and the audio the microphone gave."""
    identity = X25519Identity.generate()
    pcm = position_pcm(0, 30 * Policy().rate, Policy())
    write_wav(tmp_path / "input.wav", pcm, Policy())
    (tmp_path / "card").mkdir()
    recipients = [identity.recipient] if provisioned else []
    config = simulated_config(load_config(None), card=tmp_path / "card", recipients=recipients, seats=seats,
                              shared_consent=False, state_dir=tmp_path / "state")
    simulate(config, parse_script(script), audio=tmp_path / "input.wav", realtime=False, report=report)
    return identity, pcm
