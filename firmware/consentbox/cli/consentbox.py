"""`consentbox`: the box's command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from consentbox import __version__
from consentbox.box.config import Config, load_config
from consentbox.core.errors import ConsentBoxError
from consentbox.crypto import X25519Recipient
from consentbox.crypto.exposure import ArgumentParser, safe_message

if TYPE_CHECKING:
    from consentbox.box.daemon import PinFactoryMaker

EXIT_REFUSED = 2  # `provision`: the stick was refused (nothing changed)


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
    wipe.add_argument("--now", action="store_true", help="wait for an open session to end, then wipe")
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
    return parser


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

    with contextlib.ExitStack() as cleanup:
        state = args.state or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="consentbox-state-")))
        config = simulated_config(
            load_config(args.config), card=args.card,
            recipients=[X25519Recipient.parse(text) for text in args.recipient],
            seats=args.seats, shared_consent=args.shared_consent, state_dir=state, org_key=args.org_key,
        )
        steps = parse_script(args.script.read_text(encoding="utf-8"), source=str(args.script))
        simulate(config, steps, audio=args.audio, realtime=args.realtime, script_dir=args.script.parent,
                 report=lambda entry: print(json.dumps(entry, separators=(",", ":")), flush=True))


def _provision(args: argparse.Namespace) -> int:
    from consentbox.jobs.provision import provision_from

    result = provision_from(load_config(args.config), args.source)
    if result.refusal is not None:
        print(f"consentbox: provisioning refused (code {result.refusal.code}): {result.detail}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"consentbox: {result.detail}")
    return 0


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

    report = wipe_card(load_config(args.config), wait=args.now)
    for line in report.lines():
        print(f"consentbox: wipe: {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `consentbox`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status = args.main(args)
    except (ConsentBoxError, OSError) as error:
        print(f"consentbox: {safe_message(str(error))}", file=sys.stderr)
        return 1
    return status or 0
