"""`consentbox simulate`: the real box wiring, with simulated pins, a WAV file as the microphone.

The panel is the real `GpioPanel` on gpiozero's MockFactory pins (`SimulatedFactory`), which the
script drives edge by edge, so button handling goes through gpiozero as on the box. Audio is real
libasound reading the WAV through ALSA's `file` plugin. The card is a directory. Time is virtual
unless `realtime` is set: it jumps from one script step or deadline to the next, and while
recording it moves one ALSA period per period captured. The box's state directory (its journal) is
`config.state_dir`; at start the box first finishes any session a previous run left open there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from consentbox.box.box import Report
from consentbox.box.clock import RealClock, VirtualClock
from consentbox.box.config import Config
from consentbox.box.wiring import assemble_box
from consentbox.core.errors import PolicyError
from consentbox.core.events import Pressed, Released
from consentbox.crypto import X25519Recipient
from consentbox.hw.gpio import GpioPanel
from consentbox.provisioning.provision import Provisioner
from consentbox.sim.file_microphone import FileMicrophone
from consentbox.sim.pins import SimulatedFactory, drive_button
from consentbox.sim.script import EndStep, FaultStep, Step, UsbStep
from consentbox.state.clock_floor import TrustedClock

# Pins of a Raspberry Pi header left free by the default panel, for --seats N.
SPARE_PINS = ("GPIO27", "GPIO22", "GPIO23", "GPIO24", "GPIO25", "GPIO12", "GPIO16", "GPIO20", "GPIO21",
              "GPIO4", "GPIO18", "GPIO7")
#: More free pins (the SPI and serial ones, which a simulated panel does not need), for the seat LEDs.
MORE_SPARE_PINS = ("GPIO8", "GPIO9", "GPIO10", "GPIO11", "GPIO14", "GPIO15")


def simulated_config(
    config: Config,
    *,
    card: Path,
    recipients: Sequence[X25519Recipient],
    seats: int | None,
    shared_consent: bool,
    state_dir: Path,
    org_key: Path | None = None,
) -> Config:
    """`config` with a mock pin factory, the given card, recipients, state directory and organisation
    key (if given), and the seats: `seats` CONSENT buttons on spare pins, each with its seat LED on the
    next spare ones while the header has enough (up to 9 seats; more have no seat LEDs)."""
    panel = dataclasses.replace(config.panel, pin_factory="mock")
    if shared_consent:
        panel = dataclasses.replace(panel, shared_consent=True)
    elif seats is not None:
        if not 1 <= seats <= len(SPARE_PINS):
            raise PolicyError(f"--seats: {seats} is out of range (1 to {len(SPARE_PINS)})")
        free = SPARE_PINS[seats:] + MORE_SPARE_PINS
        panel = dataclasses.replace(panel, shared_consent=False, consent_pins=SPARE_PINS[:seats],
                                    seat_led_pins=free[:seats] if len(free) >= seats else ())
    return dataclasses.replace(config, panel=panel, card_path=card, require_mount=False,
                               recipients=tuple(recipients), state_dir=state_dir,
                               org_key=config.org_key if org_key is None else org_key)


def simulate(config: Config, steps: Sequence[Step], *, audio: Path, realtime: bool, report: Report,
             script_dir: Path = Path(".")) -> None:
    """Play `steps` through a box built from `config` (see `simulated_config`), reporting its timeline.

    A `usb` step provisions from its directory (relative to `script_dir`) as the provisioning job
    would from a stick, beside the running box, which then shows and takes up the result.
    """
    clock = RealClock() if realtime else VirtualClock()
    with FileMicrophone(audio, config.policy) as microphone:
        box = assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now),
                           audio_device=microphone.device, report=report)
        panel = box.panel
        if not isinstance(panel, GpioPanel):  # the script drives the pins of gpiozero buttons
            raise TypeError(f"simulate needs the box's panel to be a GpioPanel, not {type(panel).__name__}")
        report({"t": 0.0, "event": "state", "state": box.machine.state.value})
        box.start()
        box.check_readiness()
        # In real time, start-up (the self-test listens) takes a moment: the script starts once the box is
        # up, or its first steps would come overdue at once, a tap's press and release closer together than
        # the pins' debounce, which drops the release. Virtual time stands still meanwhile.
        origin = clock.now() if realtime else 0.0
        for step in steps:
            box.run_until(origin + step.at)
            if isinstance(step, EndStep):
                break
            if isinstance(step, FaultStep):
                box.inject_fault(step.fault.problem)
            elif isinstance(step, UsbStep):
                provisioner = Provisioner(config.state_dir, config.org_key, box.policy, box.ledger,
                                          TrustedClock(config.state_dir), seats=config.panel.seats,
                                          shared_consent=config.panel.shared_consent)
                provisioner.provision(script_dir / step.path)
            else:
                _drive(panel, step, pull_up=config.panel.pull_up)
            box.check_readiness()
            box.pump()
        box.shut_down()


def _drive(panel: GpioPanel, step: Pressed | Released, *, pull_up: bool) -> None:
    button = panel.buttons.get(step.button)
    if button is None:
        raise PolicyError(f"script uses {step.button}, but the panel has {len(panel.buttons) - 1} consent seat(s)")
    drive_button(button.pin, pressed=isinstance(step, Pressed), pull_up=pull_up)
