"""`consentbox`: the box's command line."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from consentbox import __version__
from consentbox.box.config import Config, load_config
from consentbox.core.errors import ConsentBoxError, PinDriverMissing
from consentbox.core.provisioning import REMIND_EVERY_SECONDS, REMIND_FOR_SECONDS
from consentbox.crypto import parse_recipient
from consentbox.crypto.exposure import ArgumentParser, add_examples, safe_message

if TYPE_CHECKING:
    from consentbox.box.daemon import PinFactoryMaker

EXIT_REFUSED = 2  # `provision`: the stick was refused (nothing changed)
EXIT_NO_PIN_DRIVER = 3  # `run`, `panel-off`: gpiozero loaded no pin factory (docs/status-codes.md)

#: The box's libraries, the `box` extra (`pip install 'consentbox[box]'`), by the module each installs.
#: `pip install consentbox` leaves them out: the supervisor's `consentbox-admin` needs none of them.
BOX_DEPENDENCIES = {"gpiozero": "gpiozero", "pyalsaaudio": "alsaaudio", "systemd-python": "systemd.daemon"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `consentbox`."""
    parser = ArgumentParser(
        prog="consentbox",
        description="ConsentBox: records a session only when everyone present has consented, "
        "and only ever writes it encrypted.",
    )
    parser.add_argument("--version", action="version", version=f"consentbox {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the box (real pins, ALSA device and card)",
                              description="Run the box until stopped; the timeline goes to stderr as JSON lines.")
    _add_config(run)
    run.set_defaults(main=_run)

    sim = commands.add_parser(
        "simulate",
        help="run the box on simulated pins with a WAV file as the microphone",
        description="Play a scenario script through the real box wiring (gpiozero mock pins, libasound "
        "through ALSA's file plugin, a directory as the card) and print the timeline, one JSON object a "
        "line. Virtual time unless --realtime.",
    )
    sim.add_argument("--script", required=True, type=Path, help="scenario script file")
    sim.add_argument("--audio", required=True, type=Path, help="16-bit PCM WAV: the microphone")
    sim.add_argument("--card", required=True, type=Path, help="directory standing in for the card")
    sim.add_argument("--recipient", required=True, action="append", help="age1… key to encrypt to (repeatable)")
    _add_config(sim)
    sim.add_argument("--state", type=Path, help="the box's state directory (its journal of open sessions); "
                     "default: a new private temporary directory, removed at exit")
    seats = sim.add_mutually_exclusive_group()
    seats.add_argument("--seats", type=int, help="number of separate CONSENT buttons")
    seats.add_argument("--shared-consent", action="store_true", help="one CONSENT button passed around")
    sim.add_argument("--realtime", action="store_true", help="run at the speed of real time")
    # Only here: `run` reads the system's clock, and nothing moves it but the system.
    sim.add_argument("--start-at", metavar="DATE", help="the simulated wall clock's start: an ISO date "
                     "(2027-03-01, midnight UTC) or date and time (2027-03-01T09:00, UTC unless it has an "
                     "offset); not before the state's clock floor (default: now, or the floor if later)")
    sim.add_argument("--org-key", type=Path, help="organisation public key file, for `usb` steps "
                     "(default: keys.org_key of the configuration)")
    sim.set_defaults(main=_simulate)

    prov = commands.add_parser(
        "provision", help="install the signed bundle on a USB stick (run by systemd when a stick appears)",
        description="Read the one *.cbundle file at the top of SOURCE (a stick's block device, mounted "
        "read-only, nosuid, nodev, noexec; or a directory), verify it with the organisation key, and "
        "install it if its version is newer. Refused while a session is open. Every attempt is recorded "
        "in the ledger and shown on the panel by the running box. Exit 0 when installed, 2 when refused.",
    )
    _add_config(prov)
    prov.add_argument("--until-removed", action="store_true",
                      help=f"after a refusal, have the box flash its code again every {REMIND_EVERY_SECONDS:g} s "
                      f"until SOURCE is gone (the stick pulled out), for at most {REMIND_FOR_SECONDS / 60:g} minutes")
    prov.add_argument("source", type=Path, metavar="SOURCE", help="block device (/dev/sda1) or directory")
    prov.set_defaults(main=_provision)

    wipe = commands.add_parser(
        "wipe", help="destroy the sessions whose retention has ended (run hourly by systemd)",
        description="Destroy every session on the card that has expired by the box's trusted clock: "
        "overwrite with random bytes, sync, truncate, unlink, sync the directory, discard the freed blocks; "
        "record each destruction in the ledger. Resumes a wipe that was interrupted. Never during a session: "
        "without --now it leaves an open session's card for the next run.",
    )
    _add_config(wipe)
    wipe.add_argument("--now", action="store_true",
                      help="wait for an open session to end (saying so on stdout), then wipe")
    wipe.set_defaults(main=_wipe)

    off = commands.add_parser("panel-off", help="turn the LEDs and buzzer off (after the box stops)",
                              description="Turn the REC LED, STATUS LED and buzzer off; systemd runs it "
                              "after the box's service stops, so a crash never leaves REC lit.")
    _add_config(off)
    off.set_defaults(main=_panel_off)

    key = commands.add_parser("device-key", help="print the box's device public key (for IT's trusted boxes)",
                              description="Print the public key of the device key that signs this box's consent "
                              "ledger, as `consentbox-admin trust-box` takes it. Never the private key; changes "
                              "nothing. Exit 1 if the box has not made its key yet (it does at its first start).")
    _add_config(key)
    key.set_defaults(main=_device_key)

    # The simulated front panel as a local web page (`make run`).
    web = commands.add_parser(
        "panel", help="run the box simulated, its front panel a web page on 127.0.0.1",
        description="Run the box in real time on simulated pins and serve its front panel on "
        "http://127.0.0.1:PORT/ (PORT from [web] port): press the buttons with a mouse, a finger or the "
        "keyboard and watch the LEDs, the timeline, the card and the level. The card and the box's state "
        "are directories under HOME, kept between runs; recordings are encrypted to a demo supervisor "
        "key, HOME/supervisor.key. Stops on Ctrl+C or SIGTERM, finalising what is open.",
    )
    _add_config(web)
    web.add_argument("--home", type=Path, default=Path(".demo/panel"),
                     help="where the card, the state and the demo key live (default: .demo/panel)")
    web.add_argument("--port", type=int, help="the page's port on 127.0.0.1 (default: [web] port; 0: any free one)")
    web.add_argument("--microphone", default="auto", metavar="auto|tone|DEVICE",
                     help="auto (default): this machine's microphone if an ALSA capture device opens, "
                     "else a generated test signal; tone: the test signal; or an ALSA device name")
    web_seats = web.add_mutually_exclusive_group()
    web_seats.add_argument("--seats", type=int, help="number of separate CONSENT buttons")
    web_seats.add_argument("--shared-consent", action="store_true", help="one CONSENT button passed around")
    web.set_defaults(main=_panel_web)
    add_examples(commands, EXAMPLES)
    return parser


CONFIG = "/etc/consentbox/config.toml"
#: Each subcommand's examples, shown by its --help and in the man page (command line, what it does).
EXAMPLES = {
    "run": [(f"consentbox run --config {CONFIG}", "run the box as its systemd unit does (consentbox.service)")],
    "simulate": [
        ("consentbox simulate --script demo.txt --audio mic.wav --card card/ --recipient age1…",
         "play a scenario script (as sim/scenarios/demo.txt in the package) with the WAV file mic.wav as the "
         "microphone, encrypting to one supervisor key, and print the timeline"),
        ("consentbox simulate --script demo.txt --audio mic.wav --card card/ --recipient age1… --shared-consent",
         "the same with one CONSENT button passed around"),
        ("consentbox simulate --script retention.txt --audio mic.wav --card card/ --recipient age1… --state state/ "
         "--start-at 2027-03-01T09:00",
         "rehearse retention (sim/scenarios/retention.txt): the clock starts on 1 March 2027, the script's "
         "`advance` steps move it on a month, and the wipe destroys the session as its timer would"),
    ],
    "provision": [(f"consentbox provision --config {CONFIG} --until-removed /dev/sda1",
                   "install the bundle of the stick at /dev/sda1, as consentbox-provision@sda1.service does")],
    "wipe": [(f"consentbox wipe --config {CONFIG}", "destroy the expired sessions now, as the hourly timer does"),
             (f"consentbox wipe --now --config {CONFIG}", "the same, waiting for an open session to end first")],
    "panel-off": [(f"consentbox panel-off --config {CONFIG}", "turn the LEDs and the buzzer off, as systemd does "
                   "after the box stops")],
    "device-key": [(f"consentbox device-key --config {CONFIG}",
                    "print the box's device public key, for `consentbox-admin trust-box` on IT's workstation")],
    "panel": [("consentbox panel", "serve the simulated front panel on http://127.0.0.1:8470/ (make run does)"),
              ("consentbox panel --port 0 --seats 2 --microphone tone",
               "two CONSENT buttons, a generated test signal as the microphone, on any free port")],
}


def _add_config(command: argparse.ArgumentParser) -> None:
    command.add_argument("--config", type=Path, help="TOML file over the shipped defaults")


# The subcommands import their wiring when run, so that --help and --version need no hardware library.


def _pin_factory(config: Config) -> PinFactoryMaker:
    """How `run` and `panel-off` make their pins: "mock" leaves them to a simulated front panel,
    "default" is gpiozero's choice on a Pi."""
    if config.panel.pin_factory == "mock":
        from consentbox.sim.pins import SimulatedFactory

        return SimulatedFactory
    return lambda clock: None


def _run(args: argparse.Namespace) -> None:
    from consentbox.box.daemon import run

    config = load_config(args.config)
    run(config, _pin_factory(config))


def _simulate(args: argparse.Namespace) -> None:
    from consentbox.sim.script import parse_script
    from consentbox.sim.simulate import simulate, simulated_config
    from consentbox.sim.wall_clock import parse_start_at

    start_at = None if args.start_at is None else parse_start_at(args.start_at)
    with contextlib.ExitStack() as cleanup:
        state = args.state or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="consentbox-state-")))
        config = simulated_config(
            load_config(args.config), card=args.card,
            recipients=[parse_recipient(text) for text in args.recipient],
            seats=args.seats, shared_consent=args.shared_consent, state_dir=state, org_key=args.org_key,
        )
        steps = parse_script(args.script.read_text(encoding="utf-8"), source=str(args.script))
        simulate(config, steps, audio=args.audio, realtime=args.realtime, script_dir=args.script.parent,
                 start_at=start_at,
                 report=lambda entry: print(json.dumps(entry, separators=(",", ":")), flush=True))


def _provision(args: argparse.Namespace) -> int:
    from consentbox.box.notify import Notifier
    from consentbox.jobs.provision import provision_from, remind_until_removed

    config = load_config(args.config)
    result = provision_from(config, args.source)
    # Its unit is Type=notify: its start timeout bounds the attempt, not the reminders that may follow.
    Notifier().ready("refused" if result.refusal else "installed")
    if result.refusal is None:
        print(f"consentbox: {result.detail}")
        return 0
    print(f"consentbox: provisioning refused (code {result.refusal.code}): {result.detail}", file=sys.stderr,
          flush=True)
    if args.until_removed:
        remind_until_removed(config.state_dir, args.source, result)
    return EXIT_REFUSED


def _panel_off(args: argparse.Namespace) -> None:
    from consentbox.box.daemon import panel_off

    config = load_config(args.config)
    panel_off(config, _pin_factory(config))


def _panel_web(args: argparse.Namespace) -> None:
    import dataclasses

    from consentbox.core.errors import PolicyError
    from consentbox.sim.web.simulator import run_panel

    config = load_config(args.config)
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise PolicyError(f"--port: {args.port} is not a TCP port (0 to 65535)")
        config = dataclasses.replace(config, web_port=args.port)
    run_panel(config, home=args.home, microphone=args.microphone, seats=args.seats,
              shared_consent=args.shared_consent, say=lambda line: print(line, flush=True))


def _device_key(args: argparse.Namespace) -> int:
    from consentbox.crypto.signing import DeviceSigningKey
    from consentbox.state.files import DEVICE_KEY

    path = load_config(args.config).state_dir / DEVICE_KEY
    try:
        key = DeviceSigningKey.load(path)  # never load_or_create: reading the key must not make one
    except FileNotFoundError:
        print(f"consentbox: no device key yet: {path} does not exist; the box makes it when it first starts "
              "(systemctl start consentbox)", file=sys.stderr)
        return 1
    print(key.public_key)
    return 0


def _wipe(args: argparse.Namespace) -> int:
    from consentbox.jobs.wipe import wipe_card

    def waiting() -> None:  # flushed: whoever runs it sees why it has not finished
        print("consentbox: wipe: a session is in progress; waiting for it to end", flush=True)

    report = wipe_card(load_config(args.config), wait=args.now, waiting=waiting)
    for line in report.lines():
        print(f"consentbox: wipe: {line}")
    return 0


def missing_box_dependencies() -> list[str]:
    """The distributions of BOX_DEPENDENCIES that are not installed."""
    return [name for name, module in BOX_DEPENDENCIES.items() if not _importable(module)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package (systemd of systemd.daemon) is missing
        return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of `consentbox`; returns the exit status."""
    args = build_parser().parse_args(argv)  # --help and --version need none of the box's libraries
    if missing := missing_box_dependencies():
        print("consentbox: the box's commands need the box's dependencies: pip install 'consentbox[box]' "
              f"(missing: {', '.join(missing)})", file=sys.stderr)
        return 1
    try:
        status = args.main(args)
    except PinDriverMissing as error:
        print(f"consentbox: {error}", file=sys.stderr)
        return EXIT_NO_PIN_DRIVER
    except (ConsentBoxError, OSError) as error:
        print(f"consentbox: {safe_message(str(error))}", file=sys.stderr)
        return 1
    return status or 0
