"""`consentbox simulate`: the real box wiring, with simulated pins, a WAV file as the microphone.

The panel is the real `GpioPanel` on gpiozero's MockFactory pins (`SimulatedFactory`), which the
script drives edge by edge, so button handling goes through gpiozero as on the box. Audio is real
libasound reading the WAV through ALSA's `file` plugin. The card is a directory. Time is virtual
unless `realtime` is set: it jumps from one script step or deadline to the next, and while
recording it moves one ALSA period per period captured. The box's wall clock is this machine's, unless
the script rehearses time (`start_at`, `advance` steps): then it is a start date plus that time
(sim/wall_clock.py), and `advance` steps move it on by days, the wipe running meanwhile as its timer
starts it on a box. The box's state directory (its journal) is `config.state_dir`; at
start the box first finishes any session a previous run left open there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from consentbox.box.box import Box, Report
from consentbox.box.clock import RealClock, VirtualClock
from consentbox.box.config import Config
from consentbox.box.wiring import assemble_box
from consentbox.core.errors import PolicyError
from consentbox.core.events import Pressed, Released
from consentbox.crypto import Recipient
from consentbox.hw.gpio import GpioPanel
from consentbox.jobs.wipe import wipe_card
from consentbox.provisioning.provision import Provisioner
from consentbox.retention.index import RetentionIndex
from consentbox.sim.file_microphone import FileMicrophone
from consentbox.sim.pins import SimulatedFactory, drive_button
from consentbox.sim.script import AdvanceStep, EndStep, FaultStep, ScriptError, Step, UsbStep
from consentbox.sim.wall_clock import SimulatedWall, simulated_start, utc_text
from consentbox.sim.wipe_timer import next_wipe
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
    recipients: Sequence[Recipient],
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
             script_dir: Path = Path("."), start_at: int | None = None) -> None:
    """Play `steps` through a box built from `config` (see `simulated_config`), reporting its timeline.

    Given `start_at` (POSIX seconds; see `simulated_start` for what is refused) or an `advance` step, the
    box's wall clock starts there (or now) and runs with the simulated time; otherwise it is this
    machine's. A `usb` step provisions from its directory (relative to `script_dir`) as the provisioning
    job would from a stick, beside the running box, which then shows and takes up the result. An
    `advance` step moves the clock on, the wipe running as its timer would meanwhile (`_advance`); it
    needs virtual time.
    """
    if realtime and (advance := next((step for step in steps if isinstance(step, AdvanceStep)), None)):
        raise ScriptError(f"script line {advance.line}: 'advance' needs virtual time: leave out --realtime")
    clock = RealClock() if realtime else VirtualClock()
    wall = _simulated_wall(config, steps, start_at, clock)
    trusted = (TrustedClock(config.state_dir) if wall is None
               else TrustedClock(config.state_dir, wall=wall.now, monotonic=clock.now))
    with FileMicrophone(audio, config.policy) as microphone:
        box = assemble_box(config, clock=clock, pin_factory=SimulatedFactory(clock.now),
                           audio_device=microphone.device, report=report, trusted_clock=trusted)
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
        if realtime:  # where the script's times are counted from, for whoever times the box from its timeline
            report({"t": round(origin, 6), "event": "script"})
        try:
            for step in steps:
                box.run_until(origin + step.at)
                if isinstance(step, EndStep):
                    break
                if isinstance(step, FaultStep):
                    box.inject_fault(step.fault.problem)
                elif isinstance(step, UsbStep):
                    provisioner = Provisioner(config.state_dir, config.org_key, box.policy, box.ledger, trusted,
                                              seats=config.panel.seats, shared_consent=config.panel.shared_consent)
                    provisioner.provision(script_dir / step.path)
                elif isinstance(step, AdvanceStep):
                    assert wall is not None  # an advance step gives the box a simulated wall clock
                    origin += step.seconds  # the steps after it come that much later
                    _advance(box, step, config, trusted, wall, report)
                else:
                    _drive(panel, step, pull_up=config.panel.pull_up)
                box.check_readiness()
                box.pump()
        finally:
            box.shut_down()


def _simulated_wall(config: Config, steps: Sequence[Step], start_at: int | None,
                    clock: RealClock | VirtualClock) -> SimulatedWall | None:
    """The box's wall clock when the script rehearses time (`start_at` given, or an `advance` step): the
    start plus the simulated time. None otherwise: the box reads this machine's clock, as a box reads its
    system's, so that what it records is dated today and a `consentbox wipe` run afterwards agrees."""
    if start_at is None and not any(isinstance(step, AdvanceStep) for step in steps):
        return None
    return SimulatedWall(simulated_start(config.state_dir, start_at), clock.now)


def _advance(box: Box, step: AdvanceStep, config: Config, trusted: TrustedClock, wall: SimulatedWall,
             report: Report) -> None:
    """Report the `advance`, then let `step.seconds` pass on the box, the wipe job running as
    consentbox-wipe.timer would start it (sim/wipe_timer.py), each run reported as a `wipe` entry."""
    if box.machine.capturing:  # it would capture period by period, for days
        raise ScriptError(f"script line {step.line}: 'advance' while recording: pause or end the session first")
    end = box.clock.now() + step.seconds
    last, pending = wall.now(), True
    report({"t": round(box.clock.now(), 6), "event": "advance", "seconds": step.seconds, "from": utc_text(last),
            "to": utc_text(last + step.seconds)})
    while True:
        expiries = [expiry.expires for expiry in RetentionIndex(config.state_dir).entries().values()]
        firing = next_wipe(last, expiries, pending=pending)
        if firing is None or wall.moment(firing) > end:
            break
        box.run_until(wall.moment(firing))
        done = wipe_card(config, wait=False, clock=trusted)
        report({"t": round(box.clock.now(), 6), "event": "wipe", "wall": utc_text(firing), "lines": done.lines()})
        box.check_readiness()
        box.pump()
        last, pending = firing, bool(done.stopped)
    box.run_until(end)


def _drive(panel: GpioPanel, step: Pressed | Released, *, pull_up: bool) -> None:
    button = panel.buttons.get(step.button)
    if button is None:
        raise PolicyError(f"script uses {step.button}, but the panel has {len(panel.buttons) - 1} consent seat(s)")
    drive_button(button.pin, pressed=isinstance(step, Pressed), pull_up=pull_up)
