"""Values in messages, without ever a secret key: how a refused key, recipient or path is shown.

People paste the wrong key: a supervisor's identity where a recipient belongs, a whole key file, the
box's private device key where its public key belongs, quoted, prefixed, in lower case, inside a list.
An error that echoed it would copy the secret into a terminal's scrollback, a log, a CI transcript or
a support ticket. So every message that shows such a value shows it through `shown`, which puts a
fixed phrase in place of anything that holds a secret key; and each command checks its last word, the
error it prints, with `safe_message`, for the values that reach a message by another road (a path
the system could not open, an argument the parser did not expect).
"""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn

#: What is shown instead of a value that holds a secret key.
SECRET_KEY = "a secret key (not shown: treat it as exposed and replace it)"

#: A secret in any case, anywhere in a value: an age identity (`AGE-SECRET-KEY-1…`, `AGE-SECRET-KEY-PQ-1…`),
#: a PEM private key (the device key, the organisation key, an ssh key), or the start of an unencrypted
#: Ed25519 PKCS#8 key (the device key's file) in base64 or hex, as pasted without its PEM lines.
_SECRET = re.compile(
    r"AGE-SECRET-KEY|BEGIN [A-Z ]*PRIVATE KEY|MC4CAQAwBQYDK2VwBCIEI|302e020100300506032b657004220420",
    re.IGNORECASE,
)
#: The form a message names (as in "no AGE-SECRET-KEY-1… line found"): an ellipsis, never a key.
_NAMED_FORM = "AGE-SECRET-KEY-1…"
#: How much of another refused value a message shows.
SHOWN_CHARACTERS = 80


def holds_secret(text: str) -> bool:
    """Whether `text` holds a secret key, or looks like one, anywhere in it."""
    return _SECRET.search(re.sub(re.escape(_NAMED_FORM), "", text, flags=re.IGNORECASE)) is not None


def shown(value: object) -> str:
    """`value` as a message shows it: quoted (repr) and cut to SHOWN_CHARACTERS, or SECRET_KEY if it
    holds a secret key."""
    text = repr(value)  # quotes it, and escapes line breaks and terminal controls
    if holds_secret(text):
        return SECRET_KEY
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "…"


def safe_message(message: str) -> str:
    """`message`, or one line saying a secret key was given, if `message` holds one."""
    if holds_secret(message):
        return f"an argument or a file given holds {SECRET_KEY}"
    return message


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors (which quote arguments) never show a secret key, and whose
    help shows an epilog of examples (`add_examples`) as written. Both commands' parsers are these."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print the usage and the error, as argparse does, with a secret key never shown; exit 2."""
        super().error(safe_message(message))


#: The first line of an epilog of examples, which help keeps as written (the man pages read it too).
EXAMPLES_HEADING = "examples:"


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, but an epilog of examples keeps its lines: one command a line, each
    followed by what it does."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(EXAMPLES_HEADING):
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


def add_examples(commands: argparse._SubParsersAction, examples: dict[str, list[tuple[str, str]]]) -> None:
    """Give each subcommand of `commands` its examples, (command line, what it does), as its help's epilog
    (tests/system/test_deb.py checks that every subcommand has some)."""
    for name, parser in commands.choices.items():
        lines = [f"  {command}\n      {what}" for command, what in examples.get(name, [])]
        parser.epilog = "\n".join([EXAMPLES_HEADING, *lines])


def parse_examples(epilog: str | None) -> list[tuple[str, str]]:
    """The (command line, what it does) pairs of an epilog that `add_examples` wrote; [] for none."""
    if not epilog or not epilog.startswith(EXAMPLES_HEADING):
        return []
    lines = epilog.splitlines()[1:]
    return [(command.strip(), what.strip()) for command, what in zip(lines[::2], lines[1::2], strict=True)]
