"""`consentbox-admin`: the IT and supervisor tool, used on a workstation (never on the box).

keygen, encrypt and decrypt behave like `age-keygen`, `age -e -r` and `age -d -i`, so a supervisor
can use either tool on the same files; export turns a card's sessions into WAV files.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from consentbox import __version__
from consentbox.admin.export import export_card
from consentbox.admin.output import input_stream, output_stream
from consentbox.core.errors import ConsentBoxError
from consentbox.crypto import (
    X25519Identity, X25519Recipient, decrypt, encrypt, identity_file_text, parse_identity_file,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SALVAGED = 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `consentbox-admin`."""
    parser = argparse.ArgumentParser(
        prog="consentbox-admin",
        description="ConsentBox workstation tool: keys for supervisors, and age encryption and "
        "decryption compatible with the `age` command.",
    )
    parser.add_argument("--version", action="version", version=f"consentbox-admin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keygen = commands.add_parser("keygen", help="make an age identity (like age-keygen)",
                                 description="Write a new age X25519 identity; the public key goes to stderr.")
    keygen.add_argument("-o", "--output", type=Path, help="identity file to create (mode 0600); default stdout")
    keygen.set_defaults(run=run_keygen)

    enc = commands.add_parser("encrypt", help="encrypt to age recipients (like age -e -r)",
                              description="Encrypt INPUT (default stdin) to one or more age1… recipients.")
    enc.add_argument("-r", "--recipient", action="append", required=True, help="an age1… public key")
    enc.add_argument("-o", "--output", type=Path, help="output file; default stdout")
    enc.add_argument("input", nargs="?", type=Path, help="file to encrypt; default stdin")
    enc.set_defaults(run=run_encrypt)

    dec = commands.add_parser("decrypt", help="decrypt with age identities (like age -d -i)",
                              description="Decrypt INPUT (default stdin). Exit 0 on success, 1 on failure "
                              "(no output file is left behind), 3 when --salvage recovered part of a "
                              "truncated or damaged file.")
    dec.add_argument("-i", "--identity", action="append", required=True, type=Path,
                     help="identity file (AGE-SECRET-KEY-1… lines, as age-keygen writes)")
    dec.add_argument("-o", "--output", type=Path, help="output file; default stdout")
    dec.add_argument("--salvage", action="store_true",
                     help="recover every authenticated chunk of a truncated or damaged file")
    dec.add_argument("input", nargs="?", type=Path, help="file to decrypt; default stdin")
    dec.set_defaults(run=run_decrypt)

    exp = commands.add_parser("export", help="decrypt every session on a card to WAV files",
                              description="Export each session on CARD_DIR to OUT/<id>.wav (all its audio) "
                              "and OUT/<id>.json (its manifest and what the export found). Exit 0 when "
                              "every session exported intact, 3 when any was truncated (a power cut: all "
                              "that authenticates is kept), 1 when any could not be exported.")
    exp.add_argument("-i", "--identity", action="append", required=True, type=Path,
                     help="identity file (AGE-SECRET-KEY-1… lines, as age-keygen writes)")
    exp.add_argument("--out", required=True, type=Path,
                     help="directory for the exported files (created, mode 0700, if missing)")
    exp.add_argument("card", type=Path, metavar="CARD_DIR", help="the card's directory")
    exp.set_defaults(run=run_export)
    return parser


def load_identities(paths: list[Path]) -> list[X25519Identity]:
    """Every identity in the identity files at `paths`."""
    identities = []
    for path in paths:
        identities.extend(parse_identity_file(path.read_text(encoding="utf-8"), source=str(path)))
    return identities


def run_keygen(args: argparse.Namespace) -> int:
    """`keygen`: a new identity in age-keygen's layout; never overwrites a file."""
    identity = X25519Identity.generate()
    text = identity_file_text(identity, datetime.now().astimezone())
    if args.output is None:
        sys.stdout.write(text)
    else:
        # O_EXCL: an existing key file is somebody's only copy of a key; never replace it.
        try:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ConsentBoxError(f"{args.output} already exists: choose another file name") from None
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
    print(f"Public key: {identity.recipient.to_string()}", file=sys.stderr)
    return EXIT_OK


def run_encrypt(args: argparse.Namespace) -> int:
    """`encrypt`: stream INPUT to an age file for the recipients."""
    recipients = [X25519Recipient.parse(text) for text in args.recipient]
    if args.output is None and sys.stdout.isatty():
        raise ConsentBoxError("refusing to write encrypted binary to the terminal: use -o FILE or a pipe")
    with input_stream(args.input) as src, output_stream(args.output, mode=0o644) as dst:
        encrypt(src, dst, recipients)
    return EXIT_OK


def run_decrypt(args: argparse.Namespace) -> int:
    """`decrypt`: stream an age file to plaintext; with --salvage keep what authenticates."""
    identities = load_identities(args.identity)
    with input_stream(args.input) as src, output_stream(args.output) as dst:
        result = decrypt(src, dst, identities, salvage=args.salvage)
    if result.damage is None:
        return EXIT_OK
    print(f"consentbox-admin: warning: {result.damage}", file=sys.stderr)
    print(f"truncated: recovered {result.bytes_written} bytes", file=sys.stderr)
    return EXIT_SALVAGED


def run_export(args: argparse.Namespace) -> int:
    """`export`: one WAV and one JSON report per session on the card; a line per session on stderr."""
    identities = load_identities(args.identity)
    return export_card(args.card, args.out, identities, progress=sys.stderr.isatty())


def main(argv: list[str] | None = None) -> int:
    """Entry point of `consentbox-admin`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConsentBoxError, OSError) as error:
        print(f"consentbox-admin: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
