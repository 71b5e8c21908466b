"""The man pages of `consentbox` and `consentbox-admin`, written in roff from their argparse parsers.

`build-deb` calls `write_man_page` for each command: NAME, SYNOPSIS, DESCRIPTION (with the list of
commands), COMMANDS (a subsection for each, with its usage, description and every option), EXAMPLES
(the examples each subcommand's --help shows), FILES, SEE ALSO. Everything but FILES and SEE ALSO
comes from the parsers, so the pages cannot drift from the commands.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from consentbox.crypto.exposure import parse_examples

DOC = "/usr/share/doc/consentbox"


@dataclass(frozen=True)
class Page:
    """What a command's man page says beyond its parser."""

    summary: str  # NAME's line
    files: tuple[tuple[str, str], ...]  # (path, what it is)
    see_also: tuple[str, ...]  # "name(section)" or a path


def text(value: str) -> str:
    """Prose for roff: backslashes, characters outside ASCII and a leading control character escaped."""
    escaped = value.replace("\\", "\\e")
    escaped = re.sub(r"[^\x00-\x7f]", lambda found: f"\\[u{ord(found.group(0)):04X}]", escaped)
    return re.sub(r"^([.'])", r"\\&\1", escaped, flags=re.MULTILINE)


def literal(value: str) -> str:
    """A command, option or path for roff: as `text`, with each hyphen a minus sign (as typed)."""
    return text(value).replace("-", "\\-")


def usage(parser: argparse.ArgumentParser) -> str:
    """The parser's usage line without "usage: ", on one line."""
    return " ".join(parser.format_usage().removeprefix("usage: ").split())


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order --help lists them."""
    (action,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    return [(name, helps[name], sub) for name, sub in action.choices.items()]


def option_lines(parser: argparse.ArgumentParser) -> list[str]:
    """A tagged paragraph for each option and argument of `parser` but -h."""
    lines = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        metavar = action.metavar if isinstance(action.metavar, str) else None
        if action.option_strings:
            tag = ", ".join(f"\\fB{literal(option)}\\fR" for option in action.option_strings)
            if action.nargs != 0:
                tag += f" \\fI{literal(metavar or action.dest.upper())}\\fR"
        else:
            tag = f"\\fI{literal(metavar or action.dest)}\\fR"
        lines += [".TP", tag, text((action.help or "").replace("%%", "%"))]
    return lines


def man_page(parser: argparse.ArgumentParser, page: Page, *, version: str, date: str) -> str:
    """The roff source of the man page (section 1) of the command `parser` parses."""
    name = parser.prog
    commands = subcommands(parser)
    lines = [
        f'.TH {name.upper()} 1 "{date}" "{name} {version}" "ConsentBox"',
        ".SH NAME", f"{literal(name)} \\- {text(page.summary)}",
        ".SH SYNOPSIS", f"\\fB{literal(name)}\\fR \\fICOMMAND\\fR [\\fIOPTION\\fR]... [\\fIARGUMENT\\fR]...",
        ".br", f"\\fB{literal(name)} \\-\\-version\\fR",
        ".br", f"\\fB{literal(name)}\\fR [\\fICOMMAND\\fR] \\fB\\-\\-help\\fR",
        ".SH DESCRIPTION", text(parser.description or ""),
        ".PP", "Its commands:",
    ]
    for command, summary, _ in commands:
        lines += [".TP", f"\\fB{literal(command)}\\fR", text(summary)]
    lines.append(".SH COMMANDS")
    for command, _, sub in commands:
        lines += [f'.SS "{literal(command)}"', f"\\fB{literal(usage(sub))}\\fR", ".PP", text(sub.description or "")]
        lines += option_lines(sub)
    lines.append(".SH EXAMPLES")
    for *_, sub in commands:
        for example, what in parse_examples(sub.epilog):
            lines += [".PP", f"{text(what)}:", ".RS", ".nf", f"\\fB{literal(example)}\\fR", ".fi", ".RE"]
    lines.append(".SH FILES")
    for path, what in page.files:
        lines += [".TP", f"\\fI{literal(path)}\\fR", text(what)]
    lines += [".SH SEE ALSO", ",\n".join(_reference(item) for item in page.see_also)]
    return "\n".join(lines) + "\n"


def _reference(item: str) -> str:
    """A SEE ALSO item: "name(section)" in bold, a path in italics."""
    found = re.fullmatch(r"([\w.-]+)\((\w+)\)", item)
    return f"\\fB{literal(found.group(1))}\\fR({found.group(2)})" if found else f"\\fI{literal(item)}\\fR"


#: What each page says beyond its parser.
PAGES = {
    "consentbox": Page(
        summary="the ConsentBox recorder: records only with everyone's consent, encrypted to the card",
        files=(
            ("/etc/consentbox/config.toml", "the box's settings over the shipped defaults; as installed, "
             "every setting is commented out"),
            ("/etc/consentbox/org.pub", "the organisation's public key: provisioning bundles must be signed by it"),
            ("/var/lib/consentbox/", "the box's state (mode 0700): consent ledger, device key, journal of open "
             "sessions, installed bundle, retention index"),
            ("/media/consentbox-card/", "where the card is mounted; only encrypted files are written there"),
            (f"{DOC}/status-codes.md.gz", "what the STATUS LED's blink codes and the buzzer's tones mean"),
            (f"{DOC}/provisioning.md.gz", "provisioning sticks, and why one is refused"),
            (f"{DOC}/deploy-guide.md.gz", "setting a box up, step by step"),
        ),
        see_also=("consentbox-admin(1)", "systemctl(1)", "journalctl(1)", f"{DOC}/deploy-guide.md.gz"),
    ),
    "consentbox-admin": Page(
        summary="ConsentBox keys, provisioning bundles, decryption and consent-ledger checks",
        files=(
            ("~/.config/consentbox/boxes", "the trusted boxes (trust-box, boxes); $XDG_CONFIG_HOME/consentbox/boxes "
             "when XDG_CONFIG_HOME is set, or --boxes FILE"),
            ("org.key, org.pub", "the organisation's signing key pair, made by init-org; keep org.key offline"),
            (f"{DOC}/supervisor.md.gz", "the supervisor's guide: a key, a card, exporting, listening, destroying"),
            (f"{DOC}/provisioning.md.gz", "keys, bundles and sticks, for IT"),
            (f"{DOC}/deploy-guide.md.gz", "setting a box up, and what to do when a box, card or key is lost"),
        ),
        see_also=("consentbox(1)", "age(1)", "age-keygen(1)", f"{DOC}/supervisor.md.gz"),
    ),
}
