"""`consentbox`: the box's command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from consentbox import __version__
from consentbox.core.errors import ConsentBoxError
from consentbox.core.policy import Policy
from consentbox.core.session import SessionMachine
from consentbox.testing.runner import run_scenario
from consentbox.testing.script import parse_script

DEFAULT_SEATS = 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `consentbox`."""
    parser = argparse.ArgumentParser(
        prog="consentbox",
        description="ConsentBox: records a session only when everyone present has consented, "
        "and only ever writes it encrypted.",
    )
    parser.add_argument("--version", action="version", version=f"consentbox {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    simulate = commands.add_parser(
        "simulate",
        help="play a scenario script of button presses through the session rules in virtual time",
        description="Play a scenario script through the session machine and print its timeline, "
        "one JSON object a line. (Audio and card are wired in by the box adapters.)",
    )
    simulate.add_argument("--script", required=True, type=Path, help="scenario script file")
    seats = simulate.add_mutually_exclusive_group()
    seats.add_argument("--seats", type=int, default=DEFAULT_SEATS,
                       help=f"number of separate CONSENT buttons (default {DEFAULT_SEATS})")
    seats.add_argument("--shared-consent", action="store_true", help="one CONSENT button passed around")
    return parser


def simulate(args: argparse.Namespace) -> int:
    """Run `consentbox simulate`."""
    steps = parse_script(args.script.read_text(encoding="utf-8"), source=str(args.script))
    machine = SessionMachine(Policy(), seats=1 if args.shared_consent else args.seats,
                             shared_consent=args.shared_consent)
    for entry in run_scenario(machine, steps):
        print(json.dumps(entry, separators=(",", ":")))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `consentbox`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return simulate(args)
    except (ConsentBoxError, OSError) as error:
        print(f"consentbox: {error}", file=sys.stderr)
        return 1
