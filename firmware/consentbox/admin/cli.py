"""`consentbox-admin`: the IT and supervisor tool, used on a workstation (never on the box).

keygen, encrypt and decrypt behave like `age-keygen`, `age -e -r` and `age -d -i`, so a supervisor
can use either tool on the same files; export turns a card's sessions into WAV files;
verify-ledger and consent-report check the box's consent ledger; init-org, bundle and inspect are
IT's provisioning tools; trust-box and boxes pin the boxes whose cards this workstation accepts;
destroy destroys one session's recording on a card, as the box's retention wipe would.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from datetime import date, datetime
from pathlib import Path

from consentbox import __version__
from consentbox.admin.audit.csv_table import render_csv
from consentbox.admin.audit.html_page import render_html
from consentbox.admin.audit.sources import Period, audit
from consentbox.admin.audit.text_table import render_text
from consentbox.admin.boxes import TrustedBox, TrustedBoxes, accepted_boxes, default_boxes_path, trust_box
from consentbox.admin.destroy import destroy_session
from consentbox.admin.export import export_card
from consentbox.admin.extracts import is_extract, load_extract, named_session
from consentbox.admin.ledger_report import consent_record, extract_lines, summary_lines
from consentbox.admin.output import input_stream, output_stream, whole_file
from consentbox.admin.provisioning import (
    ORG_KEY_NAME,
    ORG_PUBLIC_NAME,
    check_recipient_count,
    check_stick,
    describe,
    init_org,
    key_lines,
    policy_from_file,
    read_bundle_file,
    read_passphrase,
    write_bundle,
)
from consentbox.core.errors import ConsentBoxError
from consentbox.crypto import (
    Identity,
    KeyFormatError,
    MLKEM768X25519Identity,
    Recipient,
    X25519Identity,
    decrypt,
    encrypt,
    identity_file_text,
    parse_identity_file,
    parse_recipient,
)
from consentbox.crypto.exposure import ArgumentParser, add_examples, safe_message, shown
from consentbox.crypto.signing import PUBLIC_KEY_PREFIX, DevicePublicKey, OrgPublicKey, OrgSigningKey, SigningKeyError
from consentbox.ledger import Tail, verify
from consentbox.provisioning.bundle import Bundle, check_bundle
from consentbox.storage import portable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SALVAGED = 3  # also: a ledger intact up to a torn last entry


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `consentbox-admin`."""
    parser = ArgumentParser(
        prog="consentbox-admin",
        description="ConsentBox workstation tool: keys for supervisors, and age encryption and "
        "decryption compatible with the `age` command.",
    )
    parser.add_argument("--version", action="version", version=f"consentbox-admin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keygen = commands.add_parser("keygen", help="make an age identity (like age-keygen)",
                                 description="Write a new age identity, X25519 or with --pq post-quantum; the "
                                 "public key goes to stderr.")
    keygen.add_argument("--pq", action="store_true",
                        help="a post-quantum mlkem768x25519 identity (AGE-SECRET-KEY-PQ-1…, public key age1pq1…), "
                        "like age-keygen -pq: recommended for a new organisation (docs/supervisor.md)")
    keygen.add_argument("-o", "--output", type=Path, help="identity file to create (mode 0600); default stdout")
    keygen.set_defaults(run=run_keygen)

    enc = commands.add_parser("encrypt", help="encrypt to age recipients (like age -e -r)",
                              description="Encrypt INPUT (default stdin) to one or more recipients: age1… "
                              "(X25519), age1pq1… (post-quantum) or age1tag1… (a hardware token); post-quantum "
                              "and classic recipients are never mixed in one file.")
    enc.add_argument("-r", "--recipient", action="append", required=True,
                     help="an age1…, age1pq1… or age1tag1… public key")
    enc.add_argument("-o", "--output", type=Path, help="output file; default stdout")
    enc.add_argument("input", nargs="?", type=Path, help="file to encrypt; default stdin")
    enc.set_defaults(run=run_encrypt)

    dec = commands.add_parser("decrypt", help="decrypt with age identities (like age -d -i)",
                              description="Decrypt INPUT (default stdin). Exit 0 on success, 1 on failure "
                              "(no output file is left behind), 3 when --salvage recovered part of a "
                              "truncated or damaged file.")
    dec.add_argument("-i", "--identity", action="append", required=True, type=Path,
                     help="identity file (AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1… lines, as age-keygen writes)")
    dec.add_argument("-o", "--output", type=Path, help="output file; default stdout")
    dec.add_argument("--salvage", action="store_true",
                     help="recover every authenticated chunk of a truncated or damaged file")
    dec.add_argument("input", nargs="?", type=Path, help="file to decrypt; default stdin")
    dec.set_defaults(run=run_decrypt)

    exp = commands.add_parser("export", help="decrypt every session on a card to WAV files",
                              description="Export each session on CARD_DIR to OUT/<id>.wav (its audio) and "
                              "OUT/<id>.json (its manifest and what the export found). Each session is first "
                              "checked against the seals its box signed in its ledger extract (the box must be "
                              "trusted: see trust-box), and only the audio the box sealed is exported. Exit 0 when "
                              "every session exported intact, 3 when any was truncated (a power cut: all that "
                              "the box sealed is kept), 1 when any was refused (a file the box did not write, a "
                              "missing, extra, swapped or cut segment, an unknown box) or could not be exported.")
    exp.add_argument("-i", "--identity", action="append", required=True, type=Path,
                     help="identity file (AGE-SECRET-KEY-1… lines, as age-keygen writes)")
    exp.add_argument("--out", required=True, type=Path,
                     help="directory for the exported files (created, mode 0700, if missing)")
    exp.add_argument("--device-key", metavar="PUB", type=device_key_argument,
                     help="accept only the box with this device key (or a file holding it), not the trusted boxes")
    _add_boxes(exp)
    exp.add_argument("--unverified", action="store_true",
                     help="export without checking any file against its box's seals (marked UNVERIFIED: "
                     "a forged or spliced recording would pass)")
    exp.add_argument("card", type=Path, metavar="CARD_DIR", help="the card's directory")
    exp.set_defaults(run=run_export)

    ver = commands.add_parser("verify-ledger", help="check a consent ledger's chain and signatures",
                              description="Verify every entry of LEDGER: the box's ledger.jsonl (sequence, hash "
                              "chain, signatures) or a session's extract from the card, <id>.ledger.age, decrypted "
                              "with -i (its trailer's signature over the whole, each entry's signature, one "
                              "session in order). Exit 0 when intact, 1 with the first bad entry named on any "
                              "edit, deletion, insertion, reorder or foreign entry, 3 when a box's ledger is "
                              "intact but its last entry is torn (a power cut while it was written).")
    ver.add_argument("-i", "--identity", action="append", type=Path,
                     help="for an extract: an identity file (a supervisor's or an auditor's key)")
    ver.add_argument("--device-key", metavar="PUB", type=device_key_argument,
                     help="the box's public key (consentbox-device-ed25519:…), or a file holding it; "
                     "default: the key the ledger names, which is then printed for you to compare")
    ver.add_argument("ledger", type=Path, metavar="LEDGER", help="a ledger.jsonl file, or an <id>.ledger.age extract")
    ver.set_defaults(run=run_verify_ledger)

    rep = commands.add_parser("consent-report", help="one session's consent record, checked against its manifest",
                              description="Print the consent timeline of SESSION_ID from its ledger extract, "
                              "CARD_DIR/SESSION_ID.ledger.age (signed by a trusted box: see trust-box), beside its "
                              "manifest; check every file of the session against the box's seals, and that the "
                              "ledger and the manifest agree (headcount, consents, intervals, end). Exit 0 when all "
                              "is as the box left it and they agree, 1 when a file is not (named) or they do not "
                              "(each disagreement is listed), or when the extract is not intact or from an "
                              "unknown box.")
    rep.add_argument("-i", "--identity", action="append", required=True, type=Path,
                     help="identity file (AGE-SECRET-KEY-1… lines, as age-keygen writes): a supervisor's key, "
                     "which opens the extract and the manifest")
    rep.add_argument("--device-key", metavar="PUB", type=device_key_argument,
                     help="accept only the box with this device key (or a file holding it), not the trusted boxes")
    _add_boxes(rep)
    rep.add_argument("card", type=Path, metavar="CARD_DIR", help="the card's directory")
    rep.add_argument("session", metavar="SESSION_ID",
                     help="the session's id (16 hex digits, as in its file names)")
    rep.set_defaults(run=run_consent_report)

    aud = commands.add_parser("audit", help="the compliance review of a card, a session or a box's ledger",
                              description="Report every session of CARD_OR_LEDGER: its set-up, headcount, each "
                              "seat's consent, recording, pauses, withdrawals, faults, end, expiry and destruction, "
                              "each file checked against the box's seals, and a verdict. CARD_OR_LEDGER is a card's "
                              "directory, one session's <id>.ledger.age, or the box's ledger.jsonl (then the files "
                              "are not checked). Needs an auditor's (or a supervisor's) identity, never decrypts "
                              "audio. Exit 0 when every session's consent is complete and its evidence intact, 1 "
                              "when any is not (a file that does not verify, recording before everyone consented "
                              "or after a withdrawal, files deleted by hand, a gap in the ledger), or on an error.")
    aud.add_argument("-i", "--identity", action="append", required=True, type=Path,
                     help="identity file: an auditor's key (a supervisor's works too)")
    aud.add_argument("--device-key", metavar="PUB", type=device_key_argument,
                     help="accept only this box's public key, or a file holding it (default: the trusted boxes)")
    _add_boxes(aud)
    aud.add_argument("--from", dest="first", type=date_argument, metavar="DATE",
                     help="only sessions set up on or after DATE (YYYY-MM-DD, the box's date)")
    aud.add_argument("--to", dest="last", type=date_argument, metavar="DATE",
                     help="only sessions set up on or before DATE (YYYY-MM-DD)")
    aud.add_argument("--html", type=Path, metavar="OUT", help="also write the report as one HTML page, with timelines")
    aud.add_argument("--csv", type=Path, metavar="OUT", help="also write one CSV row per session (docs/audit.md)")
    aud.add_argument("source", type=Path, metavar="CARD_OR_LEDGER",
                     help="a card's directory, an <id>.ledger.age extract, or a box's ledger.jsonl")
    aud.set_defaults(run=run_audit)

    des = commands.add_parser("destroy", help="destroy one session's recording on a card, as the box's wipe does",
                              description="Overwrite each segment and the manifest of session ID on CARD_DIR with "
                              "random bytes, then remove them, and leave an empty ID.destroyed there: the box records "
                              "the destruction (cause off_box) when the card is next in its slot. The session's "
                              "ID.ledger.age stays. Exit 1 if ID is not a session id or the card holds no recording "
                              "of it.")
    des.add_argument("--session", required=True, metavar="ID",
                     help="the session's id (16 lowercase hex digits, as in its file names)")
    des.add_argument("card", type=Path, metavar="CARD_DIR", help="the card's directory")
    des.set_defaults(run=run_destroy)

    org = commands.add_parser("init-org", help="make the organisation's signing key pair (once)",
                              description="Write DIR/org.key (the Ed25519 private key, mode 0600: keep it offline) "
                              "and DIR/org.pub (install it on each box as /etc/consentbox/org.pub).")
    org.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for the key files")
    org.add_argument("--passphrase-file", type=Path, metavar="FILE",
                     help="encrypt org.key with the passphrase in FILE's first line ('-': type it)")
    org.set_defaults(run=run_init_org)

    bun = commands.add_parser("bundle", help="write a signed provisioning bundle onto a stick",
                              description="Sign recipients and a policy as STICK_DIR/consentbox-v<N>.cbundle. A box "
                              "installs it if it verifies with the organisation key and N is above its installed "
                              "version.")
    bun.add_argument("--org-key", required=True, type=Path, metavar="KEY", help="org.key from init-org")
    bun.add_argument("--passphrase-file", type=Path, metavar="FILE",
                     help="the org.key passphrase in FILE's first line ('-': type it)")
    bun.add_argument("--recipient", action="append", metavar="AGE1…",
                     help="a supervisor's or an escrow public key, age1…, age1pq1… or age1tag1… (repeatable; two or "
                     "more, counting --period-key, unless --single-recipient; post-quantum and classic keys are "
                     "never mixed)")
    bun.add_argument("--auditor", action="append", metavar="AGE1…",
                     help="a compliance reviewer's public key, of the recipients' kind (repeatable; up to 64): reads "
                     "each session's ledger extract on the card, never its audio")
    bun.add_argument("--policy", required=True, type=Path, metavar="FILE",
                     help="TOML file with a [policy] table (keys as in the box's config.toml; others default)")
    bun.add_argument("--version", required=True, type=int, metavar="N", help="bundle version, above the last one")
    bun.add_argument("--period-key", type=Path, metavar="FILE",
                     help="also make a new age identity for this retention period (post-quantum if the other keys "
                     "are), write it to FILE (mode 0600) and add its recipient; destroying FILE later makes the "
                     "period's recordings unreadable everywhere (docs/threat-model.md)")
    bun.add_argument("--existing-days", type=int, metavar="DAYS",
                     help="also keep recordings already on the box at most DAYS days from their start")
    bun.add_argument("--single-recipient", action="store_true",
                     help="accept a bundle with one recipient (refused without it: if that key is lost, every "
                     "recording on the box's cards is unreadable for ever)")
    bun.add_argument("--out", required=True, type=Path, metavar="STICK_DIR", help="the stick's top directory")
    bun.set_defaults(run=run_bundle)

    ins = commands.add_parser("inspect", help="show what a bundle holds and would change",
                              description="Print a bundle's version, recipients and policy, and what it changes "
                              "against the defaults or an installed bundle. Exit 1 if it does not verify.")
    ins.add_argument("--org-key", type=Path, metavar="PUB", help="org.pub: verify the signature as a box would")
    ins.add_argument("--installed", type=Path, metavar="FILE",
                     help="the box's installed bundle (/var/lib/consentbox/provisioned.cbundle) to compare with")
    ins.add_argument("bundle", type=Path, metavar="BUNDLE", help="a .cbundle file")
    ins.set_defaults(run=run_inspect)

    trust = commands.add_parser("trust-box", help="trust a box's device key on this workstation",
                                description="Add the box whose device key is PUB (`consentbox device-key` on the "
                                "box prints it) to the trusted boxes file, as LABEL. Cards are accepted only from "
                                "the boxes in that file. Refused if PUB is there already under another label.")
    trust.add_argument("key", metavar="PUB", type=device_key_argument,
                       help="the box's device key (consentbox-device-ed25519:…), or a file holding it")
    trust.add_argument("label", metavar="LABEL", help="which box it is, e.g. 'Room 3, asset 0042' (quote spaces)")
    _add_boxes(trust)
    trust.set_defaults(run=run_trust_box)

    boxes = commands.add_parser("boxes", help="list the trusted boxes",
                                description="Print each box of the trusted boxes file: its device key and label.")
    _add_boxes(boxes)
    boxes.set_defaults(run=run_boxes)
    add_examples(commands, EXAMPLES)
    return parser


#: Each subcommand's examples, shown by its --help and in the man page (command line, what it does).
EXAMPLES = {
    "keygen": [("consentbox-admin keygen -o supervisor.key",
                "make a supervisor's key (mode 0600); its public key, age1…, goes to the terminal for IT's bundle"),
               ("consentbox-admin keygen --pq -o supervisor.key",
                "the same, post-quantum: its public key is age1pq1… (about 1,960 characters)")],
    "encrypt": [("consentbox-admin encrypt -r age1… -o notes.txt.age notes.txt", "encrypt a file as `age -e` would")],
    "decrypt": [("consentbox-admin decrypt -i supervisor.key -o segment.wav SESSION.000.wav.age",
                 "decrypt one file of a card as `age -d` would"),
                ("consentbox-admin decrypt --salvage -i supervisor.key -o part.wav SESSION.000.wav.age",
                 "keep what can be read of a damaged file (exit 3)")],
    "export": [("consentbox-admin export -i supervisor.key --out sessions/ /media/card",
                "check and decrypt every session on the card to sessions/ID.wav and sessions/ID.json")],
    "verify-ledger": [("consentbox-admin verify-ledger ledger.jsonl", "check a box's whole ledger (copied from "
                       "/var/lib/consentbox) and print the device key it names, to compare"),
                      ("consentbox-admin verify-ledger -i supervisor.key /media/card/ID.ledger.age",
                       "check one session's ledger extract from the card")],
    "consent-report": [("consentbox-admin consent-report -i supervisor.key /media/card ID",
                        "one session's consent timeline, checked against its manifest and files")],
    "audit": [("consentbox-admin audit -i auditor.key --from 2026-01-01 --html audit.html /media/card",
               "review every session on the card set up since 1 January, also as one HTML page")],
    "destroy": [("consentbox-admin destroy --session ID /media/card",
                 "destroy one session's recording on the card once its supervision is done")],
    "init-org": [("consentbox-admin init-org --out /media/offline-usb --passphrase-file -",
                  "make the organisation's key pair once, org.key protected by a passphrase typed in")],
    "bundle": [("consentbox-admin bundle --org-key org.key --passphrase-file - --recipient age1… --recipient age1… "
                "--policy policy.toml --version 2 --out /media/stick",
                "sign a bundle of two supervisors' keys and a policy onto a provisioning stick")],
    "inspect": [("consentbox-admin inspect --org-key org.pub /media/stick/consentbox-v2.cbundle",
                 "show what a bundle holds and changes, checking its signature as a box would")],
    "trust-box": [("consentbox-admin trust-box consentbox-device-ed25519:… 'Room 3'",
                   "accept cards from the box with this device key (`consentbox device-key` on the box)")],
    "boxes": [("consentbox-admin boxes", "list the boxes whose cards this workstation accepts")],
}


def _add_boxes(command: argparse.ArgumentParser) -> None:
    command.add_argument("--boxes", type=Path, metavar="FILE",
                         help="the trusted boxes file (default: $XDG_CONFIG_HOME/consentbox/boxes or "
                         "~/.config/consentbox/boxes; %%APPDATA%%\\consentbox\\boxes on Windows)")


def device_key_argument(value: str) -> DevicePublicKey:
    """A `--device-key` value: the key's text, or a file whose first line that is not a comment holds it."""
    if value.startswith(PUBLIC_KEY_PREFIX):
        text = value
    else:
        try:
            lines = Path(value).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            why = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise argparse.ArgumentTypeError(f"{shown(value)} is neither a device key ({PUBLIC_KEY_PREFIX}…) "
                                             f"nor a readable file holding one: {why}") from None
        text = next((line for line in lines if line.strip() and not line.startswith("#")), "")
    try:
        return DevicePublicKey.parse(text)
    except SigningKeyError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def load_identities(paths: list[Path]) -> list[Identity]:
    """Every identity in the identity files at `paths`."""
    identities = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise KeyFormatError(f"{path} is not UTF-8 text: not an age identity file (save it as UTF-8)") from None
        identities.extend(parse_identity_file(text, source=str(path)))
    return identities


def run_keygen(args: argparse.Namespace) -> int:
    """`keygen`: a new identity in age-keygen's layout; never overwrites a file."""
    identity = MLKEM768X25519Identity.generate() if args.pq else X25519Identity.generate()
    if args.output is None:
        sys.stdout.write(identity_file_text(identity, datetime.now().astimezone()))
    else:
        write_identity(args.output, identity)
    print(f"Public key: {identity.recipient.to_string()}", file=sys.stderr)
    return EXIT_OK


def write_identity(path: Path, identity: Identity) -> None:
    """Create `path` (mode 0600) holding `identity` in age-keygen's layout."""
    # O_EXCL: an existing key file is somebody's only copy of a key; never replace it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | portable.BINARY, 0o600)
    except FileExistsError:
        raise ConsentBoxError(f"{path} already exists: choose another file name") from None
    with os.fdopen(fd, "wb") as out:  # bytes: age-keygen's "\n" line ends on every OS
        out.write(identity_file_text(identity, datetime.now().astimezone()).encode("ascii"))


def run_encrypt(args: argparse.Namespace) -> int:
    """`encrypt`: stream INPUT to an age file for the recipients."""
    recipients = [parse_recipient(text) for text in args.recipient]
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
    if args.unverified and (args.device_key or args.boxes):
        raise ConsentBoxError("--unverified checks no box: leave out --device-key and --boxes, or --unverified")
    identities = load_identities(args.identity)
    boxes = None if args.unverified else accepted_boxes(args.device_key, args.boxes)
    return export_card(args.card, args.out, identities, boxes, progress=sys.stderr.isatty())


def run_verify_ledger(args: argparse.Namespace) -> int:
    """`verify-ledger`: the summary of an intact ledger or extract, or the first bad entry as the one-line error."""
    if is_extract(args.ledger):
        if not args.identity:
            raise ConsentBoxError(f"{args.ledger} is an encrypted extract: give -i IDENTITY (a supervisor's or an "
                                  "auditor's key) to decrypt it")
        extract = load_extract(args.ledger, load_identities(args.identity), session=named_session(args.ledger),
                               device_key=args.device_key)
        print("\n".join(extract_lines(extract, args.ledger, key_given=args.device_key is not None)))
        return EXIT_OK
    summary = verify(args.ledger, args.device_key)
    print("\n".join(summary_lines(summary, key_given=args.device_key is not None)))
    if summary.tail is Tail.TORN:
        print(f"consentbox-admin: warning: {args.ledger}: tail truncated: {summary.torn_bytes} bytes of a "
              f"partial entry after seq {summary.last.seq}", file=sys.stderr)
        return EXIT_SALVAGED
    return EXIT_OK


def run_consent_report(args: argparse.Namespace) -> int:
    """`consent-report`: the printable record on stdout; exit 1 if the ledger and the card disagree."""
    record = consent_record(args.card, args.session, load_identities(args.identity),
                            accepted_boxes(args.device_key, args.boxes))
    sys.stdout.write(record.text(datetime.now().astimezone()))
    if record.agree:
        return EXIT_OK
    if not record.evidence.intact:
        print(f"consentbox-admin: session {args.session}: refused: {record.evidence.refusal()}", file=sys.stderr)
    if record.disagreements:
        points = ", ".join(check.point for check in record.disagreements)
        print(f"consentbox-admin: session {args.session}: the ledger and the manifest disagree on: {points}",
              file=sys.stderr)
    return EXIT_FAILED


def date_argument(value: str) -> date:
    """A `--from`/`--to` value: a date, YYYY-MM-DD."""
    # fromisoformat also takes 20260506 and week dates; only the form the help names is accepted.
    with contextlib.suppress(ValueError):
        if len(value) == 10:
            return date.fromisoformat(value)
    raise argparse.ArgumentTypeError(f"{shown(value)} is not a date: write YYYY-MM-DD")


def run_audit(args: argparse.Namespace) -> int:
    """`audit`: the report on stdout (and as CSV and HTML if asked); exit 1 unless every session passes."""
    report = audit(args.source, load_identities(args.identity), accepted_boxes(args.device_key, args.boxes),
                   period=Period(args.first, args.last), made=datetime.now().astimezone())
    for path, render in ((args.csv, render_csv), (args.html, render_html)):
        if path is not None:
            with whole_file(path) as out:
                out.write(render(report).encode("utf-8"))
    sys.stdout.write(render_text(report))
    return EXIT_OK if report.intact else EXIT_FAILED


def run_destroy(args: argparse.Namespace) -> int:
    """`destroy`: one line per file destroyed."""
    destroy_session(args.card, args.session, print)
    return EXIT_OK


def run_init_org(args: argparse.Namespace) -> int:
    """`init-org`: the key pair, once."""
    key = init_org(args.out, read_passphrase(args.passphrase_file, confirm=True))
    print(f"organisation key  {args.out / ORG_KEY_NAME} (private: keep it offline)")
    print(f"public key        {args.out / ORG_PUBLIC_NAME}: {key.public_key}")
    return EXIT_OK


def run_bundle(args: argparse.Namespace) -> int:
    """`bundle`: sign and write one bundle."""
    key = OrgSigningKey.load(args.org_key, read_passphrase(args.passphrase_file, confirm=False))
    recipients = [parse_recipient(text) for text in args.recipient or ()]
    auditors = tuple(parse_recipient(text) for text in args.auditor or ())
    period = period_identity(recipients + list(auditors)) if args.period_key else None
    if period is not None:
        recipients.append(period.recipient)
    bundle = Bundle(version=args.version, created=int(time.time()), recipients=tuple(recipients),
                    policy=policy_from_file(args.policy), existing_days=args.existing_days, auditors=auditors)
    check_bundle(bundle)  # before any file is made
    warning = check_recipient_count(bundle, single_recipient=args.single_recipient)
    check_stick(args.out)
    if period is not None:
        write_identity(args.period_key, period)
        print(f"period key {args.period_key}: {period.recipient.to_string()}")
    path = write_bundle(bundle, key, args.out)
    print(f"wrote {path}: version {bundle.version}, {len(bundle.recipients)} recipient(s), "
          f"{len(bundle.auditors)} auditor(s)")
    print("\n".join(key_lines("recipient", bundle.recipients) + key_lines("auditor", bundle.auditors)))
    if warning:  # once written: a bundle that fails for another reason needs no warning
        print(f"consentbox-admin: {warning}", file=sys.stderr)
    return EXIT_OK


def period_identity(others: list[Recipient]) -> Identity:
    """A new period key of the kind of the bundle's other keys: post-quantum if they are, else X25519."""
    if any(recipient.POST_QUANTUM for recipient in others):
        return MLKEM768X25519Identity.generate()
    return X25519Identity.generate()


def run_inspect(args: argparse.Namespace) -> int:
    """`inspect`: what a bundle holds and would change."""
    org_key = None if args.org_key is None else OrgPublicKey.read(args.org_key)
    installed = None if args.installed is None else read_bundle_file(args.installed)
    print("\n".join(describe(read_bundle_file(args.bundle), org_key, installed)))
    return EXIT_OK


def run_trust_box(args: argparse.Namespace) -> int:
    """`trust-box`: one line added to the trusted boxes file, or nothing if the box is there already."""
    path = args.boxes or default_boxes_path()
    box = TrustedBox(args.key, args.label.strip())
    added = trust_box(path, box)
    print(f"{'trusted' if added else 'already trusted'}: {box.key} {box.label} ({path})")
    return EXIT_OK


def run_boxes(args: argparse.Namespace) -> int:
    """`boxes`: the trusted boxes, one a line as in the file."""
    trusted = TrustedBoxes.load(args.boxes or default_boxes_path())
    print(f"{trusted.path}: {len(trusted.boxes)} trusted box(es)")
    sys.stdout.writelines(box.line() for box in trusted.boxes)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of `consentbox-admin`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConsentBoxError, OSError) as error:
        print(f"consentbox-admin: {safe_message(str(error))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
